import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../../core/db/database.js';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../core/errors.js';
import { isoNow, newId } from '../common.js';
import type { IdentitySchema, LimitRow, RegisteredLimitRow } from '../db/schema.js';
import { authorize, collectionLinks, selfLink, type Identity } from '../identity.js';
import { expecting, queryText, type Entity } from './catalog.js';

type Db = Kysely<IdentitySchema>;

/** The only enforcement model here: Keystone's default, `flat`. */
const FLAT_MODEL = { name: 'flat', description: 'Limit enforcement and validation does not take project hierarchy into consideration.' };

// ---- request schemas: Keystone's (keystone/limit/schema.py) ----

/** A signed 32-bit integer; -1 means unlimited. */
const limitValue = { type: 'integer', minimum: -1, maximum: 0x7fffffff } as const;
/** Keystone checks `format: uuid`, which also takes the 32-hex-digit form our ids have. */
const serviceId = { type: 'string', pattern: '^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$' } as const;
const regionId = { type: ['string', 'null'], minLength: 1, maxLength: 255 } as const;
const resourceName = { type: 'string', minLength: 1, maxLength: 255, pattern: '\\S' } as const;
const description = { type: ['string', 'null'], maxLength: 255 } as const;
const ownerId = { type: ['string', 'null'], minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9-]+$' } as const;

const registeredLimitProperties = { service_id: serviceId, region_id: regionId, resource_name: resourceName, default_limit: limitValue, description };
const limitProperties = { service_id: serviceId, region_id: regionId, project_id: ownerId, domain_id: ownerId, resource_name: resourceName, resource_limit: limitValue, description };

/** `{"<key>": [ {...}, ... ]}`: at least one entity, nothing unknown (Keystone's `additionalProperties: false`). */
function listBody(key: string, properties: Record<string, unknown>, required: string[]): Record<string, unknown> {
  const item = { type: 'object', properties, required, additionalProperties: false };
  return { type: 'object', required: [key], additionalProperties: false, properties: { [key]: { type: 'array', minItems: 1, items: item } } };
}

/** `{"<key>": {...}}` for a PATCH. */
function updateBody(key: string, properties: Record<string, unknown>): Record<string, unknown> {
  return { type: 'object', required: [key], additionalProperties: false, properties: { [key]: { type: 'object', properties, additionalProperties: false } } };
}

interface RegisteredLimitInput {
  service_id: string;
  region_id?: string | null;
  resource_name: string;
  default_limit: number;
  description?: string | null;
}

type RegisteredLimitUpdate = Partial<RegisteredLimitInput>;

interface LimitInput {
  service_id: string;
  region_id?: string | null;
  project_id?: string | null;
  domain_id?: string | null;
  resource_name: string;
  resource_limit: number;
  description?: string | null;
}

interface LimitUpdate {
  resource_limit?: number;
  description?: string | null;
}

/** Whose limit it is: one of the two is set. */
type LimitOwner = Pick<LimitRow, 'project_id' | 'domain_id'>;

/** A limit with the service, region and resource of its registered limit. */
interface LimitEntry extends Omit<LimitRow, 'registered_limit_id'> {
  service_id: string;
  region_id: string | null;
  resource_name: string;
}

// ---- views ----

function registeredLimitView(identity: Identity, row: RegisteredLimitRow): Entity {
  return {
    id: row.id,
    service_id: row.service_id,
    region_id: row.region_id,
    resource_name: row.resource_name,
    default_limit: row.default_limit,
    description: row.description,
    links: selfLink(identity, `registered_limits/${row.id}`),
  };
}

function limitView(identity: Identity, row: LimitEntry): Entity {
  return {
    id: row.id,
    project_id: row.project_id,
    domain_id: row.domain_id,
    service_id: row.service_id,
    region_id: row.region_id,
    resource_name: row.resource_name,
    resource_limit: row.resource_limit,
    description: row.description,
    links: selfLink(identity, `limits/${row.id}`),
  };
}

