import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { isUniqueViolation } from '../../core/db/database.js';
import { badRequest, conflict, notFound, VolumeError, volumeTypeNotFound } from '../errors.js';
import { deleteTypeQuotas, renameTypeQuotas } from '../quotas.js';
import { allowed, atLeast, authorize, contextOf, isAdmin, now, type VolumeService } from '../volume.js';
import { defaultVolumeType, getVolumeType, loadTypes, typeProjects, type VolumeType } from '../volume-types.js';
import { bodyObject, booleanField, checkKeys, descriptionField, isObject, nameField, nextLink, notOfType, invalidField, paginationOf, queryOf, sortOf, SPEC_KEY, specsField, strictBool, stringField, type Obj } from './catalog-input.js';

/**
 * Volume types (`/types`: list, show, `/types/default`, create, update,
 * delete) and their access lists (`/types/{id}/os-volume-type-access`, the
 * `addProjectAccess` and `removeProjectAccess` actions), as Cinder's
 * types, types_manage and volume_type_access controllers.
 */

/** Extra specs a user without `read_sensitive` still sees. */
export const USER_VISIBLE_EXTRA_SPECS = ['RESKEY:availability_zones', 'multiattach', 'replication_enabled'];

/** The v3 view (show and list): extra specs by policy, `qos_specs_id` for admins, the access flag for members. */
export function typeView(volume: VolumeService, ctx: RequestContext, type: VolumeType): Record<string, unknown> {
  const view: Record<string, unknown> = { id: type.id, name: type.name, is_public: type.is_public, description: type.description };
  if (allowed(volume, ctx, 'volume_extension:access_types_extra_specs')) {
    view.extra_specs = allowed(volume, ctx, 'volume_extension:types_extra_specs:read_sensitive')
      ? type.extra_specs
      : Object.fromEntries(Object.entries(type.extra_specs).filter(([k]) => USER_VISIBLE_EXTRA_SPECS.includes(k)));
  }
  if (allowed(volume, ctx, 'volume_extension:access_types_qos_specs_id')) view.qos_specs_id = type.qos_specs_id;
  if (allowed(volume, ctx, 'volume_extension:volume_type_access')) view['os-volume-type-access:is_public'] = type.is_public;
  return view;
}

/** The view create and update answer with (Cinder's older builder: every extra spec, no `qos_specs_id`). */
function manageView(type: VolumeType): Record<string, unknown> {
  return { id: type.id, name: type.name, is_public: type.is_public, extra_specs: type.extra_specs, description: type.description };
}

const SORT_KEYS = ['id', 'name', 'description', 'is_public', 'qos_specs_id', 'created_at', 'updated_at'];

/** Cinder's `_parse_is_public`: absent lists public types (and the caller's private ones), `None` all. */
function parseIsPublic(value: string | undefined): boolean | null {
  if (value === undefined) return true;
  if (value.toLowerCase() === 'none') return null;
  const b = strictBool(value);
  if (b === undefined) throw badRequest(`Invalid is_public filter [${value}]`);
  return b;
}

