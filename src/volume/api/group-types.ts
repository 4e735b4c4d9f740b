import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { isUniqueViolation } from '../../core/db/database.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { getGroupType, loadGroupTypes, type GroupType } from '../group-types.js';
import { allowed, atLeast, authorize, contextOf, isAdmin, now, type VolumeService } from '../volume.js';
import { bodyObject, bodyOf, booleanField, checkKeys, descriptionField, nameField, nextLink, paginationOf, pyRepr, queryOf, sortOf, SPEC_KEY_NO_SPACES, specsField, strictBool, stringField, versionNotSupported } from './catalog-input.js';

/**
 * Group types (3.11 `/group_types`: list, show, `/group_types/default`,
 * create, update, delete) and their specs (`/group_types/{id}/group_specs`),
 * as Cinder's group_types and group_specs controllers. Stratus has no
 * `default_group_type` option (Cinder's default is none), so
 * `/group_types/default` is Cinder's 404.
 */

type IdParams = { Params: { id: string } };
type KeyParams = { Params: { id: string; key: string } };

/** 404 before 3.11, as Cinder's versioned methods. */
function requireGroupTypes(req: FastifyRequest): void {
  if (!atLeast(req, '3.11')) throw versionNotSupported(req);
}

/** Cinder's view: specs for those `group:access_group_types_specs` allows. */
function groupTypeView(volume: VolumeService, ctx: RequestContext, type: GroupType): Record<string, unknown> {
  const view: Record<string, unknown> = { id: type.id, name: type.name, description: type.description, is_public: type.is_public };
  if (allowed(volume, ctx, 'group:access_group_types_specs')) view.group_specs = type.group_specs;
  return view;
}

const SORT_KEYS = ['id', 'name', 'description', 'is_public', 'created_at', 'updated_at'];

async function listGroupTypes(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  requireGroupTypes(req);
  const ctx = contextOf(req);
  const query = queryOf(req);
  const { limit, marker, offset } = paginationOf(volume, query);
  const sort = sortOf(query);
  for (const { key } of sort) if (!SORT_KEYS.includes(key)) throw badRequest('Invalid input received: Invalid sort key');
  let isPublic: boolean | null = true;
  const admin = isAdmin(volume, ctx);
  if (admin && query.is_public !== undefined) {
    if (query.is_public.toLowerCase() === 'none') isPublic = null;
    else {
      const b = strictBool(query.is_public);
      if (b === undefined) throw badRequest(`Invalid is_public filter [${query.is_public}]`);
      isPublic = b;
    }
  }
  const access = new Set(
    ctx.projectId ? (await volume.db.selectFrom('group_type_project').select('group_type_id').where('project_id', '=', ctx.projectId).execute()).map((r) => r.group_type_id) : [],
  );
  let types = await loadGroupTypes(volume);
  if (!admin) types = types.filter((t) => t.is_public || access.has(t.id));
  if (isPublic === true) types = types.filter((t) => t.is_public || access.has(t.id));
  else if (isPublic === false) types = types.filter((t) => !t.is_public);
  const keys = sort.some((k) => k.key === 'id') ? sort : [...sort, { key: 'id', dir: sort[sort.length - 1]?.dir ?? 'desc' }];
  types.sort((a, b) => {
    for (const { key, dir } of keys) {
      const x = String((a as unknown as Record<string, unknown>)[key] ?? '');
      const y = String((b as unknown as Record<string, unknown>)[key] ?? '');
      if (x !== y) return (x < y ? -1 : 1) * (dir === 'asc' ? 1 : -1);
    }
    return 0;
  });
  if (marker !== undefined) {
    const at = types.findIndex((t) => t.id === marker);
    if (at < 0) throw notFound(`Marker ${marker} could not be found.`);
    types = types.slice(at + 1);
  }
  const pageSize = limit ?? volume.config.volume.max_limit;
  types = types.slice(offset).slice(0, pageSize);
  const body: Record<string, unknown> = { group_types: types.map((t) => groupTypeView(volume, ctx, t)) };
  const last = types[types.length - 1];
  if (last && types.length === pageSize) body.group_type_links = [nextLink(volume, req, 'group_types', last.id)];
  return body;
}

