import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sql, type Expression, type SqlBool } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { BadRequest, Forbidden, NotFound } from '../../core/errors.js';
import { glanceTime, isoNow, newUuid } from '../common.js';
import type { MetadefNamespaceRow } from '../db/schema.js';
import { allowed, authorize, isAdmin, type ImageService } from '../image.js';
import { findNamespace, namespaceFor, namespaceTarget, parseLimit, queryParam, refuseIfProtected, requireName, sortDir, unique, type Db } from './namespace-access.js';
import { addAssociation } from './resource-types.js';
import { BODIES, validateBody } from './schemas.js';
import { associationsOf, associationView, namespaceDetail, namespaceHref, namespaceView, propertyDefinition, propertyMap } from './views.js';

type Where = Expression<SqlBool>;

const SORT_KEYS = ['namespace', 'display_name', 'description', 'visibility', 'protected', 'owner', 'created_at', 'updated_at'] as const;
type SortKey = (typeof SORT_KEYS)[number];

/** What a namespace may hold when it is created with content. */
interface Content {
  resource_type_associations?: { name: string; prefix?: string; properties_target?: string }[];
  properties?: Record<string, Record<string, unknown>>;
  objects?: { name: string; description?: string; required?: string[]; properties?: Record<string, Record<string, unknown>> }[];
  tags?: { name: string }[];
}

/** Namespaces: list, create (with content), show, replace, delete, and empty of objects, properties or tags. */
export function registerNamespaces(app: FastifyInstance, images: ImageService): void {
  app.get('/v2/metadefs/namespaces', async (req) => listNamespaces(images, req));

  app.post('/v2/metadefs/namespaces', async (req, reply) => {
    const body = validateBody(req.body, BODIES.namespace);
    const name = requireName(body.namespace, 'namespace');
    const content = body as Content;
    const owner = typeof body.owner === 'string' ? body.owner : (req.ctx.projectId ?? '');
    if (owner === '') throw new BadRequest('A namespace needs an owner: give one, or use a project-scoped token.');
    const visibility = (body.visibility as string | undefined) ?? 'private';
    const target = { project_id: owner, owner, visibility, namespace: name };
    authorize(images, req, 'add_metadef_namespace', target);
    if (content.resource_type_associations?.length) authorize(images, req, 'add_metadef_resource_type_association', target);
    if (content.objects?.length) authorize(images, req, 'add_metadef_object', target);
    if (content.properties && Object.keys(content.properties).length) authorize(images, req, 'add_metadef_property', target);
    if (content.tags?.length) authorize(images, req, 'add_metadef_tag', target);
    if (owner !== req.ctx.projectId && !isAdmin(images, req.ctx)) throw new Forbidden(`You are not permitted to create namespaces owned by '${owner}'.`);
    checkContent(content);

    const now = isoNow();
    const row: MetadefNamespaceRow = {
      id: newUuid(),
      namespace: name,
      display_name: (body.display_name as string | undefined) ?? null,
      description: (body.description as string | undefined) ?? null,
      visibility,
      protected: body.protected === true ? 1 : 0,
      owner,
      created_at: now,
      updated_at: now,
    };
    const detail = await images.db.transaction().execute(async (trx) => {
      await unique(() => trx.insertInto('metadef_namespace').values(row).execute(), () => `The metadata definition namespace=${name} already exists.`);
      await addContent(images, trx, row, content, now);
      return namespaceDetail(trx, row);
    });
    images.notify('metadef_namespace.create', namespaceNotification(row));
    reply.code(201).header('Location', `${images.publicUrl}${namespaceHref(encodeURIComponent(name).replaceAll('%3A', ':'))}`);
    return detail;
  });

  app.get<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace', async (req) => {
    const row = await findNamespace(images, req.ctx, req.params.namespace);
    const target = namespaceTarget(row);
    // A namespace the rule hides does not exist for the caller.
    if (!allowed(images, req.ctx, 'get_metadef_namespace', target)) throw new NotFound(`Metadata definition namespace=${row.namespace} was not found.`);
    for (const rule of ['list_metadef_resource_types', 'get_metadef_objects', 'get_metadef_properties', 'get_metadef_tags']) authorize(images, req, rule, target);
    return namespaceDetail(images.db, row, queryParam(req, 'resource_type') || undefined);
  });

  app.put<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace', async (req) => {
    const body = validateBody(req.body, BODIES.namespace);
    const name = requireName(body.namespace, 'namespace');
    const row = await namespaceFor(images, req, 'modify_metadef_namespace');
    const owner = typeof body.owner === 'string' ? body.owner : row.owner;
    if (owner !== row.owner && !isAdmin(images, req.ctx)) throw new Forbidden('Only administrators can give a namespace to another project.');
    // A replacement, as in Glance: what the body leaves out takes its default.
    const updated: MetadefNamespaceRow = {
      ...row,
      namespace: name,
      display_name: (body.display_name as string | undefined) ?? null,
      description: (body.description as string | undefined) ?? null,
      visibility: (body.visibility as string | undefined) ?? 'private',
      protected: body.protected === true ? 1 : 0,
      owner,
      updated_at: isoNow(),
    };
    const { id, created_at: _created, ...changes } = updated;
    await unique(
      () => images.db.updateTable('metadef_namespace').set(changes).where('id', '=', id).execute(),
      () => `Invalid update. It would result in a duplicate metadata definition namespace with the same name of ${name}`,
    );
    images.notify('metadef_namespace.update', { ...namespaceNotification(updated), namespace_old: row.namespace });
    return namespaceView(updated);
  });

  app.delete<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace', async (req, reply) => {
    const row = await namespaceFor(images, req, 'delete_metadef_namespace');
    refuseIfProtected(row, `Metadata definition namespace ${row.namespace} is protected and cannot be deleted.`);
    // Objects, properties, tags and associations go with it (foreign keys cascade).
    await images.db.deleteFrom('metadef_namespace').where('id', '=', row.id).execute();
    images.notify('metadef_namespace.delete', { ...namespaceNotification(row), deleted: true, deleted_at: isoNow() });
    reply.code(204);
  });

  const contents = [
    ['objects', 'metadef_object'],
    ['properties', 'metadef_property'],
    ['tags', 'metadef_tag'],
  ] as const;
  for (const [path, table] of contents) {
    app.delete<{ Params: { namespace: string } }>(`/v2/metadefs/namespaces/:namespace/${path}`, async (req, reply) => {
      const row = await namespaceFor(images, req, 'delete_metadef_namespace');
      if (path === 'tags') authorize(images, req, 'delete_metadef_tags', namespaceTarget(row));
      refuseIfProtected(row, `Metadata definition namespace ${row.namespace} is protected and cannot be deleted.`);
      await images.db.deleteFrom(table).where('namespace_id', '=', row.id).execute();
      images.notify(`metadef_namespace.delete_${path}`, namespaceNotification(row));
      reply.code(204);
    });
  }
}