/** `?extra_specs={'k': 'v'}` (a Python or JSON dict literal). */
function parseSpecFilter(text: string): Record<string, string> | null {
  for (const candidate of [text, text.replace(/'/g, '"')]) {
    try {
      const parsed: unknown = JSON.parse(candidate);
      if (isObject(parsed)) return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
    } catch {
      // try the next spelling
    }
  }
  return null;
}

function compareBy(keys: { key: string; dir: 'asc' | 'desc' }[]): (a: VolumeType, b: VolumeType) => number {
  const all = keys.some((k) => k.key === 'id') ? keys : [...keys, { key: 'id', dir: keys[keys.length - 1]?.dir ?? 'desc' }];
  return (a, b) => {
    for (const { key, dir } of all) {
      const x = (a as unknown as Record<string, unknown>)[key];
      const y = (b as unknown as Record<string, unknown>)[key];
      const xs = x === null || x === undefined ? '' : String(x);
      const ys = y === null || y === undefined ? '' : String(y);
      if (xs !== ys) return (xs < ys ? -1 : 1) * (dir === 'asc' ? 1 : -1);
    }
    return 0;
  };
}

/** The list's filters as Cinder reads them for this caller and microversion. */
interface TypeFilters {
  isPublic: boolean | null;
  specs: Record<string, string> | null;
  columns: Record<string, string>;
}

/** Cinder's filtering of `/types` (3.52 refuses unknown filters from non-admins; before, they are dropped). */
function typeFilters(volume: VolumeService, req: FastifyRequest, query: Record<string, string>): TypeFilters {
  const ctx = contextOf(req);
  const filters: Record<string, string> = { ...query };
  for (const key of ['limit', 'marker', 'offset', 'sort', 'sort_key', 'sort_dir']) delete filters[key];
  const admin = isAdmin(volume, ctx);
  if (atLeast(req, '3.52')) {
    if (!admin) {
      delete filters.all_tenants;
      const invalid = Object.keys(filters).filter((k) => !['is_public', 'extra_specs'].includes(k));
      if (invalid.length > 0) throw badRequest(`Invalid filters ${invalid.join(',')} are found in query options.`);
    }
  } else if (!admin) {
    for (const key of Object.keys(filters)) if (key !== 'is_public') delete filters[key];
  }
  const isPublic = admin ? parseIsPublic(filters.is_public) : true;
  delete filters.is_public;
  let specs: Record<string, string> | null = null;
  if (filters.extra_specs !== undefined) {
    specs = parseSpecFilter(filters.extra_specs) ?? {};
    delete filters.extra_specs;
  }
  return { isPublic, specs, columns: filters };
}

async function listTypes(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'volume_extension:type_get_all');
  const query = queryOf(req);
  const { limit, marker, offset } = paginationOf(volume, query);
  const sort = sortOf(query);
  for (const { key } of sort) if (!SORT_KEYS.includes(key)) throw badRequest('Invalid input received: Invalid sort key');
  const filters = typeFilters(volume, req, query);
  // A filter on a spec the caller may not read matches nothing (not everything), as in Cinder.
  const sensitive = !allowed(volume, ctx, 'volume_extension:types_extra_specs:read_sensitive');
  if (filters.specs && sensitive && Object.keys(filters.specs).some((k) => !USER_VISIBLE_EXTRA_SPECS.includes(k))) return { volume_types: [] };
  // Remaining filters are columns (admins only); an unknown one matches nothing, as in Cinder.
  if (Object.keys(filters.columns).some((k) => !['id', 'name', 'description', 'qos_specs_id'].includes(k))) return { volume_types: [] };
  let types = await loadTypes(volume);
  const access = new Set(
    ctx.projectId ? (await volume.db.selectFrom('volume_type_project').select('volume_type_id').where('project_id', '=', ctx.projectId).execute()).map((r) => r.volume_type_id) : [],
  );
  // Admins see every type in Cinder's query; the is_public filter then narrows.
  if (!isAdmin(volume, ctx)) types = types.filter((t) => t.is_public || access.has(t.id));
  if (filters.isPublic === true) types = types.filter((t) => t.is_public || access.has(t.id));
  else if (filters.isPublic === false) types = types.filter((t) => !t.is_public);
  const wanted = filters.specs ?? {};
  types = types.filter((t) => Object.entries(wanted).every(([k, v]) => (k === 'RESKEY:availability_zones' ? (t.extra_specs[k] ?? '\0').includes(v) : t.extra_specs[k] === v)));
  for (const [key, value] of Object.entries(filters.columns)) types = types.filter((t) => (t as unknown as Record<string, unknown>)[key] === value);
  types.sort(compareBy(sort));
  if (marker !== undefined) {
    const at = types.findIndex((t) => t.id === marker);
    if (at < 0) throw notFound(`Marker ${marker} could not be found.`);
    types = types.slice(at + 1);
  }
  const pageSize = limit ?? volume.config.volume.max_limit;
  types = types.slice(offset).slice(0, pageSize);
  const body: Record<string, unknown> = { volume_types: types.map((t) => typeView(volume, ctx, t)) };
  const last = types[types.length - 1];
  if (last && types.length === pageSize) body.volume_type_links = [nextLink(volume, req, 'types', last.id)];
  return body;
}

async function showType(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  let type: VolumeType;
  if (req.params.id === 'default') {
    type = await defaultVolumeType(volume, ctx.projectId).catch((err: unknown) => {
      if (err instanceof VolumeError && err.status === 500) throw notFound('Default volume type can not be found.');
      throw err;
    });
  } else type = await getVolumeType(volume, ctx, req.params.id);
  authorize(volume, ctx, 'volume_extension:type_get');
  return { volume_type: typeView(volume, ctx, type) };
}

async function createType(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  const ctx = contextOf(req);
  const body = bodyObject(req.body, 'volume_type');
  checkKeys(body, 'volume_type', ['name', 'description', 'extra_specs', 'os-volume-type-access:is_public'], ['name']);
  const name = nameField(body.name);
  const description = body.description === undefined ? null : descriptionField(body.description);
  const specs = body.extra_specs === undefined ? {} : specsField(body.extra_specs, 'extra_specs', SPEC_KEY, true);
  const isPublic = body['os-volume-type-access:is_public'] === undefined ? true : booleanField(body['os-volume-type-access:is_public'], 'os-volume-type-access:is_public');
  authorize(volume, ctx, 'volume_extension:type_create');
  const id = randomUUID();
  try {
    await volume.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('volume_type').select('id').where('name', '=', name).executeTakeFirst();
      if (existing) throw conflict(`Volume Type ${name} already exists.`);
      await trx.insertInto('volume_type').values({ id, name, description, is_public: isPublic ? 1 : 0, qos_specs_id: null, created_at: now(), updated_at: null }).execute();
      const entries = Object.entries(specs).filter((e): e is [string, string] => e[1] !== null);
      if (entries.length > 0) await trx.insertInto('volume_type_extra_spec').values(entries.map(([key, value]) => ({ volume_type_id: id, key, value }))).execute();
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`Volume Type ${name} already exists.`);
    throw err;
  }
  const [type] = await loadTypes(volume, [id]);
  if (!type) throw volumeTypeNotFound(id);
  volume.notify('volume_type.create', { volume_types: manageView(type) });
  const view = manageView(type);
  if (allowed(volume, ctx, 'volume_extension:volume_type_access')) view['os-volume-type-access:is_public'] = type.is_public;
  return { volume_type: view };
}

