import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sql, type Expression, type SqlBool } from 'kysely';
import { isUniqueViolation } from '../../core/db/database.js';
import { BadRequest, Conflict, Forbidden, NotFound, OverLimit, UnsupportedMediaType } from '../../core/errors.js';
import { isoNow, newUuid } from '../common.js';
import type { ImageRow } from '../db/schema.js';
import { authorize, isAdmin, type ImageService } from '../image.js';
import { attach, findImage, membership, visible } from '../repository.js';
import { BASE_PROPERTIES, validateImageProperties } from '../schemas.js';
import { imageView, type LoadedImage } from '../views.js';
import { deleteImageData } from './data.js';

/** Properties that the data and the service own: never set by callers. */
const READ_ONLY = new Set(['created_at', 'updated_at', 'status', 'checksum', 'size', 'virtual_size', 'direct_url', 'self', 'file', 'schema', 'id', 'os_hash_algo', 'os_hash_value', 'stores']);
/** Refused even at creation. */
const DISALLOWED_AT_CREATE = ['direct_url', 'self', 'file', 'schema', 'stores'];
const RESERVED = new Set(['location', 'deleted', 'deleted_at']);
const RESERVED_PREFIX = 'os_glance';
/** Base properties stored as image columns (and so never removed). */
const COLUMNS = new Set(['name', 'visibility', 'protected', 'os_hidden', 'owner', 'min_ram', 'min_disk', 'disk_format', 'container_format']);
const SORT_KEYS = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at'];
const PATCH_TYPES = ['application/openstack-images-v2.1-json-patch', 'application/openstack-images-v2.0-json-patch'];

/** Reserved names (`os_glance_*`, `deleted`, ...) get 403, as in Glance. */
function checkReserved(name: string): void {
  if (RESERVED.has(name) || name.startsWith(RESERVED_PREFIX)) throw new Forbidden(`Attribute '${name}' is reserved.`);
}

/** Headers Glance adds to image creation: the import methods and the stores on offer. */
function offerHeaders(images: ImageService): Record<string, string> {
  return {
    'OpenStack-image-import-methods': images.config.image.import_methods.join(','),
    'OpenStack-image-store-ids': [...images.stores.writable()].map((s) => s.id).join(','),
  };
}

/** Publishes an image notification with the image's view as payload. */
export function notifyImage(images: ImageService, event: string, image: LoadedImage): void {
  images.notify(event, imageView(image));
}