// ---- lookups ----

async function getRegisteredLimit(db: Db, id: string): Promise<RegisteredLimitRow> {
  const row = await db.selectFrom('registered_limit').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find registered limit for ${id}.`);
  return row;
}

/** The registered limit of a service's resource in a region (null: the one without a region). */
async function findRegisteredLimit(db: Db, serviceId: string, regionId: string | null, resourceName: string): Promise<RegisteredLimitRow | undefined> {
  let q = db.selectFrom('registered_limit').selectAll().where('service_id', '=', serviceId).where('resource_name', '=', resourceName);
  q = regionId === null ? q.where('region_id', 'is', null) : q.where('region_id', '=', regionId);
  return q.executeTakeFirst();
}

/** Limits joined with their registered limits, for views and filters. */
function limitEntries(db: Db) {
  return db
    .selectFrom('limit')
    .innerJoin('registered_limit', 'registered_limit.id', 'limit.registered_limit_id')
    .select([
      'limit.id',
      'limit.project_id',
      'limit.domain_id',
      'limit.resource_limit',
      'limit.description',
      'limit.created_at',
      'registered_limit.service_id',
      'registered_limit.region_id',
      'registered_limit.resource_name',
    ]);
}

async function findLimit(db: Db, id: string): Promise<LimitEntry | undefined> {
  return limitEntries(db).where('limit.id', '=', id).executeTakeFirst();
}

async function getLimit(db: Db, id: string): Promise<LimitEntry> {
  const row = await findLimit(db, id);
  if (!row) throw new NotFound(`Could not find limit for ${id}.`);
  return row;
}

/** 400 naming the field when the service or region a limit names does not exist (Keystone's `_assert_resource_exist`). */
async function checkCatalogReferences(db: Db, input: { service_id?: string; region_id?: string | null }, target: string): Promise<void> {
  if (input.service_id !== undefined && !(await db.selectFrom('service').select('id').where('id', '=', input.service_id).executeTakeFirst())) {
    throw expecting('service_id', target);
  }
  if (typeof input.region_id === 'string' && !(await db.selectFrom('region').select('id').where('id', '=', input.region_id).executeTakeFirst())) {
    throw expecting('region_id', target);
  }
}

/**
 * Whose limit it is: a project, or a domain. As in Keystone, a `project_id`
 * that names a domain makes a domain limit; an unknown one is a 400.
 */
async function limitOwner(db: Db, input: LimitInput, index: number): Promise<LimitOwner> {
  const projectId = input.project_id ?? null;
  const domainId = input.domain_id ?? null;
  if ((projectId === null) === (domainId === null)) {
    throw new BadRequest(`Invalid input for field 'limits.${index}': exactly one of 'project_id' and 'domain_id' is required`);
  }
  const id = projectId ?? domainId ?? '';
  const row = await db.selectFrom('project').select(['id', 'is_domain']).where('id', '=', id).executeTakeFirst();
  if (projectId !== null) {
    if (!row) throw expecting('project_id', 'limit');
    return row.is_domain === 1 ? { project_id: null, domain_id: row.id } : { project_id: row.id, domain_id: null };
  }
  if (!row || row.is_domain !== 1) throw expecting('domain_id', 'limit');
  return { project_id: null, domain_id: row.id };
}

function duplicate(type: 'registered_limit' | 'limit'): Conflict {
  return new Conflict(`Conflict occurred attempting to store ${type} - Duplicate entry.`);
}

/** Runs a write; a unique violation the checks before it missed (a concurrent write) is the same 409. */
async function storing<T>(type: 'registered_limit' | 'limit', write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(type);
    throw err;
  }
}

async function hasLimits(db: Db, registeredLimitId: string): Promise<boolean> {
  return (await db.selectFrom('limit').select('id').where('registered_limit_id', '=', registeredLimitId).executeTakeFirst()) !== undefined;
}

function referencedError(id: string): Forbidden {
  return new Forbidden(`Unable to update or delete registered limit ${id} because there are project limits associated with it.`);
}

// ---- registered limits ----

/**
 * Creates registered limits, all or none: every service and region must
 * exist (400), and no two may share service, region and resource (409).
 */
async function createRegisteredLimits(identity: Identity, inputs: RegisteredLimitInput[]): Promise<RegisteredLimitRow[]> {
  for (const input of inputs) await checkCatalogReferences(identity.db, input, 'registered_limit');
  const now = isoNow();
  const rows: RegisteredLimitRow[] = inputs.map((input) => ({
    id: newId(),
    service_id: input.service_id,
    region_id: input.region_id ?? null,
    resource_name: input.resource_name,
    default_limit: input.default_limit,
    description: input.description ?? null,
    created_at: now,
  }));
  await storing('registered_limit', () =>
    identity.db.transaction().execute(async (trx) => {
      for (const row of rows) {
        if (await findRegisteredLimit(trx, row.service_id, row.region_id, row.resource_name)) throw duplicate('registered_limit');
        await trx.insertInto('registered_limit').values(row).execute();
      }
    }),
  );
  return rows;
}

/**
 * Updates a registered limit. As in Keystone, one that project limits use
 * cannot be changed at all (403). Unlike Keystone, naming the values it
 * already has is not a conflict with itself.
 */
async function updateRegisteredLimit(identity: Identity, id: string, input: RegisteredLimitUpdate): Promise<RegisteredLimitRow> {
  await checkCatalogReferences(identity.db, input, 'registered_limit');
  return storing('registered_limit', () =>
    identity.db.transaction().execute(async (trx) => {
      const row = await getRegisteredLimit(trx, id);
      if (await hasLimits(trx, id)) throw referencedError(id);
      const next: RegisteredLimitRow = {
        ...row,
        service_id: input.service_id ?? row.service_id,
        region_id: input.region_id === undefined ? row.region_id : input.region_id,
        resource_name: input.resource_name ?? row.resource_name,
        default_limit: input.default_limit ?? row.default_limit,
        description: input.description === undefined ? row.description : input.description,
      };
      const other = await findRegisteredLimit(trx, next.service_id, next.region_id, next.resource_name);
      if (other && other.id !== id) throw duplicate('registered_limit');
      const { id: _id, created_at: _created, ...changes } = next;
      await trx.updateTable('registered_limit').set(changes).where('id', '=', id).execute();
      return next;
    }),
  );
}

function registerRegisteredLimits(app: FastifyInstance, identity: Identity): void {
  app.get<{ Querystring: Entity }>('/v3/registered_limits', async (req) => {
    authorize(identity, req, 'identity:list_registered_limits');
    let q = identity.db.selectFrom('registered_limit').selectAll();
    for (const filter of ['service_id', 'region_id', 'resource_name'] as const) {
      const value = queryText(req.query[filter]);
      if (value !== undefined) q = q.where(filter, '=', value);
    }
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    return { registered_limits: rows.map((r) => registeredLimitView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.post<{ Body: { registered_limits: RegisteredLimitInput[] } }>(
    '/v3/registered_limits',
    { schema: { body: listBody('registered_limits', registeredLimitProperties, ['service_id', 'resource_name', 'default_limit']) } },
    async (req, reply) => {
      authorize(identity, req, 'identity:create_registered_limits');
      const rows = await createRegisteredLimits(identity, req.body.registered_limits);
      reply.code(201);
      return { registered_limits: rows.map((r) => registeredLimitView(identity, r)) };
    },
  );

  app.get<{ Params: { registered_limit_id: string } }>('/v3/registered_limits/:registered_limit_id', async (req) => {
    authorize(identity, req, 'identity:get_registered_limit');
    return { registered_limit: registeredLimitView(identity, await getRegisteredLimit(identity.db, req.params.registered_limit_id)) };
  });

  app.patch<{ Params: { registered_limit_id: string }; Body: { registered_limit: RegisteredLimitUpdate } }>(
    '/v3/registered_limits/:registered_limit_id',
    { schema: { body: updateBody('registered_limit', registeredLimitProperties) } },
    async (req) => {
      authorize(identity, req, 'identity:update_registered_limit');
      const row = await updateRegisteredLimit(identity, req.params.registered_limit_id, req.body.registered_limit);
      return { registered_limit: registeredLimitView(identity, row) };
    },
  );

  app.delete<{ Params: { registered_limit_id: string } }>('/v3/registered_limits/:registered_limit_id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_registered_limit');
    const id = req.params.registered_limit_id;
    await identity.db.transaction().execute(async (trx) => {
      await getRegisteredLimit(trx, id);
      if (await hasLimits(trx, id)) throw referencedError(id);
      await trx.deleteFrom('registered_limit').where('id', '=', id).execute();
    });
    return reply.code(204).send();
  });
}

// ---- limits ----

/**
 * Creates limits, all or none: each needs the registered limit of its
 * service, region and resource (403 without, as Keystone), and a project or
 * domain has at most one limit per registered limit (409).
 */
async function createLimits(identity: Identity, inputs: LimitInput[]): Promise<LimitEntry[]> {
  const checked: { input: LimitInput; owner: LimitOwner }[] = [];
  for (const [index, input] of inputs.entries()) {
    await checkCatalogReferences(identity.db, input, 'limit');
    checked.push({ input, owner: await limitOwner(identity.db, input, index) });
  }
  const now = isoNow();
  return storing('limit', () =>
    identity.db.transaction().execute(async (trx) => {
      const created: LimitEntry[] = [];
      for (const { input, owner } of checked) {
        const registered = await findRegisteredLimit(trx, input.service_id, input.region_id ?? null, input.resource_name);
        if (!registered) throw new Forbidden('Unable to create a limit that has no corresponding registered limit.');
        let taken = trx.selectFrom('limit').select('id').where('registered_limit_id', '=', registered.id);
        taken = owner.project_id !== null ? taken.where('project_id', '=', owner.project_id) : taken.where('domain_id', '=', owner.domain_id);
        if (await taken.executeTakeFirst()) throw duplicate('limit');
        const row: LimitRow = { id: newId(), registered_limit_id: registered.id, ...owner, resource_limit: input.resource_limit, description: input.description ?? null, created_at: now };
        await trx.insertInto('limit').values(row).execute();
        const { registered_limit_id: _registered, ...rest } = row;
        created.push({ ...rest, service_id: registered.service_id, region_id: registered.region_id, resource_name: registered.resource_name });
      }
      return created;
    }),
  );
}

/**
 * Updates a limit's value or description. Unlike Keystone, which skips
 * "falsy" values, a limit of 0 and an empty or null description are applied.
 */
async function updateLimit(identity: Identity, id: string, input: LimitUpdate): Promise<LimitEntry> {
  return identity.db.transaction().execute(async (trx) => {
    const row = await getLimit(trx, id);
    const next: LimitEntry = {
      ...row,
      resource_limit: input.resource_limit ?? row.resource_limit,
      description: input.description === undefined ? row.description : input.description,
    };
    await trx.updateTable('limit').set({ resource_limit: next.resource_limit, description: next.description }).where('id', '=', id).execute();
    return next;
  });
}

/**
 * The limits the caller may list, as Keystone filters them: everything for
 * the system scope and for `admin` or `service`; a domain's own limits and
 * those of its projects for a domain scope; the project's for a project
 * scope; nothing for an unscoped token.
 */
async function listLimits(identity: Identity, req: FastifyRequest<{ Querystring: Entity }>): Promise<LimitEntry[]> {
  const filters = { service_id: 'registered_limit.service_id', region_id: 'registered_limit.region_id', resource_name: 'registered_limit.resource_name', project_id: 'limit.project_id', domain_id: 'limit.domain_id' } as const;
  let q = limitEntries(identity.db);
  for (const [filter, column] of Object.entries(filters)) {
    const value = queryText(req.query[filter]);
    if (value !== undefined) q = q.where(column, '=', value);
  }
  const { ctx } = req;
  const superuser = ctx.system !== null || ctx.roles.includes('admin') || ctx.roles.includes('service');
  if (!superuser) {
    const { domainId, projectId } = ctx;
    if (domainId !== null) {
      const projects = identity.db.selectFrom('project').select('id').where('domain_id', '=', domainId).where('is_domain', '=', 0);
      q = q.where((eb) => eb.or([eb('limit.domain_id', '=', domainId), eb('limit.project_id', 'in', projects)]));
    } else if (projectId !== null) {
      q = q.where('limit.project_id', '=', projectId);
    } else {
      return [];
    }
  }
  return q.orderBy('limit.created_at').orderBy('limit.id').execute();
}

/** The target `identity:get_limit` reads: the limit with its project or domain (empty when there is no such limit). */
async function limitTarget(db: Db, row: LimitEntry | undefined): Promise<Record<string, unknown>> {
  if (!row) return {};
  const ownerId = row.project_id ?? row.domain_id ?? '';
  const owner = await db.selectFrom('project').select(['id', 'domain_id']).where('id', '=', ownerId).executeTakeFirst();
  const limit: Record<string, unknown> = { ...row };
  if (row.project_id !== null) limit.project = owner ?? {};
  else limit.domain = owner ? { id: owner.id } : {};
  return { limit };
}

function registerProjectLimits(app: FastifyInstance, identity: Identity): void {
  app.get('/v3/limits/model', async (req) => {
    authorize(identity, req, 'identity:get_limit_model');
    return { model: FLAT_MODEL };
  });

  app.get<{ Querystring: Entity }>('/v3/limits', async (req) => {
    authorize(identity, req, 'identity:list_limits');
    const rows = await listLimits(identity, req);
    return { limits: rows.map((r) => limitView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.post<{ Body: { limits: LimitInput[] } }>(
    '/v3/limits',
    { schema: { body: listBody('limits', limitProperties, ['service_id', 'resource_name', 'resource_limit']) } },
    async (req, reply) => {
      authorize(identity, req, 'identity:create_limits');
      const rows = await createLimits(identity, req.body.limits);
      reply.code(201);
      return { limits: rows.map((r) => limitView(identity, r)) };
    },
  );

  app.get<{ Params: { limit_id: string } }>('/v3/limits/:limit_id', async (req) => {
    const id = req.params.limit_id;
    const row = await findLimit(identity.db, id);
    // As Keystone: the rule is checked before the 404, so a member learns nothing of limits outside their project.
    authorize(identity, req, 'identity:get_limit', { target: await limitTarget(identity.db, row) });
    if (!row) throw new NotFound(`Could not find limit for ${id}.`);
    return { limit: limitView(identity, row) };
  });

  app.patch<{ Params: { limit_id: string }; Body: { limit: LimitUpdate } }>(
    '/v3/limits/:limit_id',
    { schema: { body: updateBody('limit', { resource_limit: limitValue, description }) } },
    async (req) => {
      authorize(identity, req, 'identity:update_limit');
      return { limit: limitView(identity, await updateLimit(identity, req.params.limit_id, req.body.limit)) };
    },
  );

  app.delete<{ Params: { limit_id: string } }>('/v3/limits/:limit_id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_limit');
    const id = req.params.limit_id;
    await getLimit(identity.db, id);
    await identity.db.deleteFrom('limit').where('id', '=', id).execute();
    return reply.code(204).send();
  });
}

/**
 * Keystone's unified limits (`/v3/registered_limits`, `/v3/limits`,
 * `/v3/limits/model`): the defaults and per-project overrides that services
 * read to enforce quotas (oslo.limit). Only the `flat` model: a project's
 * limit does not depend on its parent's.
 */
export function registerLimits(app: FastifyInstance, identity: Identity): void {
  registerRegisteredLimits(app, identity);
  registerProjectLimits(app, identity);
}