async function updateType(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const body = bodyObject(req.body, 'volume_type');
  checkKeys(body, 'volume_type', ['name', 'description', 'is_public']);
  let name: string | null = null;
  if (body.name !== undefined && body.name !== null) name = stringField(body.name, 'name', 1, 255);
  const description = body.description === undefined ? null : descriptionField(body.description);
  const isPublic = body.is_public === undefined || body.is_public === null ? null : booleanField(body.is_public, 'is_public');
  authorize(volume, ctx, 'volume_extension:type_update');
  if (name !== null && name.trim().length === 0) throw badRequest('Volume type name can not be empty.');
  if (name === null && description === null && isPublic === null) throw badRequest('Specify volume type name, description, is_public or a combination thereof.');
  const old = await getVolumeType(volume, null, req.params.id);
  if (name !== null && name !== old.name) {
    const other = await volume.db.selectFrom('volume_type').select('id').where('name', '=', name).where('id', '!=', old.id).executeTakeFirst();
    if (other) throw conflict(`Volume Type ${name} already exists.`);
  }
  const values: { name?: string; description?: string; is_public?: number; updated_at: string } = { updated_at: now() };
  if (name !== null) values.name = name;
  if (description !== null) values.description = description;
  if (isPublic !== null) values.is_public = isPublic ? 1 : 0;
  try {
    await volume.db.updateTable('volume_type').set(values).where('id', '=', old.id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`Volume Type ${name ?? old.name} already exists.`);
    throw err;
  }
  if (name !== null) await renameTypeQuotas(volume, old.name, name);
  const [type] = await loadTypes(volume, [old.id]);
  if (!type) throw volumeTypeNotFound(old.id);
  volume.notify('volume_type.update', { volume_types: manageView(type) });
  return { volume_type: manageView(type) };
}

