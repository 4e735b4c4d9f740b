import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../core/errors.js';
import { bool, newId, parseJson, splitExtra } from '../common.js';
import type { EndpointRow, IdentitySchema } from '../db/schema.js';
import { authorize, collectionLinks, selfLink, type Identity } from '../identity.js';

/** An entity of a request body (`{"service": {...}}`'s inner object). */
export type Entity = Record<string, unknown>;
type Db = Kysely<IdentitySchema>;
type ServiceRow = IdentitySchema['service'];
type RegionRow = IdentitySchema['region'];

/**
 * The request schema of `{ "<key>": {...} }`: the entity keeps unknown
 * attributes (Keystone stores them as extras); updates need at least one.
 */
export function entitySchema(key: string, properties: Entity, options: { required?: string[]; update?: boolean } = {}): Entity {
  const inner: Entity = { type: 'object', properties, additionalProperties: true };
  if (options.required) inner.required = options.required;
  if (options.update) inner.minProperties = 1;
  return { type: 'object', required: [key], properties: { [key]: inner } };
}

/** The entity of a request body, or 400 when the body lacks it. */
export function entityOf(body: unknown, key: string): Entity {
  const entity = typeof body === 'object' && body !== null ? (body as Entity)[key] : undefined;
  if (typeof entity !== 'object' || entity === null || Array.isArray(entity)) throw expecting(key, 'request body');
  return entity as Entity;
}

/** Keystone renames attribute keys with `:` or `-` to use `_` (`_normalize_dict`). */
export function normalizeKeys(entity: Entity): Entity {
  return Object.fromEntries(Object.entries(entity).map(([k, v]) => [k.replaceAll(':', '_').replaceAll('-', '_'), v]));
}

/** 400 when an update names an id other than the one in its URL. */
export function requireMatchingId(entity: Entity, id: string): void {
  if (entity.id !== undefined && entity.id !== null && entity.id !== id) throw new BadRequest('Cannot change ID');
}

/** Keystone's `ValidationError`: "Expecting to find X in Y. ..." (400). */
export function expecting(attribute: string, target: string): BadRequest {
  return new BadRequest(
    `Expecting to find ${attribute} in ${target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.`,
  );
}

/** A query filter's value (the first when repeated). */
export function queryText(value: unknown): string | undefined {
  if (Array.isArray(value)) return queryText(value[0]);
  return typeof value === 'string' ? value : undefined;
}

/** Records a write: caches drop what they hold and a notification goes out. */
export function written(identity: Identity, type: string, operation: 'created' | 'updated' | 'deleted', id: string): void {
  identity.changed();
  identity.notify(type, operation, id);
}

/** An endpoint as Keystone writes it (with the legacy `region` = `region_id`). */
export function endpointView(identity: Identity, row: EndpointRow): Entity {
  return {
    ...parseJson(row.extra),
    id: row.id,
    interface: row.interface,
    region_id: row.region_id,
    region: row.region_id,
    service_id: row.service_id,
    url: row.url,
    enabled: bool(row.enabled),
    links: selfLink(identity, `endpoints/${row.id}`),
  };
}