async function createGroupType(volume: VolumeService, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  requireGroupTypes(req);
  const ctx = contextOf(req);
  const body = bodyObject(req.body, 'group_type');
  checkKeys(body, 'group_type', ['name', 'description', 'is_public', 'group_specs'], ['name']);
  const name = nameField(body.name);
  const description = body.description === undefined ? null : descriptionField(body.description);
  const isPublic = body.is_public === undefined ? true : booleanField(body.is_public, 'is_public');
  const specs = body.group_specs === undefined || body.group_specs === null ? {} : specsField(body.group_specs, 'group_specs', /^[\s\S]{1,255}$/, false);
  authorize(volume, ctx, 'group:group_types:create');
  const id = randomUUID();
  try {
    await volume.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('group_type').select('id').where('name', '=', name).executeTakeFirst();
      if (existing) throw conflict(`Group Type ${name} already exists.`);
      await trx.insertInto('group_type').values({ id, name, description, is_public: isPublic ? 1 : 0, created_at: now(), updated_at: null }).execute();
      const entries = Object.entries(specs).filter((e): e is [string, string] => e[1] !== null);
      if (entries.length > 0) await trx.insertInto('group_type_spec').values(entries.map(([key, value]) => ({ group_type_id: id, key, value }))).execute();
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`Group Type ${name} already exists.`);
    throw err;
  }
  const type = await getGroupType(volume, null, id);
  volume.notify('group_type.create', { group_types: type });
  return reply.code(202).send({ group_type: groupTypeView(volume, ctx, type) });
}

async function updateGroupType(volume: VolumeService, req: FastifyRequest<IdParams>): Promise<unknown> {
  requireGroupTypes(req);
  const ctx = contextOf(req);
  const body = bodyObject(req.body, 'group_type');
  checkKeys(body, 'group_type', ['name', 'description', 'is_public']);
  const name = body.name === undefined || body.name === null ? null : stringField(body.name, 'name', 0, 255);
  const description = body.description === undefined ? null : descriptionField(body.description);
  const isPublic = body.is_public === undefined || body.is_public === null ? null : booleanField(body.is_public, 'is_public');
  authorize(volume, ctx, 'group:group_types:update');
  if (name && name.trim().length === 0) throw badRequest('Group type name can not be empty.');
  if (name === null && description === null && isPublic === null) throw badRequest('Specify group type name, description or a combination thereof.');
  const old = await getGroupType(volume, null, req.params.id);
  const values: { name?: string; description?: string; is_public?: number; updated_at: string } = { updated_at: now() };
  if (name) values.name = name;
  if (description !== null) values.description = description;
  if (isPublic !== null) values.is_public = isPublic ? 1 : 0;
  if (name && name !== old.name) {
    const other = await volume.db.selectFrom('group_type').select('id').where('name', '=', name).executeTakeFirst();
    if (other) throw conflict(`Group Type ${old.id} already exists.`);
  }
  try {
    await volume.db.updateTable('group_type').set(values).where('id', '=', old.id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`Group Type ${old.id} already exists.`);
    throw err;
  }
  const type = await getGroupType(volume, null, old.id);
  volume.notify('group_type.update', { group_types: type });
  return { group_type: groupTypeView(volume, ctx, type) };
}

async function deleteGroupType(volume: VolumeService, req: FastifyRequest<IdParams>, reply: FastifyReply): Promise<unknown> {
  requireGroupTypes(req);
  const ctx = contextOf(req);
  authorize(volume, ctx, 'group:group_types:delete');
  const type = await getGroupType(volume, ctx, req.params.id);
  await volume.db.transaction().execute(async (trx) => {
    const inUse = await trx.selectFrom('volume_group').select('id').where('group_type_id', '=', type.id).executeTakeFirst();
    const snapshotInUse = inUse ? undefined : await trx.selectFrom('group_snapshot').select('id').where('group_type_id', '=', type.id).executeTakeFirst();
    if (inUse || snapshotInUse) throw badRequest('Target group type is still in use.');
    await trx.deleteFrom('group_type_spec').where('group_type_id', '=', type.id).execute();
    await trx.deleteFrom('group_type_project').where('group_type_id', '=', type.id).execute();
    await trx.deleteFrom('group_type').where('id', '=', type.id).execute();
  });
  volume.notify('group_type.delete', { group_types: type });
  return reply.code(202).send();
}