/** Names inside the content must be usable in URLs. */
function checkContent(content: Content): void {
  for (const association of content.resource_type_associations ?? []) requireName(association.name, 'resource type');
  for (const name of Object.keys(content.properties ?? {})) requireName(name, 'property');
  for (const object of content.objects ?? []) {
    requireName(object.name, 'object');
    for (const name of Object.keys(object.properties ?? {})) requireName(name, 'property');
  }
  for (const tag of content.tags ?? []) requireName(tag.name, 'tag');
}

/** Stores the content a namespace was created with; a duplicate name is a 409 (and the transaction rolls back). */
async function addContent(images: ImageService, trx: Db, row: MetadefNamespaceRow, content: Content, now: string): Promise<void> {
  const ns = row.namespace;
  for (const association of content.resource_type_associations ?? []) await addAssociation(images, trx, row, association, now);
  for (const [name, definition] of Object.entries(content.properties ?? {})) {
    await unique(
      () => trx.insertInto('metadef_property').values({ namespace_id: row.id, name, schema: JSON.stringify(propertyDefinition(definition)), created_at: now, updated_at: now }).execute(),
      () => `A metadata definition property with name=${name} already exists in namespace=${ns}.`,
    );
  }
  for (const object of content.objects ?? []) {
    const values = {
      namespace_id: row.id,
      name: object.name,
      description: object.description ?? null,
      required: JSON.stringify(object.required ?? []),
      properties: JSON.stringify(propertyMap(object.properties)),
      created_at: now,
      updated_at: now,
    };
    await unique(() => trx.insertInto('metadef_object').values(values).execute(), () => `A metadata definition object with name=${object.name} already exists in namespace=${ns}.`);
  }
  for (const tag of content.tags ?? []) {
    await unique(
      () => trx.insertInto('metadef_tag').values({ namespace_id: row.id, name: tag.name, created_at: now, updated_at: now }).execute(),
      () => `A metadata tag with name=${tag.name} already exists in namespace=${ns}.`,
    );
  }
}

/** Glance's notification payload for a namespace. */
export function namespaceNotification(row: MetadefNamespaceRow): Record<string, unknown> {
  return {
    namespace: row.namespace,
    namespace_old: row.namespace,
    display_name: row.display_name,
    protected: row.protected === 1,
    visibility: row.visibility,
    owner: row.owner,
    description: row.description,
    created_at: glanceTime(row.created_at),
    updated_at: glanceTime(row.updated_at),
    deleted: false,
    deleted_at: null,
  };
}

/** Nullable text sorts as '' so that keyset pagination compares values, never nulls. */
function sortExpr(key: SortKey): any {
  if (key === 'display_name' || key === 'description') return sql`coalesce(${sql.ref(`metadef_namespace.${key}`)}, '')`;
  return sql.ref(`metadef_namespace.${key}`);
}