export function registerImages(app: FastifyInstance, images: ImageService): void {
  app.addContentTypeParser(PATCH_TYPES, { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(typeof body === 'string' ? body : body.toString('utf8')));
    } catch {
      done(new BadRequest('Malformed JSON in request body.'), undefined);
    }
  });

  app.post('/v2/images', async (req, reply) => {
    const body = requireObject(req.body);
    const ctx = req.ctx;
    for (const key of DISALLOWED_AT_CREATE) if (key in body) throw new Forbidden(`Attribute '${key}' is read-only.`);
    for (const key of Object.keys(body)) {
      if (key !== 'id' && READ_ONLY.has(key)) throw new Forbidden(`Attribute '${key}' is read-only.`);
      if (key === 'locations') throw new BadRequest('Image locations cannot be given at creation; this cloud does not show multiple locations.');
    }
    validateImageProperties(body);
    const extra: Record<string, string> = {};
    for (const [key, value] of Object.entries(body)) {
      if (key in BASE_PROPERTIES) continue;
      if (key.length > 255) throw new BadRequest('Custom property should not be greater than 255 characters.');
      checkReserved(key);
      extra[key] = value as string;
    }
    const owner = body.owner === undefined ? ctx.projectId : (body.owner as string | null);
    const visibility = (body.visibility as string | undefined) ?? 'shared';
    const target = { project_id: owner ?? '', owner: owner ?? '', visibility, member_id: '' };
    authorize(images, req, 'add_image', target);
    if (owner !== ctx.projectId && !isAdmin(images, ctx)) throw new Forbidden("You are not permitted to create images owned by '" + String(owner) + "'.");
    if (visibility === 'public') authorize(images, req, 'publicize_image', target);
    if (visibility === 'community') authorize(images, req, 'communitize_image', target);
    const tags = [...new Set((body.tags as string[] | undefined) ?? [])];
    checkCounts(images, Object.keys(extra).length, tags.length);
    if (owner) await images.quotas.enforce(owner, { image_count_total: 1 });

    const now = isoNow();
    const row: ImageRow = {
      id: (body.id as string | undefined) ?? newUuid(),
      name: (body.name as string | null | undefined) ?? null,
      disk_format: (body.disk_format as string | null | undefined) ?? null,
      container_format: (body.container_format as string | null | undefined) ?? null,
      size: null,
      virtual_size: null,
      status: 'queued',
      visibility,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      min_disk: (body.min_disk as number | undefined) ?? 0,
      min_ram: (body.min_ram as number | undefined) ?? 0,
      protected: body.protected === true ? 1 : 0,
      os_hidden: body.os_hidden === true ? 1 : 0,
      owner,
      created_at: now,
      updated_at: now,
      deleted_at: null,
      worker: null,
    };
    try {
      await images.db.transaction().execute(async (trx) => {
        await trx.insertInto('image').values(row).execute();
        if (Object.keys(extra).length) await trx.insertInto('image_property').values(Object.entries(extra).map(([name, value]) => ({ image_id: row.id, name, value }))).execute();
        if (tags.length) await trx.insertInto('image_tag').values(tags.map((value) => ({ image_id: row.id, value }))).execute();
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Image with identifier ${row.id} already exists!`);
      throw err;
    }
    const image: LoadedImage = { row, properties: extra, tags, locations: [] };
    notifyImage(images, 'image.create', image);
    reply.code(201).headers({ Location: `${images.publicUrl}/v2/images/${row.id}`, ...offerHeaders(images) });
    return imageView(image);
  });

  app.get('/v2/images', async (req) => listImages(images, req));

  app.get<{ Params: { id: string } }>('/v2/images/:id', async (req) => {
    const { image, target } = await findImage(images, req.ctx, req.params.id);
    authorize(images, req, 'get_image', target);
    return imageView(image);
  });

  app.patch<{ Params: { id: string } }>('/v2/images/:id', async (req) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (!PATCH_TYPES.includes(type)) {
      const error = new UnsupportedMediaType(`Unsupported Content-Type ${type || '(none)'}: use ${PATCH_TYPES[0]}.`);
      error.headers['Accept-Patch'] = PATCH_TYPES.join(', ');
      throw error;
    }
    const changes = parsePatch(req.body, type === PATCH_TYPES[1]);
    return updateImage(images, req, req.params.id, changes);
  });

  app.delete<{ Params: { id: string } }>('/v2/images/:id', async (req, reply) => {
    await deleteImage(images, req, req.params.id);
    reply.code(204);
  });

  for (const action of ['deactivate', 'reactivate'] as const) {
    app.post<{ Params: { id: string } }>(`/v2/images/:id/actions/${action}`, async (req, reply) => {
      const { image, target } = await findImage(images, req.ctx, req.params.id);
      authorize(images, req, action, target);
      const [from, to] = action === 'deactivate' ? ['active', 'deactivated'] : ['deactivated', 'active'];
      if (image.row.status !== to) {
        if (image.row.status !== from) throw new Forbidden(`Not allowed to ${action} image in status '${image.row.status}'`);
        const now = isoNow();
        const done = await images.db.updateTable('image').set({ status: to, updated_at: now }).where('id', '=', image.row.id).where('status', '=', from).executeTakeFirst();
        if (Number(done.numUpdatedRows) === 1) notifyImage(images, `image.${action}`, { ...image, row: { ...image.row, status: to, updated_at: now } });
      }
      reply.code(204);
    });
  }
}

function requireObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) throw new BadRequest('Body expected in request.');
  if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('Request body must be a JSON object.');
  return body as Record<string, unknown>;
}

function checkCounts(images: ImageService, properties: number, tags: number): void {
  const config = images.config.image;
  if (properties > config.image_property_quota) throw new OverLimit(`Maximum number of image properties exceeded. Attempted: ${properties}, Maximum: ${config.image_property_quota}`);
  if (tags > config.image_tag_quota) throw new OverLimit(`Maximum number of image tags exceeded. Attempted: ${tags}, Maximum: ${config.image_tag_quota}`);
}

// ---------------------------------------------------------------- listing

type Where = Expression<SqlBool>;

/** `in:a,"b,c"` → ['a', 'b,c'] (Glance's `in` operator; quotes protect commas). */
function inValues(text: string): string[] {
  const values: string[] = [];
  const re = /"([^"]*)"|([^,]+)/g;
  for (const match of text.matchAll(re)) values.push((match[1] ?? match[2] ?? '').trim());
  return values;
}

const TIME_OPS: Record<string, string> = { gt: '>', gte: '>=', eq: '=', neq: '<>', lt: '<', lte: '<=' };

async function listImages(images: ImageService, req: FastifyRequest): Promise<Record<string, unknown>> {
  const ctx = req.ctx;
  authorize(images, req, 'get_images', { project_id: ctx.projectId ?? '', owner: ctx.projectId ?? '' });
  const url = new URL(req.url, 'http://x');
  const params = url.searchParams;
  const config = images.config.image;

  const single = (name: string): string | undefined => {
    const all = params.getAll(name);
    return all.length ? all[all.length - 1] : undefined;
  };
  let limit = config.limit_param_default;
  const limitText = single('limit');
  if (limitText !== undefined) {
    if (!/^-?\d+$/.test(limitText.trim())) throw new BadRequest('limit param must be an integer');
    limit = Number(limitText);
    if (limit < 0) throw new BadRequest('limit param must be positive');
  }
  limit = Math.min(limit, config.api_limit_max);
  const memberStatus = single('member_status') ?? 'accepted';
  if (!['pending', 'accepted', 'rejected', 'all'].includes(memberStatus)) throw new BadRequest(`Invalid status: ${memberStatus}`);
  const visibility = single('visibility');
  if (visibility !== undefined && !['community', 'public', 'private', 'shared', 'all'].includes(visibility)) throw new BadRequest(`Invalid visibility value: ${visibility}`);
  if (params.has('changes-since')) throw new BadRequest('The "changes-since" filter is no longer available on v2.');
  const { keys, dirs } = sorting(params);

  const admin = isAdmin(images, ctx);
  const project = ctx.projectId;
  const conditions: ((eb: any) => Where)[] = [];
  conditions.push((eb) => eb('image.deleted_at', 'is', null));
  if (!admin) {
    conditions.push((eb) => {
      const member = eb
        .selectFrom('image_member')
        .select('image_member.image_id')
        .whereRef('image_member.image_id', '=', 'image.id')
        .where('image_member.member', '=', project ?? '')
        .$if(memberStatus !== 'all', (q: any) => q.where('image_member.status', '=', memberStatus));
      const options: Where[] = [eb('image.visibility', 'in', ['public', 'community']), eb.and([eb('image.visibility', '=', 'shared'), eb.exists(member)])];
      if (project) options.push(eb('image.owner', '=', project));
      return eb.or(options);
    });
  }
  if (visibility !== undefined && visibility !== 'all') conditions.push((eb) => eb('image.visibility', '=', visibility));
  else if (visibility === undefined) {
    conditions.push((eb) => (project ? eb.or([eb('image.visibility', '<>', 'community'), eb('image.owner', '=', project)]) : eb('image.visibility', '<>', 'community')));
  }

  const handled = new Set(['limit', 'marker', 'member_status', 'visibility', 'sort', 'sort_key', 'sort_dir', 'tag', 'size_min', 'size_max', 'os_hidden', 'protected', 'created_at', 'updated_at']);
  for (const name of ['name', 'status', 'container_format', 'disk_format', 'id', 'owner', 'checksum', 'os_hash_algo', 'os_hash_value']) {
    const value = single(name);
    handled.add(name);
    if (value === undefined) continue;
    const column = `image.${name}`;
    if (value.startsWith('in:')) {
      const values = inValues(value.slice(3));
      conditions.push((eb) => eb(column, 'in', values.length ? values : ['']));
    } else {
      conditions.push((eb) => eb(column, '=', value));
    }
  }
  for (const name of ['min_ram', 'min_disk', 'size', 'virtual_size']) {
    handled.add(name);
    const value = single(name);
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) throw new BadRequest(`Invalid value '${value}' for '${name}' filter.`);
    conditions.push((eb) => eb(`image.${name}`, '=', Number(value)));
  }
  const hidden = single('os_hidden') ?? 'false';
  if (!['true', 'false'].includes(hidden.toLowerCase())) throw new BadRequest(`Invalid value '${hidden}' for 'os_hidden' filter. Valid values are 'true' or 'false'.`);
  conditions.push((eb) => eb('image.os_hidden', '=', hidden.toLowerCase() === 'true' ? 1 : 0));
  const protectedFilter = single('protected');
  if (protectedFilter !== undefined) {
    if (!['true', 'false'].includes(protectedFilter.toLowerCase())) throw new BadRequest(`Invalid value '${protectedFilter}' for 'protected' filter. Valid values are 'true' or 'false'.`);
    conditions.push((eb) => eb('image.protected', '=', protectedFilter.toLowerCase() === 'true' ? 1 : 0));
  }
  for (const [name, op] of [['size_min', '>='], ['size_max', '<=']] as const) {
    const value = single(name);
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) throw new BadRequest(`Invalid value for ${name}: '${value}'; it must be a non-negative integer.`);
    conditions.push((eb) => eb('image.size', op, Number(value)));
  }
  for (const name of ['created_at', 'updated_at']) {
    for (const value of params.getAll(name)) {
      const match = /^(gt|gte|eq|neq|lt|lte):(.+)$/.exec(value);
      const time = match ? Date.parse(match[2] ?? '') : Date.parse(value);
      if (Number.isNaN(time)) throw new BadRequest(`Invalid value '${value}' for ${name}: use an operator (gt, gte, eq, neq, lt, lte), a colon, and an ISO 8601 time.`);
      const op = TIME_OPS[match?.[1] ?? 'eq'] ?? '=';
      const stamp = new Date(Math.floor(time / 1000) * 1000).toISOString().replace(/\.000Z$/, '');
      // Stored times have sub-second digits; Glance compares to the second.
      conditions.push((eb) => eb(sql`substr(${sql.ref(`image.${name}`)}, 1, 19)`, op, stamp));
    }
  }
  for (const tag of params.getAll('tag')) {
    conditions.push((eb) => eb.exists(eb.selectFrom('image_tag').select('image_tag.image_id').whereRef('image_tag.image_id', '=', 'image.id').where('image_tag.value', '=', tag.trim())));
  }
  for (const [name, value] of params) {
    if (handled.has(name)) continue;
    conditions.push((eb) =>
      eb.exists(eb.selectFrom('image_property').select('image_property.image_id').whereRef('image_property.image_id', '=', 'image.id').where('image_property.name', '=', name).where('image_property.value', '=', value)),
    );
  }

  const marker = single('marker');
  let markerRow: ImageRow | undefined;
  if (marker !== undefined) {
    markerRow = await images.db.selectFrom('image').selectAll().where('id', '=', marker).where('deleted_at', 'is', null).executeTakeFirst();
    // An image the caller cannot see is no marker (its place in the order is not revealed).
    if (markerRow && !visible(images, ctx, markerRow, await membership(images.db, marker, ctx))) markerRow = undefined;
    if (!markerRow) throw new BadRequest(`Invalid marker. Image ${marker} could not be found.`);
  }

  let query = images.db.selectFrom('image').selectAll('image');
  query = query.where((eb) => eb.and(conditions.map((c) => c(eb))));
  if (markerRow) {
    const row = markerRow;
    query = query.where((eb) => after(eb, keys, dirs, row));
  }
  for (const [i, key] of keys.entries()) query = query.orderBy(sortExpr(key), dirs[i] === 'asc' ? 'asc' : 'desc');
  const rows = limit === 0 ? [] : await query.limit(limit).execute();
  const loaded = await attach(images.db, rows);
  const body: Record<string, unknown> = { images: loaded.map((image) => imageView(image)), first: firstLink(url), schema: '/v2/schemas/images' };
  const last = rows[rows.length - 1];
  if (last && rows.length === limit) {
    const next = new URLSearchParams(params);
    next.delete('marker');
    next.set('marker', last.id);
    body.next = `/v2/images?${next.toString()}`;
  }
  return body;
}

function firstLink(url: URL): string {
  const first = new URLSearchParams(url.searchParams);
  first.delete('marker');
  const text = first.toString();
  return `/v2/images${text ? `?${text}` : ''}`;
}

function sorting(params: URLSearchParams): { keys: string[]; dirs: string[] } {
  const keys: string[] = [];
  const dirs: string[] = [];
  const checkKey = (key: string): string => {
    if (!SORT_KEYS.includes(key)) throw new BadRequest(`Invalid sort key: ${key}. It must be one of the following: ${SORT_KEYS.join(', ')}.`);
    return key;
  };
  const checkDir = (dir: string): string => {
    if (dir !== 'asc' && dir !== 'desc') throw new BadRequest(`Invalid sort direction: ${dir}`);
    return dir;
  };
  if (params.has('sort')) {
    if (params.has('sort_key') || params.has('sort_dir')) throw new BadRequest('Old and new sorting syntax cannot be combined');
    for (const part of (params.get('sort') ?? '').trim().split(',')) {
      const [key = '', dir = 'desc'] = part.split(':');
      keys.push(checkKey(key.trim()));
      dirs.push(checkDir((dir || 'desc').trim()));
    }
  } else {
    for (const key of params.getAll('sort_key')) keys.push(checkKey(key.trim()));
    for (const dir of params.getAll('sort_dir')) dirs.push(checkDir(dir.trim()));
    if (dirs.length > 1 && dirs.length !== keys.length) throw new BadRequest('Number of sort dirs does not match the number of sort keys');
  }
  if (keys.length === 0) keys.push('created_at');
  const fallback = dirs.length === 1 ? (dirs[0] ?? 'desc') : 'desc';
  while (dirs.length < keys.length) dirs.push(fallback);
  for (const key of ['created_at', 'id']) {
    if (!keys.includes(key)) {
      keys.push(key);
      dirs.push(fallback);
    }
  }
  return { keys, dirs };
}

/** Nullable sort keys compare as '' (or -1): nulls sort first going up, last going down. */
function sortExpr(key: string): any {
  if (key === 'size') return sql`coalesce(${sql.ref(`image.${key}`)}, -1)`;
  if (key === 'name' || key === 'disk_format' || key === 'container_format') return sql`coalesce(${sql.ref(`image.${key}`)}, '')`;
  return sql.ref(`image.${key}`);
}

function sortValue(key: string, row: ImageRow): string | number {
  const value = (row as unknown as Record<string, string | number | null>)[key];
  if (key === 'size') return value === null ? -1 : Number(value);
  return value ?? '';
}

/** Rows that come after the marker in the sort order (keyset pagination). */
function after(eb: any, keys: string[], dirs: string[], marker: ImageRow): Where {
  const options: Where[] = [];
  for (let i = 0; i < keys.length; i++) {
    const parts: Where[] = [];
    for (let j = 0; j < i; j++) parts.push(eb(sortExpr(keys[j] ?? ''), '=', sortValue(keys[j] ?? '', marker)));
    parts.push(eb(sortExpr(keys[i] ?? ''), dirs[i] === 'asc' ? '>' : '<', sortValue(keys[i] ?? '', marker)));
    options.push(eb.and(parts));
  }
  return eb.or(options);
}

// ---------------------------------------------------------------- updates

interface Change {
  op: 'add' | 'remove' | 'replace';
  path: string[];
  value?: unknown;
  /** Draft-4 semantics: `add` of a property that exists is a conflict. */
  draft4?: boolean;
}

/**
 * Parses a JSON-patch body into changes on top-level properties: Glance's
 * subset of RFC 6902 (`{"op": "add", "path": ..., "value": ...}`), or the
 * deprecated draft-4 form of `openstack-images-v2.0-json-patch`
 * (`{"add": "/path", "value": ...}`).
 */
export function parsePatch(body: unknown, draft4 = false): Change[] {
  if (!Array.isArray(body)) throw new BadRequest('Request body must be a JSON array of operation objects.');
  return body.map((raw: unknown) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BadRequest('Operations must be JSON objects.');
    const change = raw as Record<string, unknown>;
    let op: unknown;
    let pointer: unknown;
    if (draft4) {
      const ops = ['add', 'remove', 'replace'].filter((name) => name in change);
      if (ops.length !== 1) throw new BadRequest('Operation objects must contain exactly one member named "add", "remove", or "replace".');
      op = ops[0];
      pointer = change[op as string];
    } else {
      op = change.op;
      pointer = change.path;
      if (op === undefined) throw new BadRequest('Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.');
    }
    if (op !== 'add' && op !== 'remove' && op !== 'replace') throw new BadRequest(`Invalid operation: \`${String(op)}\`. It must be one of the following: add, remove, replace.`);
    if (typeof pointer !== 'string') throw new BadRequest("Unable to find 'path' in JSON Schema change");
    const path = parsePointer(pointer);
    const depth = path[0] === 'locations' ? (op === 'replace' ? 1 : 2) : 1;
    if (path.length !== depth) throw new BadRequest(`Invalid JSON pointer for this resource: '/${path.join('/')}'`);
    if (op !== 'remove' && !('value' in change)) throw new BadRequest(`Operation "${op}" requires a member named "value".`);
    return op === 'remove' ? { op, path, draft4 } : { op, path, value: change.value, draft4 };
  });
}

function parsePointer(pointer: string): string[] {
  if (!pointer.startsWith('/')) throw new BadRequest(`Pointer \`${pointer}\` does not start with "/".`);
  if (pointer.includes('//')) throw new BadRequest(`Pointer \`${pointer}\` contains adjacent "/".`);
  if (pointer.length > 1 && pointer.endsWith('/')) throw new BadRequest(`Pointer \`${pointer}\` end with "/".`);
  if (pointer === '/') throw new BadRequest(`Pointer \`${pointer}\` does not contains valid token.`);
  if (/~(?![01])/.test(pointer)) throw new BadRequest(`Pointer \`${pointer}\` contains "~" not part of a recognized escape sequence.`);
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
}

async function updateImage(images: ImageService, req: FastifyRequest, id: string, changes: Change[]): Promise<Record<string, unknown>> {
  const ctx = req.ctx;
  const { image, target } = await findImage(images, ctx, id);
  authorize(images, req, 'modify_image', target);
  const columns: Record<string, unknown> = {
    name: image.row.name,
    visibility: image.row.visibility,
    protected: image.row.protected === 1,
    os_hidden: image.row.os_hidden === 1,
    owner: image.row.owner,
    min_ram: image.row.min_ram,
    min_disk: image.row.min_disk,
    disk_format: image.row.disk_format,
    container_format: image.row.container_format,
  };
  const properties = { ...image.properties };
  let tags = [...image.tags];
  for (const change of changes) {
    const name = change.path[0] ?? '';
    if (READ_ONLY.has(name)) throw new Forbidden(`Attribute '${name}' is read-only.`);
    checkReserved(name);
    if (name === 'locations') throw new Forbidden("It's not allowed to update locations if locations are invisible.");
    if (change.op !== 'remove') {
      if (name.length > 255) throw new BadRequest('Custom property should not be greater than 255 characters.');
      validateImageProperties({ [name]: change.value });
    }
    if (name === 'owner' && change.op !== 'remove' && change.value !== image.row.owner && !isAdmin(images, ctx)) throw new Forbidden("Owner can't be updated by non admin.");
    if ((name === 'disk_format' || name === 'container_format') && change.op !== 'remove' && change.value !== columns[name] && image.row.status !== 'queued') {
      throw new Forbidden(`Attribute ${name} can be only replaced for a queued image.`);
    }
    if (change.op === 'remove') {
      if (COLUMNS.has(name) || name === 'tags') throw new Forbidden(`Property ${name} may not be removed.`);
      if (!(name in properties)) throw new Conflict(`Property ${name} does not exist.`);
      delete properties[name];
    } else if (name === 'tags') {
      tags = [...new Set(change.value as string[])];
    } else if (COLUMNS.has(name)) {
      columns[name] = change.value;
    } else if (change.op === 'add' && change.draft4 && name in properties) {
      throw new Conflict(`Property ${name} already present.`);
    } else if (change.op === 'replace' && !(name in properties)) {
      throw new Conflict(`Property ${name} does not exist.`);
    } else {
      properties[name] = change.value as string;
    }
  }
  const visibility = columns.visibility as string;
  if (visibility !== image.row.visibility) {
    if (visibility === 'public') authorize(images, req, 'publicize_image', target);
    if (visibility === 'community') authorize(images, req, 'communitize_image', target);
  }
  const added = Object.keys(properties).filter((k) => !(k in image.properties)).length;
  if (added > 0 || tags.length > image.tags.length) checkCounts(images, Object.keys(properties).length, tags.length);

  const now = isoNow();
  const row: ImageRow = {
    ...image.row,
    name: columns.name as string | null,
    visibility,
    protected: columns.protected ? 1 : 0,
    os_hidden: columns.os_hidden ? 1 : 0,
    owner: columns.owner as string | null,
    min_ram: columns.min_ram as number,
    min_disk: columns.min_disk as number,
    disk_format: columns.disk_format as string | null,
    container_format: columns.container_format as string | null,
    updated_at: now,
  };
  await images.db.transaction().execute(async (trx) => {
    const { id: _id, created_at: _c, status: _s, deleted_at: _d, worker: _w, size: _z, virtual_size: _v, checksum: _k, os_hash_algo: _a, os_hash_value: _h, ...changed } = row;
    const done = await trx.updateTable('image').set(changed).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
    if (Number(done.numUpdatedRows) !== 1) throw new NotFound(`No image found with ID ${id}`);
    const gone = Object.keys(image.properties).filter((k) => !(k in properties) || properties[k] !== image.properties[k]);
    if (gone.length) await trx.deleteFrom('image_property').where('image_id', '=', id).where('name', 'in', gone).execute();
    const fresh = Object.entries(properties).filter(([k, v]) => image.properties[k] !== v);
    if (fresh.length) await trx.insertInto('image_property').values(fresh.map(([name, value]) => ({ image_id: id, name, value }))).execute();
    await replaceTags(trx, id, image.tags, tags);
  });
  const updated: LoadedImage = { row, properties, tags, locations: image.locations };
  notifyImage(images, 'image.update', updated);
  return imageView(updated);
}

async function replaceTags(trx: any, id: string, before: string[], after: string[]): Promise<void> {
  const gone = before.filter((t) => !after.includes(t));
  const fresh = after.filter((t) => !before.includes(t));
  if (gone.length) await trx.deleteFrom('image_tag').where('image_id', '=', id).where('value', 'in', gone).execute();
  if (fresh.length) await trx.insertInto('image_tag').values(fresh.map((value) => ({ image_id: id, value }))).execute();
}

/** Deletes an image: refused when protected; its data goes from every store and staging. */
export async function deleteImage(images: ImageService, req: FastifyRequest, id: string): Promise<void> {
  const { image, target } = await findImage(images, req.ctx, id);
  authorize(images, req, 'delete_image', target);
  if (image.row.protected === 1) throw new Forbidden(`Image ${id} is protected and cannot be deleted.`);
  const now = isoNow();
  const done = await images.db
    .updateTable('image')
    .set({ status: 'deleted', deleted_at: now, updated_at: now })
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .where('protected', '=', 0)
    .executeTakeFirst();
  if (Number(done.numUpdatedRows) !== 1) throw new NotFound(`Failed to find image ${id} to delete`);
  await images.db.deleteFrom('image_member').where('image_id', '=', id).execute();
  await deleteImageData(images, image);
  notifyImage(images, 'image.delete', { ...image, row: { ...image.row, status: 'deleted', deleted_at: now, updated_at: now } });
}