async function deleteType(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<unknown> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'volume_extension:type_delete');
  const type = await getVolumeType(volume, ctx, req.params.id);
  const defaultFor = await volume.db.selectFrom('default_volume_type').select('project_id').where('volume_type_id', '=', type.id).executeTakeFirst();
  const configured = await defaultVolumeType(volume, null).catch(() => null);
  if (defaultFor || configured?.id === type.id) throw badRequest(`The volume type ${type.id} is a default volume type and cannot be deleted.`);
  const count = await volume.db.selectFrom('volume_type').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  if (Number(count?.n ?? 0) <= 1) throw badRequest(`The volume type ${type.id} is the only currently defined volume type and cannot be deleted.`);
  await volume.db.transaction().execute(async (trx) => {
    const inUse = await trx.selectFrom('volume').select('id').where('volume_type_id', '=', type.id).executeTakeFirst();
    if (inUse) throw badRequest('Target volume type is still in use.');
    await trx.deleteFrom('volume_type_extra_spec').where('volume_type_id', '=', type.id).execute();
    await trx.deleteFrom('volume_type_project').where('volume_type_id', '=', type.id).execute();
    await trx.deleteFrom('volume_type_encryption').where('volume_type_id', '=', type.id).execute();
    await trx.deleteFrom('volume_type').where('id', '=', type.id).execute();
  });
  await deleteTypeQuotas(volume, type.name);
  volume.notify('volume_type.delete', { volume_types: manageView(type) });
  return reply.code(202).send();
}

/** `{"addProjectAccess": {"project": "..."}}` or `removeProjectAccess`: the project id. */
function accessProject(body: Obj, action: string): string {
  const inner = body[action];
  if (!isObject(inner)) throw invalidField(action, inner, notOfType(inner, 'object'));
  checkKeys(inner, action, ['project'], ['project']);
  return stringField(inner.project, 'project', 1, 255);
}

async function typeAction(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<unknown> {
  const ctx = contextOf(req);
  if (!isObject(req.body)) throw badRequest(notOfType(req.body ?? null, 'object'));
  const body = req.body;
  const action = Object.keys(body)[0];
  if (Object.keys(body).length !== 1 || (action !== 'addProjectAccess' && action !== 'removeProjectAccess')) {
    throw badRequest(`There is no such action: ${action ?? ''}`);
  }
  const project = accessProject(body, action);
  authorize(volume, ctx, `volume_extension:volume_type_access:${action}`);
  const type = await getVolumeType(volume, null, req.params.id);
  if (type.is_public) throw badRequest('Invalid volume type: Type access modification is not applicable to public volume type.');
  if (action === 'addProjectAccess') {
    try {
      await volume.db.insertInto('volume_type_project').values({ volume_type_id: type.id, project_id: project }).execute();
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`Volume type access for ${req.params.id} / ${project} combination already exists.`);
      throw err;
    }
    volume.notify('volume_type_project.access.add', { volume_type_id: type.id, project_id: project });
  } else {
    const res = await volume.db.deleteFrom('volume_type_project').where('volume_type_id', '=', type.id).where('project_id', '=', project).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound(`Volume type access not found for ${req.params.id} / ${project} combination.`);
    volume.notify('volume_type_project.access.remove', { volume_type_id: type.id, project_id: project });
  }
  return reply.code(202).send();
}

async function listAccess(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:volume_type_access:get_all_for_type');
  const type = await getVolumeType(volume, null, req.params.id);
  if (type.is_public) throw notFound('Access list not available for public volume types.');
  const projects = await typeProjects(volume, type.id);
  return { volume_type_access: projects.map((project_id) => ({ volume_type_id: type.id, project_id })) };
}

/** Registers `/types` and the type access routes. */
export function registerTypes(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/types', async (req) => listTypes(volume, req));
  app.get<{ Params: { id: string } }>('/v3/types/:id', async (req) => showType(volume, req));
  app.post('/v3/types', async (req) => createType(volume, req));
  app.put<{ Params: { id: string } }>('/v3/types/:id', async (req) => updateType(volume, req));
  app.delete<{ Params: { id: string } }>('/v3/types/:id', async (req, reply) => deleteType(volume, req, reply));
  app.post<{ Params: { id: string } }>('/v3/types/:id/action', async (req, reply) => typeAction(volume, req, reply));
  app.get<{ Params: { id: string } }>('/v3/types/:id/os-volume-type-access', async (req) => listAccess(volume, req));
}

