import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import {
  addAggregateHost,
  createAggregate,
  deleteAggregate,
  getAggregate,
  listAggregates,
  removeAggregateHost,
  setAggregateMetadata,
  updateAggregate,
  type Aggregate,
} from '../aggregates.js';
import { badRequest } from '../errors.js';
import { actionOf, bodyObject, checkKeys, checkName, invalidField, isObject, pyIsoTime, pyRepr, type Obj } from './request-checks.js';

/**
 * `/os-aggregates` (admin): host aggregates with their hosts and metadata;
 * `uuid` from 2.41. Actions `add_host`, `remove_host`, `set_metadata`.
 */

function aggregateView(req: FastifyRequest, a: Aggregate, members = true): Record<string, unknown> {
  return {
    availability_zone: a.metadata.availability_zone ?? null,
    created_at: pyIsoTime(a.created_at),
    deleted: false,
    deleted_at: null,
    ...(members ? { hosts: a.hosts, metadata: a.metadata } : {}),
    id: a.id,
    name: a.name,
    updated_at: pyIsoTime(a.updated_at),
    ...(atLeast(req, '2.41') ? { uuid: a.uuid } : {}),
  };
}

/** An aggregate id as Nova takes it (`validate_integer`): 400 when not an integer. */
function aggregateId(text: string): number {
  if (!/^\s*[-+]?\d+\s*$/.test(text)) throw badRequest('Invalid input received: id must be an integer');
  return Number(text);
}

/** A zone name: null, or printable text without `:` that does not start or end with whitespace. */
function zoneName(value: unknown): string | null {
  if (value === null) return null;
  return checkName(value, 'availability_zone', ':');
}

/** A name that may have spaces around it (then trimmed), but not only spaces. */
function looseName(value: unknown): string {
  if (typeof value !== 'string') throw invalidField('name', value, `${pyRepr(value)} is not of type 'string'`);
  if (value.length < 1 || value.length > 255 || value.trim() === '' || /[\p{C}\p{Zl}\p{Zp}]/u.test(value)) {
    throw badRequest("An invalid 'name' value was provided. The name must be: printable characters with at least one non space character");
  }
  return value.trim();
}

function hostOf(body: unknown, action: string): string {
  const inner = bodyObject(body, action);
  checkKeys(inner, action, ['host'], ['host']);
  const host = inner.host;
  if (typeof host !== 'string' || host.length < 1 || host.length > 255 || !/^[a-zA-Z0-9-._]*$/.test(host)) {
    throw invalidField('host', host, `${pyRepr(host)} does not match '^[a-zA-Z0-9-._]*$'`);
  }
  return host;
}

const METADATA_KEY = /^[a-zA-Z0-9-_:. ]{1,255}$/;

function metadataOf(body: unknown): Record<string, string | null> {
  const inner = bodyObject(body, 'set_metadata');
  checkKeys(inner, 'set_metadata', ['metadata'], ['metadata']);
  const metadata = inner.metadata;
  if (!isObject(metadata)) throw invalidField('metadata', metadata, `${pyRepr(metadata)} is not of type 'object'`);
  const out: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (!METADATA_KEY.test(key)) throw invalidField('metadata', metadata, `Additional properties are not allowed ('${key}' was unexpected)`);
    if (value !== null && typeof value !== 'string') throw invalidField(key, value, `${pyRepr(value)} is not of type 'string', 'null'`);
    if (typeof value === 'string' && value.length > 255) throw invalidField(key, value, `'${value}' is too long`);
    out[key] = value;
  }
  return out;
}

async function runAction(compute: ComputeService, req: FastifyRequest, idText: string): Promise<unknown> {
  const action = actionOf(req.body, ['add_host', 'remove_host', 'set_metadata']);
  const ctx = contextOf(req);
  switch (action) {
    case 'add_host': {
      const host = hostOf(req.body, action);
      authorize(compute, ctx, 'os-aggregates:add_host');
      return { aggregate: aggregateView(req, await addAggregateHost(compute.db, aggregateId(idText), host)) };
    }
    case 'remove_host': {
      const host = hostOf(req.body, action);
      authorize(compute, ctx, 'os-aggregates:remove_host');
      return { aggregate: aggregateView(req, await removeAggregateHost(compute.db, aggregateId(idText), host)) };
    }
    default: {
      const metadata = metadataOf(req.body);
      authorize(compute, ctx, 'os-aggregates:set_metadata');
      return { aggregate: aggregateView(req, await setAggregateMetadata(compute.db, aggregateId(idText), metadata)) };
    }
  }
}

/** Registers `/os-aggregates`. */
export function registerAggregates(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-aggregates', async (req) => {
    authorize(compute, contextOf(req), 'os-aggregates:index');
    return { aggregates: (await listAggregates(compute.db)).map((a) => aggregateView(req, a)) };
  });

  app.post('/v2.1/os-aggregates', async (req) => {
    const body: Obj = bodyObject(req.body, 'aggregate');
    checkKeys(body, 'aggregate', ['name', 'availability_zone'], ['name']);
    const name = checkName(body.name, 'name').trim();
    const zone = body.availability_zone === undefined ? null : zoneName(body.availability_zone);
    authorize(compute, contextOf(req), 'os-aggregates:create');
    const aggregate = await createAggregate(compute.db, name, zone ? zone.trim() : null);
    return { aggregate: aggregateView(req, aggregate, false) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-aggregates/:id', async (req) => {
    authorize(compute, contextOf(req), 'os-aggregates:show');
    return { aggregate: aggregateView(req, await getAggregate(compute.db, aggregateId(req.params.id))) };
  });

  app.put<{ Params: { id: string } }>('/v2.1/os-aggregates/:id', async (req) => {
    const body: Obj = bodyObject(req.body, 'aggregate');
    checkKeys(body, 'aggregate', ['name', 'availability_zone']);
    if (!('name' in body) && !('availability_zone' in body)) throw invalidField('aggregate', body, `${pyRepr(body)} is not valid under any of the given schemas`);
    const changes: { name?: string; availability_zone?: string | null } = {};
    if ('name' in body) changes.name = looseName(body.name);
    if ('availability_zone' in body) changes.availability_zone = zoneName(body.availability_zone);
    authorize(compute, contextOf(req), 'os-aggregates:update');
    return { aggregate: aggregateView(req, await updateAggregate(compute.db, aggregateId(req.params.id), changes)) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-aggregates/:id', async (req, reply) => {
    authorize(compute, contextOf(req), 'os-aggregates:delete');
    await deleteAggregate(compute.db, aggregateId(req.params.id));
    return reply.code(200).send();
  });

  app.post<{ Params: { id: string } }>('/v2.1/os-aggregates/:id/action', async (req) => runAction(compute, req, req.params.id));
}
