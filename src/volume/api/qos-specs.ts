import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isUniqueViolation } from '../../core/db/database.js';
import { badRequest, conflict, notFound, volumeTypeNotFound } from '../errors.js';
import { authorize, contextOf, now, type VolumeService } from '../volume.js';
import { bodyObject, boolParam, bodyOf, checkKeys, invalidField, nextLink, notOfType, paginationOf, pyRepr, queryOf, sortOf, SPEC_KEY, specsField } from './catalog-input.js';

/**
 * QoS specs (`/qos-specs`): create, list, show, set keys, delete keys,
 * delete (`force` disassociates first), associate with and disassociate
 * from volume types, list associations. A type holds at most one QoS spec
 * (`qos_specs_id`).
 */

const CONSUMERS = ['front-end', 'back-end', 'both'];

interface QosSpecs {
  id: string;
  name: string;
  consumer: string;
  specs: Record<string, string>;
  created_at: string;
}

async function loadQos(volume: VolumeService, id?: string): Promise<QosSpecs[]> {
  let rows = volume.db.selectFrom('qos_specs').selectAll();
  if (id !== undefined) rows = rows.where('id', '=', id);
  const specs = await rows.execute();
  if (specs.length === 0) return [];
  let items = volume.db.selectFrom('qos_spec_item').selectAll();
  if (id !== undefined) items = items.where('qos_specs_id', '=', id);
  const byId = new Map<string, Record<string, string>>();
  for (const item of await items.execute()) {
    const m = byId.get(item.qos_specs_id) ?? {};
    m[item.key] = item.value;
    byId.set(item.qos_specs_id, m);
  }
  return specs.map((s) => ({ id: s.id, name: s.name, consumer: s.consumer, specs: byId.get(s.id) ?? {}, created_at: s.created_at }));
}

/** The QoS specs `id`; 404 `No such QoS spec <id>.` */
async function getQos(volume: VolumeService, id: string): Promise<QosSpecs> {
  const [spec] = await loadQos(volume, id);
  if (!spec) throw notFound(`No such QoS spec ${id}.`);
  return spec;
}

function links(volume: VolumeService, req: FastifyRequest, id: string): { rel: string; href: string }[] {
  const project = req.ctx.projectId;
  const prefix = project ? `${project}/` : '';
  return [
    { rel: 'self', href: `${volume.publicUrl}/v3/${prefix}qos-specs/${id}` },
    { rel: 'bookmark', href: `${volume.publicUrl}/${prefix}qos-specs/${id}` },
  ];
}

const summary = (spec: QosSpecs): Record<string, unknown> => ({ id: spec.id, name: spec.name, consumer: spec.consumer, specs: spec.specs });

/** Cinder's `validate_dictionary_string_length` over spec keys and values. */
function checkSpecStrings(specs: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(specs)) {
    if (key.length > 255) throw badRequest(`Invalid input received: Key "${key}" has ${key.length} characters, more than 255.`);
    if (value === null) continue;
    if (typeof value !== 'string') throw badRequest(`Invalid input received: Value for key "${key}" is not a string or unicode`);
    if (value.length > 255) throw badRequest(`Invalid input received: Value for key "${key}" has ${value.length} characters, more than 255.`);
    out[key] = value;
  }
  return out;
}

function checkConsumer(consumer: unknown): string {
  if (typeof consumer !== 'string' || !CONSUMERS.includes(consumer)) throw badRequest(`Invalid qos specs: Valid consumer of QoS specs are: ${CONSUMERS.join(', ')}`);
  return consumer;
}