function sortValue(key: SortKey, row: MetadefNamespaceRow): string | number {
  return row[key] ?? '';
}

/** The query of a namespace list, checked (400 for bad values, 404 for an unknown marker). */
interface ListQuery {
  limit: number;
  dir: 'asc' | 'desc';
  keys: SortKey[];
  visibility: string | undefined;
  resourceTypes: string[];
  marker: MetadefNamespaceRow | undefined;
}

async function readListQuery(images: ImageService, req: FastifyRequest): Promise<ListQuery> {
  const config = images.config.image;
  const limit = Math.min(parseLimit(queryParam(req, 'limit')) ?? config.limit_param_default, config.api_limit_max);
  const dir = sortDir(queryParam(req, 'sort_dir'), 'desc');
  const sortKey = queryParam(req, 'sort_key') ?? 'created_at';
  if (!(SORT_KEYS as readonly string[]).includes(sortKey)) throw new BadRequest(`Invalid sort key: ${sortKey}. It must be one of the following: ${SORT_KEYS.join(', ')}.`);
  const visibility = queryParam(req, 'visibility');
  if (visibility !== undefined && visibility !== 'public' && visibility !== 'private') throw new BadRequest(`Invalid visibility value: ${visibility}`);
  const resourceTypes = (queryParam(req, 'resource_types') ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const markerName = queryParam(req, 'marker');
  const marker = markerName === undefined ? undefined : await findNamespace(images, req.ctx, markerName);
  // Creation time and then the (unique) name break ties, so that pages never overlap.
  return { limit, dir, keys: [...new Set<SortKey>([sortKey as SortKey, 'created_at', 'namespace'])], visibility, resourceTypes, marker };
}

/** One page of the namespaces the caller can see, in order. */
async function selectNamespaces(images: ImageService, ctx: RequestContext, list: ListQuery): Promise<MetadefNamespaceRow[]> {
  const { keys, dir, marker } = list;
  if (list.limit === 0) return [];
  let query = images.db.selectFrom('metadef_namespace').selectAll();
  if (!isAdmin(images, ctx)) {
    const project = ctx.projectId;
    query = query.where((eb) => (project ? eb.or([eb('visibility', '=', 'public'), eb('owner', '=', project)]) : eb('visibility', '=', 'public')));
  }
  if (list.visibility) query = query.where('visibility', '=', list.visibility);
  if (list.resourceTypes.length) {
    const types = list.resourceTypes;
    query = query.where((eb) =>
      eb.exists(eb.selectFrom('metadef_namespace_resource_type as a').select('a.namespace_id').whereRef('a.namespace_id', '=', 'metadef_namespace.id').where('a.resource_type', 'in', types)),
    );
  }
  if (marker) {
    query = query.where((eb) => {
      const options: Where[] = keys.map((key, i) =>
        eb.and([...keys.slice(0, i).map((k) => eb(sortExpr(k), '=', sortValue(k, marker))), eb(sortExpr(key), dir === 'asc' ? '>' : '<', sortValue(key, marker))]),
      );
      return eb.or(options);
    });
  }
  for (const key of keys) query = query.orderBy(sortExpr(key), dir);
  return query.limit(list.limit).execute();
}

/**
 * `GET /v2/metadefs/namespaces`: the namespaces the caller can see (public
 * ones and its project's), sorted by `sort_key`, filtered by `visibility`
 * and `resource_types`, a page of `limit` after `marker` (a namespace name)
 * with a `next` link when more may follow. Each shows its resource type
 * associations, not its content.
 */
async function listNamespaces(images: ImageService, req: FastifyRequest): Promise<Record<string, unknown>> {
  authorize(images, req, 'get_metadef_namespaces', { project_id: req.ctx.projectId ?? '' });
  authorize(images, req, 'list_metadef_resource_types', { project_id: req.ctx.projectId ?? '' });
  const list = await readListQuery(images, req);
  const rows = await selectNamespaces(images, req.ctx, list);
  const associations = await associationsOf(images.db, rows.map((r) => r.id));
  const namespaces = rows.map((row) => {
    const view = namespaceView(row);
    const found = associations.get(row.id);
    if (found?.length) view.resource_type_associations = found.map(associationView);
    return view;
  });
  const params = new URLSearchParams(new URL(req.url, 'http://x').searchParams);
  params.delete('marker');
  const first = params.toString();
  const body: Record<string, unknown> = { namespaces, first: `/v2/metadefs/namespaces${first ? `?${first}` : ''}`, schema: '/v2/schemas/metadefs/namespaces' };
  const last = rows[rows.length - 1];
  if (last && rows.length === list.limit) {
    params.set('marker', last.namespace);
    body.next = `/v2/metadefs/namespaces?${params.toString()}`;
  }
  return body;
}