/** Loads an endpoint; 404 as Keystone words it. */
export async function getEndpoint(db: Db, id: string): Promise<EndpointRow> {
  const row = await db.selectFrom('endpoint').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find endpoint: ${id}.`);
  return row;
}

/** The service catalog's admin API: services, endpoints and regions. */
export function registerCatalog(app: FastifyInstance, identity: Identity): void {
  registerServices(app, identity);
  registerEndpoints(app, identity);
  registerRegions(app, identity);
}

// ---- services ----

const SERVICE_COLUMNS = ['id', 'type', 'enabled', 'links'];
const serviceProperties = {
  enabled: { type: 'boolean' },
  name: { type: 'string', minLength: 1, maxLength: 255, pattern: '[\\S]+' },
  type: { type: 'string', minLength: 1, maxLength: 255 },
};

function serviceView(identity: Identity, row: ServiceRow): Entity {
  return { ...parseJson(row.extra), id: row.id, type: row.type, enabled: bool(row.enabled), links: selfLink(identity, `services/${row.id}`) };
}

async function findService(db: Db, id: string): Promise<ServiceRow | undefined> {
  return db.selectFrom('service').selectAll().where('id', '=', id).executeTakeFirst();
}

async function getService(db: Db, id: string): Promise<ServiceRow> {
  const row = await findService(db, id);
  if (!row) throw new NotFound(`Could not find service: ${id}.`);
  return row;
}

async function createService(identity: Identity, entity: Entity): Promise<ServiceRow> {
  const extra = { name: '', ...splitExtra(entity, SERVICE_COLUMNS) };
  const row: ServiceRow = { id: newId(), type: String(entity.type), enabled: entity.enabled === false ? 0 : 1, extra: JSON.stringify(extra) };
  await identity.db.insertInto('service').values(row).execute();
  written(identity, 'service', 'created', row.id);
  return row;
}

async function updateService(identity: Identity, id: string, entity: Entity): Promise<ServiceRow> {
  const row = await getService(identity.db, id);
  const updated: ServiceRow = {
    ...row,
    type: typeof entity.type === 'string' ? entity.type : row.type,
    enabled: typeof entity.enabled === 'boolean' ? Number(entity.enabled) : row.enabled,
    extra: JSON.stringify({ ...parseJson(row.extra), ...splitExtra(entity, SERVICE_COLUMNS) }),
  };
  await identity.db.updateTable('service').set({ type: updated.type, enabled: updated.enabled, extra: updated.extra }).where('id', '=', row.id).execute();
  written(identity, 'service', 'updated', row.id);
  return updated;
}

function registerServices(app: FastifyInstance, identity: Identity): void {
  app.get<{ Querystring: Entity }>('/v3/services', async (req) => {
    authorize(identity, req, 'identity:list_services');
    const type = queryText(req.query.type);
    const name = queryText(req.query.name);
    let query = identity.db.selectFrom('service').selectAll();
    if (type !== undefined) query = query.where('type', '=', type);
    const rows = (await query.execute()).filter((r) => name === undefined || parseJson(r.extra).name === name);
    return { services: rows.map((r) => serviceView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { service_id: string } }>('/v3/services/:service_id', async (req) => {
    authorize(identity, req, 'identity:get_service');
    return { service: serviceView(identity, await getService(identity.db, req.params.service_id)) };
  });

  app.post('/v3/services', { schema: { body: entitySchema('service', serviceProperties, { required: ['type'] }) } }, async (req, reply) => {
    authorize(identity, req, 'identity:create_service');
    const row = await createService(identity, normalizeKeys(entityOf(req.body, 'service')));
    reply.code(201);
    return { service: serviceView(identity, row) };
  });

  app.patch<{ Params: { service_id: string } }>(
    '/v3/services/:service_id',
    { schema: { body: entitySchema('service', serviceProperties, { update: true }) } },
    async (req) => {
      authorize(identity, req, 'identity:update_service');
      const entity = normalizeKeys(entityOf(req.body, 'service'));
      requireMatchingId(entity, req.params.service_id);
      return { service: serviceView(identity, await updateService(identity, req.params.service_id, entity)) };
    },
  );

  app.delete<{ Params: { service_id: string } }>('/v3/services/:service_id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_service');
    const row = await getService(identity.db, req.params.service_id);
    await identity.db.transaction().execute(async (trx) => {
      const endpoints = await trx.selectFrom('endpoint').select('id').where('service_id', '=', row.id).execute();
      if (endpoints.length > 0) {
        await trx.deleteFrom('project_endpoint').where('endpoint_id', 'in', endpoints.map((e) => e.id)).execute();
      }
      await trx.deleteFrom('endpoint').where('service_id', '=', row.id).execute();
      await trx.deleteFrom('service').where('id', '=', row.id).execute();
    });
    written(identity, 'service', 'deleted', row.id);
    return reply.code(204).send();
  });
}

// ---- endpoints ----

const ENDPOINT_COLUMNS = ['id', 'interface', 'region_id', 'region', 'service_id', 'url', 'enabled', 'legacy_endpoint_id', 'links'];
const endpointProperties = {
  enabled: { type: 'boolean' },
  interface: { type: 'string', enum: ['admin', 'internal', 'public'] },
  region_id: { type: 'string' },
  region: { type: 'string' },
  service_id: { type: 'string' },
  url: { type: 'string', minLength: 0, maxLength: 225, pattern: '^[a-zA-Z0-9+.-]+:.+' },
};

/** The substitutions Keystone allows in endpoint URLs (`$(project_id)s`, `%(tenant_id)s`, ...). */
const URL_SUBSTITUTIONS = ['tenant_id', 'project_id', 'user_id', 'public_bind_host', 'admin_bind_host', 'compute_host', 'admin_port', 'public_port', 'public_endpoint'];
const FORMAT_SPEC = /%(?:%|(?:\(([^)]*)\))?[#0\- +]*\d*(?:\.\d*)?[sra])/y;

/**
 * Keystone's `check_endpoint_url`: the URL, with `$(` read as `%(`, must
 * format with Python's `%` operator and only whitelisted names.
 */
export function validEndpointUrl(url: string): boolean {
  const text = url.replaceAll('$(', '%(');
  let at = text.indexOf('%');
  while (at !== -1) {
    FORMAT_SPEC.lastIndex = at;
    const match = FORMAT_SPEC.exec(text);
    if (!match) return false;
    if (match[1] !== undefined && !URL_SUBSTITUTIONS.includes(match[1])) return false;
    at = text.indexOf('%', FORMAT_SPEC.lastIndex);
  }
  return true;
}

/**
 * The legacy `region` attribute: when no `region_id` is given, it names the
 * region, which is created when missing (Keystone keeps v2-style clients working).
 */
async function legacyRegion(identity: Identity, entity: Entity): Promise<void> {
  const legacy = entity.region;
  delete entity.region;
  if ((entity.region_id !== undefined && entity.region_id !== null) || typeof legacy !== 'string') return;
  entity.region_id = legacy;
  if (await findRegion(identity.db, legacy)) return;
  try {
    await createRegion(identity, { id: legacy });
  } catch (err) {
    if (!(err instanceof Conflict)) throw err;
  }
}

/** 400 (not 404) for a missing region or service, as Keystone answers. */
async function checkEndpointReferences(db: Db, entity: Entity): Promise<void> {
  if (typeof entity.region_id === 'string' && !(await findRegion(db, entity.region_id))) throw expecting('endpoint region_id', 'region table');
  if (typeof entity.service_id === 'string' && !(await findService(db, entity.service_id))) throw expecting('endpoint service_id', 'service table');
}

async function createEndpoint(identity: Identity, entity: Entity): Promise<EndpointRow> {
  const url = String(entity.url);
  if (!validEndpointUrl(url)) throw new BadRequest(`Cannot create an endpoint with an invalid URL: ${url}.`);
  await legacyRegion(identity, entity);
  await checkEndpointReferences(identity.db, entity);
  const row: EndpointRow = {
    id: newId(),
    service_id: String(entity.service_id),
    interface: String(entity.interface),
    url,
    region_id: typeof entity.region_id === 'string' ? entity.region_id : null,
    enabled: entity.enabled === false ? 0 : 1,
    extra: JSON.stringify(splitExtra(entity, ENDPOINT_COLUMNS)),
  };
  await identity.db.insertInto('endpoint').values(row).execute();
  written(identity, 'endpoint', 'created', row.id);
  return row;
}

async function updateEndpoint(identity: Identity, id: string, entity: Entity): Promise<EndpointRow> {
  await legacyRegion(identity, entity);
  await checkEndpointReferences(identity.db, entity);
  const updated = mergeEndpoint(await getEndpoint(identity.db, id), entity);
  const { id: _id, ...changes } = updated;
  await identity.db.updateTable('endpoint').set(changes).where('id', '=', id).execute();
  written(identity, 'endpoint', 'updated', id);
  return updated;
}

function registerEndpoints(app: FastifyInstance, identity: Identity): void {
  app.get<{ Querystring: Entity }>('/v3/endpoints', async (req) => {
    authorize(identity, req, 'identity:list_endpoints');
    let query = identity.db.selectFrom('endpoint').selectAll();
    for (const filter of ['interface', 'service_id', 'region_id'] as const) {
      const value = queryText(req.query[filter]);
      if (value !== undefined) query = query.where(filter, '=', value);
    }
    const rows = await query.execute();
    return { endpoints: rows.map((r) => endpointView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { endpoint_id: string } }>('/v3/endpoints/:endpoint_id', async (req) => {
    authorize(identity, req, 'identity:get_endpoint');
    return { endpoint: endpointView(identity, await getEndpoint(identity.db, req.params.endpoint_id)) };
  });

  app.post('/v3/endpoints', { schema: { body: entitySchema('endpoint', endpointProperties, { required: ['interface', 'service_id', 'url'] }) } }, async (req, reply) => {
    authorize(identity, req, 'identity:create_endpoint');
    const row = await createEndpoint(identity, normalizeKeys(entityOf(req.body, 'endpoint')));
    reply.code(201);
    return { endpoint: endpointView(identity, row) };
  });

  app.patch<{ Params: { endpoint_id: string } }>(
    '/v3/endpoints/:endpoint_id',
    { schema: { body: entitySchema('endpoint', endpointProperties, { update: true }) } },
    async (req) => {
      authorize(identity, req, 'identity:update_endpoint');
      const entity = normalizeKeys(entityOf(req.body, 'endpoint'));
      requireMatchingId(entity, req.params.endpoint_id);
      return { endpoint: endpointView(identity, await updateEndpoint(identity, req.params.endpoint_id, entity)) };
    },
  );

  app.delete<{ Params: { endpoint_id: string } }>('/v3/endpoints/:endpoint_id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_endpoint');
    const row = await getEndpoint(identity.db, req.params.endpoint_id);
    await identity.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('project_endpoint').where('endpoint_id', '=', row.id).execute();
      await trx.deleteFrom('endpoint').where('id', '=', row.id).execute();
    });
    written(identity, 'endpoint', 'deleted', row.id);
    return reply.code(204).send();
  });
}

function mergeEndpoint(row: EndpointRow, entity: Entity): EndpointRow {
  const text = (key: string, fallback: string): string => (typeof entity[key] === 'string' ? (entity[key] as string) : fallback);
  return {
    id: row.id,
    service_id: text('service_id', row.service_id),
    interface: text('interface', row.interface),
    url: text('url', row.url),
    region_id: typeof entity.region_id === 'string' ? entity.region_id : row.region_id,
    enabled: typeof entity.enabled === 'boolean' ? Number(entity.enabled) : row.enabled,
    extra: JSON.stringify({ ...parseJson(row.extra), ...splitExtra(entity, ENDPOINT_COLUMNS) }),
  };
}

// ---- regions ----

const REGION_COLUMNS = ['id', 'description', 'parent_region_id', 'links'];
const regionProperties = {
  description: { type: ['string', 'null'] },
  id: { type: 'string', maxLength: 255 },
  parent_region_id: { type: ['string', 'null'] },
};

function regionView(identity: Identity, row: RegionRow): Entity {
  return { ...parseJson(row.extra), id: row.id, description: row.description, parent_region_id: row.parent_region_id, links: selfLink(identity, `regions/${row.id}`) };
}

async function findRegion(db: Db, id: string): Promise<RegionRow | undefined> {
  return db.selectFrom('region').selectAll().where('id', '=', id).executeTakeFirst();
}

async function getRegion(db: Db, id: string): Promise<RegionRow> {
  const row = await findRegion(db, id);
  if (!row) throw new NotFound(`Could not find region: ${id}.`);
  return row;
}

/** Creates a region (`entity.id` set): 409 on a taken id, 404 for an unknown parent. */
async function createRegion(identity: Identity, entity: Entity): Promise<RegionRow> {
  const id = String(entity.id);
  const conflict = (): Conflict => new Conflict(`Conflict occurred attempting to store region - Duplicate ID, ${id}.`);
  if (await findRegion(identity.db, id)) throw conflict();
  const parent = typeof entity.parent_region_id === 'string' ? entity.parent_region_id : null;
  if (parent !== null) await getRegion(identity.db, parent);
  const row: RegionRow = {
    id,
    description: typeof entity.description === 'string' ? entity.description : '',
    parent_region_id: parent,
    extra: JSON.stringify(splitExtra(entity, REGION_COLUMNS)),
  };
  try {
    await identity.db.insertInto('region').values(row).execute();
  } catch (err) {
    if (await findRegion(identity.db, id)) throw conflict();
    throw err;
  }
  written(identity, 'region', 'created', id);
  return row;
}

/** 400 when making `parentId` the parent of `id` closes a loop. */
async function checkNoCycle(db: Db, id: string, parentId: string): Promise<void> {
  const regions = await db.selectFrom('region').select(['id', 'parent_region_id']).execute();
  const parents = new Map(regions.map((r) => [r.id, r.parent_region_id]));
  const seen = new Set<string>();
  let current: string | null | undefined = parentId;
  while (current && !seen.has(current)) {
    if (current === id) throw new BadRequest(`The specified parent region ${parentId} would create a circular region hierarchy.`);
    seen.add(current);
    current = parents.get(current);
  }
}

async function updateRegion(identity: Identity, id: string, entity: Entity): Promise<RegionRow> {
  const parent = entity.parent_region_id;
  if (typeof parent === 'string') await getRegion(identity.db, parent);
  const row = await getRegion(identity.db, id);
  if (typeof parent === 'string') await checkNoCycle(identity.db, id, parent);
  const updated: RegionRow = {
    id,
    description: 'description' in entity ? (typeof entity.description === 'string' ? entity.description : '') : row.description,
    parent_region_id: parent === undefined ? row.parent_region_id : typeof parent === 'string' ? parent : null,
    extra: JSON.stringify({ ...parseJson(row.extra), ...splitExtra(entity, REGION_COLUMNS) }),
  };
  await identity.db.updateTable('region').set({ description: updated.description, parent_region_id: updated.parent_region_id, extra: updated.extra }).where('id', '=', id).execute();
  written(identity, 'region', 'updated', id);
  return updated;
}

/** Deletes a region and the regions below it; 403 when any of them has endpoints. */
async function deleteRegion(identity: Identity, id: string): Promise<void> {
  const regions = await identity.db.selectFrom('region').select(['id', 'parent_region_id']).execute();
  if (!regions.some((r) => r.id === id)) throw new NotFound(`Could not find region: ${id}.`);
  const subtree = new Set([id]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of regions) {
      if (r.parent_region_id !== null && subtree.has(r.parent_region_id) && !subtree.has(r.id)) {
        subtree.add(r.id);
        grew = true;
      }
    }
  }
  const ids = [...subtree];
  const used = await identity.db.selectFrom('endpoint').select('id').where('region_id', 'in', ids).executeTakeFirst();
  if (used) throw new Forbidden(`Unable to delete region ${id} because it or its child regions have associated endpoints.`);
  await identity.db.deleteFrom('region').where('id', 'in', ids).execute();
  written(identity, 'region', 'deleted', id);
}

function regionBody(req: FastifyRequest): Entity {
  return normalizeKeys(entityOf(req.body, 'region'));
}

function registerRegions(app: FastifyInstance, identity: Identity): void {
  app.get<{ Querystring: Entity }>('/v3/regions', async (req) => {
    authorize(identity, req, 'identity:list_regions');
    let query = identity.db.selectFrom('region').selectAll();
    const parent = queryText(req.query.parent_region_id);
    if (parent !== undefined) query = query.where('parent_region_id', '=', parent);
    const rows = await query.execute();
    return { regions: rows.map((r) => regionView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { region_id: string } }>('/v3/regions/:region_id', async (req) => {
    authorize(identity, req, 'identity:get_region');
    return { region: regionView(identity, await getRegion(identity.db, req.params.region_id)) };
  });

  const createSchema = { body: entitySchema('region', regionProperties) };
  app.post('/v3/regions', { schema: createSchema }, async (req, reply) => {
    authorize(identity, req, 'identity:create_region');
    const entity = regionBody(req);
    if (!entity.id) entity.id = newId();
    const row = await createRegion(identity, entity);
    reply.code(201);
    return { region: regionView(identity, row) };
  });

  app.put<{ Params: { region_id: string } }>('/v3/regions/:region_id', { schema: createSchema }, async (req, reply) => {
    authorize(identity, req, 'identity:create_region');
    const entity = regionBody(req);
    const id = req.params.region_id;
    if (entity.id === undefined) entity.id = id;
    else if (entity.id !== id) throw new BadRequest(`Conflicting region IDs specified: "${id}" != "${String(entity.id)}"`);
    const row = await createRegion(identity, entity);
    reply.code(201);
    return { region: regionView(identity, row) };
  });

  app.patch<{ Params: { region_id: string } }>('/v3/regions/:region_id', { schema: { body: entitySchema('region', regionProperties, { update: true }) } }, async (req) => {
    authorize(identity, req, 'identity:update_region');
    const entity = regionBody(req);
    requireMatchingId(entity, req.params.region_id);
    return { region: regionView(identity, await updateRegion(identity, req.params.region_id, entity)) };
  });

  app.delete<{ Params: { region_id: string } }>('/v3/regions/:region_id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_region');
    await deleteRegion(identity, req.params.region_id);
    return reply.code(204).send();
  });
}