/** `/group_types/{id}/group_specs` (Cinder's group_specs controller). */
function registerGroupSpecs(app: FastifyInstance, volume: VolumeService): void {
  const load = async (req: FastifyRequest<IdParams | KeyParams>, rule: string): Promise<GroupType> => {
    requireGroupTypes(req);
    const ctx = contextOf(req);
    authorize(volume, ctx, rule);
    return getGroupType(volume, ctx, req.params.id);
  };
  const save = async (typeId: string, specs: Record<string, string | null>): Promise<void> => {
    await volume.db.transaction().execute(async (trx) => {
      for (const [key, value] of Object.entries(specs)) {
        await trx.deleteFrom('group_type_spec').where('group_type_id', '=', typeId).where('key', '=', key).execute();
        if (value !== null) await trx.insertInto('group_type_spec').values({ group_type_id: typeId, key, value }).execute();
      }
      await trx.updateTable('group_type').set({ updated_at: now() }).where('id', '=', typeId).execute();
    });
  };

  app.get<IdParams>('/v3/group_types/:id/group_specs', async (req) => ({ group_specs: (await load(req, 'group:group_types_specs:get_all')).group_specs }));

  app.post<IdParams>('/v3/group_types/:id/group_specs', async (req, reply) => {
    requireGroupTypes(req);
    const inner = bodyObject(req.body, 'group_specs');
    const specs = specsField(inner, 'group_specs', SPEC_KEY_NO_SPACES, true);
    const type = await load(req, 'group:group_types_specs:create');
    await save(type.id, specs);
    volume.notify('group_type_specs.create', { type_id: type.id, specs });
    return reply.code(202).send({ group_specs: specs });
  });

  app.get<KeyParams>('/v3/group_types/:id/group_specs/:key', async (req) => {
    const type = await load(req, 'group:group_types_specs:get');
    const value = type.group_specs[req.params.key];
    if (value === undefined) throw notFound(`Group Type ${req.params.id} has no extra spec with key ${req.params.key}.`);
    return { [req.params.key]: value };
  });

  app.put<KeyParams>('/v3/group_types/:id/group_specs/:key', async (req) => {
    requireGroupTypes(req);
    const body = bodyOf(req.body);
    const keys = Object.keys(body);
    if (keys.length < 1) throw badRequest(`${pyRepr(body)} does not have enough properties`);
    if (keys.length > 1) throw badRequest(`${pyRepr(body)} has too many properties`);
    const specs = specsField(body, 'group_specs', SPEC_KEY_NO_SPACES, true);
    const type = await load(req, 'group:group_types_specs:update');
    if (!(req.params.key in specs)) throw badRequest('Request body and URI mismatch');
    await save(type.id, specs);
    volume.notify('group_type_specs.update', { type_id: type.id, id: req.params.key });
    return specs;
  });

  app.delete<KeyParams>('/v3/group_types/:id/group_specs/:key', async (req, reply) => {
    const type = await load(req, 'group:group_types_specs:delete');
    const res = await volume.db.deleteFrom('group_type_spec').where('group_type_id', '=', type.id).where('key', '=', req.params.key).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound(`Group Type ${type.id} has no specs with key ${req.params.key}.`);
    volume.notify('group_type_specs.delete', { type_id: type.id, id: req.params.key });
    return reply.code(202).send();
  });
}

/** Registers `/group_types` and `/group_types/{id}/group_specs`. */
export function registerGroupTypes(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/group_types', async (req) => listGroupTypes(volume, req));
  app.get<IdParams>('/v3/group_types/:id', async (req) => {
    requireGroupTypes(req);
    const ctx = contextOf(req);
    if (req.params.id === 'default') throw notFound('Default group type can not be found.');
    return { group_type: groupTypeView(volume, ctx, await getGroupType(volume, ctx, req.params.id)) };
  });
  app.post('/v3/group_types', async (req, reply) => createGroupType(volume, req, reply));
  app.put<IdParams>('/v3/group_types/:id', async (req) => updateGroupType(volume, req));
  app.delete<IdParams>('/v3/group_types/:id', async (req, reply) => deleteGroupType(volume, req, reply));
  registerGroupSpecs(app, volume);
}
