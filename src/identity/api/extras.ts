import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { BadRequest, NotFound } from '../../core/errors.js';
import { newId, parseJson, splitExtra } from '../common.js';
import type { IdentitySchema } from '../db/schema.js';
import { authorize, collectionLinks, selfLink, type Identity } from '../identity.js';
import { entityOf, entitySchema, normalizeKeys, queryText, requireMatchingId, written, type Entity } from './catalog.js';
import { registerDomainConfig } from './domain-config.js';
import { registerEndpointFilter } from './endpoint-filter.js';

type Db = Kysely<IdentitySchema>;
type PolicyRow = IdentitySchema['policy'];
type ConsumerRow = IdentitySchema['consumer'];

/**
 * The rest of Keystone's admin API: policies, OAuth1 consumers, endpoint
 * filtering (OS-EP-FILTER, in endpoint-filter.ts) and domain-specific
 * configuration (domain-config.ts).
 */
export function registerExtras(app: FastifyInstance, identity: Identity): void {
  registerPolicies(app, identity);
  registerConsumers(app, identity);
  registerEndpointFilter(app, identity);
  registerDomainConfig(app, identity);
}

// ---- policies ----

const POLICY_COLUMNS = ['id', 'blob', 'type', 'links'];
const policyProperties = { blob: { type: 'string' }, type: { type: 'string', maxLength: 255 } };

function policyView(identity: Identity, row: PolicyRow): Entity {
  return { ...parseJson(row.extra), id: row.id, blob: row.blob, type: row.type, links: selfLink(identity, `policies/${row.id}`) };
}