async function create(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  const ctx = contextOf(req);
  const body = bodyObject(req.body, 'qos_specs');
  if (!('name' in body)) throw invalidField('qos_specs', body, "'name' is a required property");
  if (typeof body.name !== 'string') throw invalidField('name', body.name, notOfType(body.name, 'string'));
  const name = body.name.trim();
  if (!name) throw badRequest("An invalid 'name' value was provided. The 'name' can not be empty.");
  if (name.length > 255) throw badRequest("An invalid 'name' value was provided. The 'name' can not be greater than 255 characters.");
  authorize(volume, ctx, 'volume_extension:qos_specs_manage:create');
  const { name: _name, consumer: rawConsumer, ...rest } = body;
  const specs = checkSpecStrings(rest);
  const consumer = rawConsumer === undefined || rawConsumer === null || rawConsumer === '' ? 'back-end' : checkConsumer(rawConsumer);
  const id = randomUUID();
  try {
    await volume.db.transaction().execute(async (trx) => {
      if (await trx.selectFrom('qos_specs').select('id').where('name', '=', name).executeTakeFirst()) throw conflict(`QoS Specs ${name} already exists.`);
      await trx.insertInto('qos_specs').values({ id, name, consumer, created_at: now(), updated_at: null }).execute();
      const entries = Object.entries(specs);
      if (entries.length > 0) await trx.insertInto('qos_spec_item').values(entries.map(([key, value]) => ({ qos_specs_id: id, key, value }))).execute();
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`QoS Specs ${name} already exists.`);
    throw err;
  }
  const spec = await getQos(volume, id);
  volume.notify('qos_specs.create', { name, created_at: spec.created_at, specs });
  return { qos_specs: summary(spec), links: links(volume, req, id) };
}

async function list(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:qos_specs_manage:get_all');
  const query = queryOf(req);
  const { limit, marker, offset } = paginationOf(volume, query);
  const sort = sortOf(query);
  for (const { key } of sort) if (!['id', 'name', 'consumer', 'created_at', 'updated_at'].includes(key)) throw badRequest('Invalid input received: Invalid sort key');
  let specs = await loadQos(volume);
  for (const key of ['id', 'name', 'consumer'] as const) {
    const value = query[key];
    if (value !== undefined) specs = specs.filter((s) => s[key] === value);
  }
  const all = [...sort, { key: 'id', dir: sort[sort.length - 1]?.dir ?? 'desc' }];
  specs.sort((a, b) => {
    for (const { key, dir } of all) {
      const x = String((a as unknown as Record<string, unknown>)[key] ?? '');
      const y = String((b as unknown as Record<string, unknown>)[key] ?? '');
      if (x !== y) return (x < y ? -1 : 1) * (dir === 'asc' ? 1 : -1);
    }
    return 0;
  });
  if (marker !== undefined) {
    const at = specs.findIndex((s) => s.id === marker);
    if (at < 0) throw notFound(`Marker ${marker} could not be found.`);
    specs = specs.slice(at + 1);
  }
  const pageSize = limit ?? volume.config.volume.max_limit;
  specs = specs.slice(offset).slice(0, pageSize);
  const body: Record<string, unknown> = { qos_specs: specs.map(summary) };
  const last = specs[specs.length - 1];
  if (last && specs.length === pageSize) body.qos_specs_links = [nextLink(volume, req, 'qos-specs', last.id)];
  return body;
}

async function setKeys(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const body = bodyOf(req.body);
  checkKeys(body, null, ['qos_specs'], ['qos_specs']);
  const given = specsField(body.qos_specs, 'qos_specs', SPEC_KEY, true);
  authorize(volume, ctx, 'volume_extension:qos_specs_manage:update');
  const spec = await getQos(volume, req.params.id);
  const { consumer, ...rest } = given;
  const newConsumer = consumer === undefined ? undefined : checkConsumer(consumer);
  await volume.db.transaction().execute(async (trx) => {
    for (const [key, value] of Object.entries(rest)) {
      await trx.deleteFrom('qos_spec_item').where('qos_specs_id', '=', spec.id).where('key', '=', key).execute();
      if (value !== null) await trx.insertInto('qos_spec_item').values({ qos_specs_id: spec.id, key, value }).execute();
    }
    await trx
      .updateTable('qos_specs')
      .set({ updated_at: now(), ...(newConsumer ? { consumer: newConsumer } : {}) })
      .where('id', '=', spec.id)
      .execute();
  });
  volume.notify('qos_specs.update', { id: spec.id, created_at: spec.created_at, updated_at: now(), specs: given });
  return { qos_specs: given };
}

async function deleteKeys(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<unknown> {
  const ctx = contextOf(req);
  const body = bodyOf(req.body);
  checkKeys(body, null, ['keys'], ['keys']);
  const keys = body.keys;
  if (!Array.isArray(keys)) throw invalidField('keys', keys, notOfType(keys, 'array'));
  for (const key of keys) {
    if (typeof key !== 'string') throw invalidField('keys', key, notOfType(key, 'string'));
    if (key.length < 1) throw invalidField('keys', key, `'' is too short`);
    if (key.length > 255) throw invalidField('keys', key, `${pyRepr(key)} is too long`);
  }
  if (new Set(keys).size !== keys.length) throw invalidField('keys', keys, `${pyRepr(keys)} has non-unique elements`);
  authorize(volume, ctx, 'volume_extension:qos_specs_manage:delete');
  const spec = await getQos(volume, req.params.id);
  // All or nothing (Cinder removes the keys before the first unknown one; we change nothing).
  for (const key of keys as string[]) if (!(key in spec.specs)) throw notFound(`QoS spec ${spec.id} has no spec with key ${key}.`);
  await volume.db.transaction().execute(async (trx) => {
    if (keys.length > 0) await trx.deleteFrom('qos_spec_item').where('qos_specs_id', '=', spec.id).where('key', 'in', keys as string[]).execute();
    await trx.updateTable('qos_specs').set({ updated_at: now() }).where('id', '=', spec.id).execute();
  });
  volume.notify('qos_specs.delete_keys', { id: spec.id, created_at: spec.created_at });
  return reply.code(202).send();
}

async function remove(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:qos_specs_manage:delete');
  const force = boolParam(queryOf(req), 'force');
  const spec = await getQos(volume, req.params.id);
  await volume.db.transaction().execute(async (trx) => {
    const used = await trx.selectFrom('volume_type').select('id').where('qos_specs_id', '=', spec.id).executeTakeFirst();
    if (used && !force) throw badRequest('Qos specs still in use.');
    await trx.updateTable('volume_type').set({ qos_specs_id: null }).where('qos_specs_id', '=', spec.id).execute();
    await trx.deleteFrom('qos_spec_item').where('qos_specs_id', '=', spec.id).execute();
    await trx.deleteFrom('qos_specs').where('id', '=', spec.id).execute();
  });
  volume.notify('qos_specs.delete', { id: spec.id, created_at: spec.created_at, deleted_at: now() });
  return reply.code(202).send();
}

/** `?vol_type_id=` of associate and disassociate: the type (404 when unknown). */
async function typeOf(volume: VolumeService, req: FastifyRequest): Promise<{ id: string; qos_specs_id: string | null }> {
  const typeId = queryOf(req).vol_type_id;
  if (!typeId) throw badRequest('Volume Type id must not be None.');
  const type = await volume.db.selectFrom('volume_type').select(['id', 'qos_specs_id']).where('id', '=', typeId).executeTakeFirst();
  if (!type) throw volumeTypeNotFound(typeId);
  return type;
}

async function associate(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:qos_specs_manage:update');
  if (!queryOf(req).vol_type_id) throw badRequest('Volume Type id must not be None.');
  const spec = await getQos(volume, req.params.id);
  const type = await typeOf(volume, req);
  if (type.qos_specs_id && type.qos_specs_id !== spec.id) {
    throw badRequest(`Invalid volume type: Type ${type.id} is already associated with another qos specs: ${type.qos_specs_id}`);
  }
  if (!type.qos_specs_id) await volume.db.updateTable('volume_type').set({ qos_specs_id: spec.id, updated_at: now() }).where('id', '=', type.id).where('qos_specs_id', 'is', null).execute();
  volume.notify('qos_specs.associate', { id: spec.id, type_id: type.id, created_at: spec.created_at });
  return reply.code(202).send();
}

async function disassociate(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:qos_specs_manage:update');
  if (!queryOf(req).vol_type_id) throw badRequest('Volume Type id must not be None.');
  const spec = await getQos(volume, req.params.id);
  const type = await typeOf(volume, req);
  await volume.db.updateTable('volume_type').set({ qos_specs_id: null, updated_at: now() }).where('id', '=', type.id).where('qos_specs_id', '=', spec.id).execute();
  volume.notify('qos_specs.disassociate', { id: spec.id, type_id: type.id, created_at: spec.created_at });
  return reply.code(202).send();
}

/** Registers `/qos-specs`. */
export function registerQosSpecs(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/qos-specs', async (req) => list(volume, req));
  app.post('/v3/qos-specs', async (req) => create(volume, req));
  app.get<{ Params: { id: string } }>('/v3/qos-specs/:id', async (req) => {
    authorize(volume, contextOf(req), 'volume_extension:qos_specs_manage:get');
    const spec = await getQos(volume, req.params.id);
    return { qos_specs: summary(spec), links: links(volume, req, spec.id) };
  });
  app.put<{ Params: { id: string } }>('/v3/qos-specs/:id', async (req) => setKeys(volume, req));
  app.delete<{ Params: { id: string } }>('/v3/qos-specs/:id', async (req, reply) => remove(volume, req, reply));
  app.put<{ Params: { id: string } }>('/v3/qos-specs/:id/delete_keys', async (req, reply) => deleteKeys(volume, req, reply));
  app.get<{ Params: { id: string } }>('/v3/qos-specs/:id/associations', async (req) => {
    authorize(volume, contextOf(req), 'volume_extension:qos_specs_manage:get_all');
    const spec = await getQos(volume, req.params.id);
    const types = await volume.db.selectFrom('volume_type').select(['id', 'name']).where('qos_specs_id', '=', spec.id).orderBy('name').execute();
    return { qos_associations: types.map((t) => ({ association_type: 'volume_type', name: t.name, id: t.id })) };
  });
  app.get<{ Params: { id: string } }>('/v3/qos-specs/:id/associate', async (req, reply) => associate(volume, req, reply));
  app.get<{ Params: { id: string } }>('/v3/qos-specs/:id/disassociate', async (req, reply) => disassociate(volume, req, reply));
  app.get<{ Params: { id: string } }>('/v3/qos-specs/:id/disassociate_all', async (req, reply) => {
    authorize(volume, contextOf(req), 'volume_extension:qos_specs_manage:update');
    const spec = await getQos(volume, req.params.id);
    await volume.db.updateTable('volume_type').set({ qos_specs_id: null, updated_at: now() }).where('qos_specs_id', '=', spec.id).execute();
    volume.notify('qos_specs.disassociate_all', { id: spec.id, created_at: spec.created_at });
    return reply.code(202).send();
  });
}