async function getPolicy(db: Db, id: string): Promise<PolicyRow> {
  const row = await db.selectFrom('policy').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find policy: ${id}.`);
  return row;
}

function registerPolicies(app: FastifyInstance, identity: Identity): void {
  app.get<{ Querystring: Entity }>('/v3/policies', async (req) => {
    authorize(identity, req, 'identity:list_policies');
    let query = identity.db.selectFrom('policy').selectAll();
    const type = queryText(req.query.type);
    if (type !== undefined) query = query.where('type', '=', type);
    const rows = await query.execute();
    return { policies: rows.map((r) => policyView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { policy_id: string } }>('/v3/policies/:policy_id', async (req) => {
    authorize(identity, req, 'identity:get_policy');
    return { policy: policyView(identity, await getPolicy(identity.db, req.params.policy_id)) };
  });

  app.post('/v3/policies', { schema: { body: entitySchema('policy', policyProperties, { required: ['blob', 'type'] }) } }, async (req, reply) => {
    authorize(identity, req, 'identity:create_policy');
    const entity = normalizeKeys(entityOf(req.body, 'policy'));
    const row: PolicyRow = { id: newId(), blob: String(entity.blob), type: String(entity.type), extra: JSON.stringify(splitExtra(entity, POLICY_COLUMNS)) };
    await identity.db.insertInto('policy').values(row).execute();
    written(identity, 'policy', 'created', row.id);
    reply.code(201);
    return { policy: policyView(identity, row) };
  });

  app.patch<{ Params: { policy_id: string } }>('/v3/policies/:policy_id', { schema: { body: entitySchema('policy', policyProperties, { update: true }) } }, async (req) => {
    authorize(identity, req, 'identity:update_policy');
    const entity = entityOf(req.body, 'policy');
    if (entity.id !== undefined && entity.id !== req.params.policy_id) throw new BadRequest('Cannot change policy ID');
    const row = await getPolicy(identity.db, req.params.policy_id);
    const updated: PolicyRow = {
      id: row.id,
      blob: typeof entity.blob === 'string' ? entity.blob : row.blob,
      type: typeof entity.type === 'string' ? entity.type : row.type,
      extra: JSON.stringify({ ...parseJson(row.extra), ...splitExtra(entity, POLICY_COLUMNS) }),
    };
    await identity.db.updateTable('policy').set({ blob: updated.blob, type: updated.type, extra: updated.extra }).where('id', '=', row.id).execute();
    written(identity, 'policy', 'updated', row.id);
    return { policy: policyView(identity, updated) };
  });

  app.delete<{ Params: { policy_id: string } }>('/v3/policies/:policy_id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_policy');
    const row = await getPolicy(identity.db, req.params.policy_id);
    await identity.db.deleteFrom('policy').where('id', '=', row.id).execute();
    written(identity, 'policy', 'deleted', row.id);
    return reply.code(204).send();
  });
}

// ---- OAuth1 consumers ----

/** Keystone's resource type in notifications about consumers. */
const CONSUMER = 'OS-OAUTH1:consumer';
const CONSUMER_COLUMNS = ['id', 'description', 'secret', 'links'];
const consumerProperties = { description: { type: ['string', 'null'] } };

function consumerView(identity: Identity, row: ConsumerRow): Entity {
  return { ...parseJson(row.extra), id: row.id, description: row.description, links: selfLink(identity, `OS-OAUTH1/consumers/${row.id}`) };
}

async function getConsumer(db: Db, id: string): Promise<ConsumerRow> {
  const row = await db.selectFrom('consumer').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFound('Consumer not found');
  return row;
}

function lenientConsumer(body: unknown): Entity {
  const consumer = typeof body === 'object' && body !== null ? (body as Entity).consumer : undefined;
  if (consumer === undefined || consumer === null) return {};
  if (typeof consumer !== 'object' || Array.isArray(consumer)) throw new BadRequest("Invalid input for field 'consumer': must be object");
  const description = (consumer as Entity).description;
  if (description !== undefined && description !== null && typeof description !== 'string') throw new BadRequest("Invalid input for field 'consumer.description': must be string,null");
  return consumer as Entity;
}

function registerConsumers(app: FastifyInstance, identity: Identity): void {
  app.get('/v3/OS-OAUTH1/consumers', async (req) => {
    authorize(identity, req, 'identity:list_consumers');
    const rows = await identity.db.selectFrom('consumer').selectAll().execute();
    return { consumers: rows.map((r) => consumerView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { consumer_id: string } }>('/v3/OS-OAUTH1/consumers/:consumer_id', async (req) => {
    authorize(identity, req, 'identity:get_consumer');
    return { consumer: consumerView(identity, await getConsumer(identity.db, req.params.consumer_id)) };
  });

  // Keystone reads the body leniently here: no body, or no `consumer`, is an empty consumer.
  app.post('/v3/OS-OAUTH1/consumers', async (req, reply) => {
    authorize(identity, req, 'identity:create_consumer');
    const entity = normalizeKeys(lenientConsumer(req.body));
    const secret = randomUUID().replaceAll('-', '');
    const row: ConsumerRow = {
      id: newId(),
      description: typeof entity.description === 'string' ? entity.description : '',
      secret_hash: await identity.hasher.hash(secret),
      extra: JSON.stringify(splitExtra(entity, CONSUMER_COLUMNS)),
    };
    await identity.db.insertInto('consumer').values(row).execute();
    written(identity, CONSUMER, 'created', row.id);
    reply.code(201);
    return { consumer: { ...consumerView(identity, row), secret } };
  });

  app.patch<{ Params: { consumer_id: string } }>(
    '/v3/OS-OAUTH1/consumers/:consumer_id',
    { schema: { body: entitySchema('consumer', consumerProperties, { update: true }) } },
    async (req) => {
      authorize(identity, req, 'identity:update_consumer');
      const entity = entityOf(req.body, 'consumer');
      if ('secret' in entity) throw new BadRequest("Invalid input for field 'consumer': the secret of a consumer cannot be changed.");
      const normalized = normalizeKeys(entity);
      requireMatchingId(normalized, req.params.consumer_id);
      const row = await getConsumer(identity.db, req.params.consumer_id);
      const updated: ConsumerRow = {
        ...row,
        description: 'description' in normalized ? (typeof normalized.description === 'string' ? normalized.description : '') : row.description,
        extra: JSON.stringify({ ...parseJson(row.extra), ...splitExtra(normalized, CONSUMER_COLUMNS) }),
      };
      await identity.db.updateTable('consumer').set({ description: updated.description, extra: updated.extra }).where('id', '=', row.id).execute();
      written(identity, CONSUMER, 'updated', row.id);
      return { consumer: consumerView(identity, updated) };
    },
  );

  app.delete<{ Params: { consumer_id: string } }>('/v3/OS-OAUTH1/consumers/:consumer_id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_consumer');
    const row = await getConsumer(identity.db, req.params.consumer_id);
    await identity.db.deleteFrom('consumer').where('id', '=', row.id).execute();
    written(identity, CONSUMER, 'deleted', row.id);
    return reply.code(204).send();
  });
}
