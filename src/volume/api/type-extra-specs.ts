import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { badRequest, notFound } from '../errors.js';
import { allowed, authorize, contextOf, now, type VolumeService } from '../volume.js';
import { getVolumeType, typeExtraSpecs } from '../volume-types.js';
import { bodyObject, bodyOf, pyRepr, SPEC_KEY_NO_SPACES, specsField } from './catalog-input.js';
import { USER_VISIBLE_EXTRA_SPECS } from './types.js';

/**
 * A volume type's extra specs (`/types/{id}/extra_specs`): list, set
 * (create or update many), show, update one, delete one. Changing the
 * specs of a type some volume uses is refused, as in Cinder (the
 * scheduler placed those volumes by the specs they had).
 */

async function visibleSpecs(volume: VolumeService, ctx: RequestContext, typeId: string): Promise<Record<string, string>> {
  const specs = await typeExtraSpecs(volume, typeId);
  if (allowed(volume, ctx, 'volume_extension:types_extra_specs:read_sensitive')) return specs;
  return Object.fromEntries(Object.entries(specs).filter(([k]) => USER_VISIBLE_EXTRA_SPECS.includes(k)));
}

/** Cinder's `_allow_update`: 400 while a volume has the type. */
async function refuseInUse(volume: VolumeService, typeId: string): Promise<void> {
  const used = await volume.db.selectFrom('volume').select('id').where('volume_type_id', '=', typeId).executeTakeFirst();
  if (used) throw badRequest('Volume Type is currently in use.');
}

/** `multiattach` and `cacheable` (`<is> True`) exclude each other. */
async function checkCacheable(volume: VolumeService, typeId: string, specs: Record<string, string | null>): Promise<void> {
  const current = await typeExtraSpecs(volume, typeId);
  const isTrue = '<is> True';
  if ((specs.multiattach === isTrue && current.cacheable === isTrue) || (specs.cacheable === isTrue && current.multiattach === isTrue) || (specs.cacheable === isTrue && specs.multiattach === isTrue)) {
    throw badRequest('cacheable cannot be set with multiattach.');
  }
}

/** Writes `specs` (a null value removes the key). */
async function saveSpecs(volume: VolumeService, typeId: string, specs: Record<string, string | null>): Promise<void> {
  await volume.db.transaction().execute(async (trx) => {
    for (const [key, value] of Object.entries(specs)) {
      await trx.deleteFrom('volume_type_extra_spec').where('volume_type_id', '=', typeId).where('key', '=', key).execute();
      if (value !== null) await trx.insertInto('volume_type_extra_spec').values({ volume_type_id: typeId, key, value }).execute();
    }
    await trx.updateTable('volume_type').set({ updated_at: now() }).where('id', '=', typeId).execute();
  });
}

async function createSpecs(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const inner = bodyObject(req.body, 'extra_specs');
  const specs = specsField(inner, 'extra_specs', SPEC_KEY_NO_SPACES, true);
  authorize(volume, ctx, 'volume_extension:types_extra_specs:create');
  await refuseInUse(volume, req.params.id);
  const type = await getVolumeType(volume, ctx, req.params.id);
  await checkCacheable(volume, type.id, specs);
  await saveSpecs(volume, type.id, specs);
  volume.notify('volume_type_extra_specs.create', { type_id: type.id, specs });
  return { extra_specs: specs };
}

async function updateSpec(volume: VolumeService, req: FastifyRequest<{ Params: { id: string; key: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const body = bodyOf(req.body);
  const keys = Object.keys(body);
  if (keys.length < 1) throw badRequest(`${pyRepr(body)} does not have enough properties`);
  if (keys.length > 1) throw badRequest(`${pyRepr(body)} has too many properties`);
  const specs = specsField(body, 'extra_specs', SPEC_KEY_NO_SPACES, true);
  authorize(volume, ctx, 'volume_extension:types_extra_specs:update');
  await refuseInUse(volume, req.params.id);
  const type = await getVolumeType(volume, ctx, req.params.id);
  if (!(req.params.key in specs)) throw badRequest('Request body and URI mismatch');
  await checkCacheable(volume, type.id, specs);
  await saveSpecs(volume, type.id, specs);
  volume.notify('volume_type_extra_specs.update', { type_id: type.id, id: req.params.key });
  return specs;
}

async function showSpec(volume: VolumeService, req: FastifyRequest<{ Params: { id: string; key: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'volume_extension:types_extra_specs:show');
  const type = await getVolumeType(volume, ctx, req.params.id);
  const specs = await visibleSpecs(volume, ctx, type.id);
  const value = specs[req.params.key];
  if (value === undefined) throw notFound(`Volume Type ${req.params.id} has no extra specs with key ${req.params.key}.`);
  return { [req.params.key]: value };
}

async function deleteSpec(volume: VolumeService, req: FastifyRequest<{ Params: { id: string; key: string } }>, reply: FastifyReply): Promise<unknown> {
  const ctx = contextOf(req);
  const type = await getVolumeType(volume, ctx, req.params.id);
  authorize(volume, ctx, 'volume_extension:types_extra_specs:delete');
  await refuseInUse(volume, type.id);
  const res = await volume.db.deleteFrom('volume_type_extra_spec').where('volume_type_id', '=', type.id).where('key', '=', req.params.key).executeTakeFirst();
  if (Number(res.numDeletedRows) === 0) throw notFound(`Volume Type ${req.params.id} has no extra specs with key ${req.params.key}.`);
  await volume.db.updateTable('volume_type').set({ updated_at: now() }).where('id', '=', type.id).execute();
  volume.notify('volume_type_extra_specs.delete', { type_id: type.id, id: req.params.key });
  return reply.code(202).send();
}

/** Registers `/types/{id}/extra_specs`. */
export function registerTypeExtraSpecs(app: FastifyInstance, volume: VolumeService): void {
  app.get<{ Params: { id: string } }>('/v3/types/:id/extra_specs', async (req) => {
    const ctx = contextOf(req);
    authorize(volume, ctx, 'volume_extension:types_extra_specs:index');
    const type = await getVolumeType(volume, ctx, req.params.id);
    return { extra_specs: await visibleSpecs(volume, ctx, type.id) };
  });
  app.post<{ Params: { id: string } }>('/v3/types/:id/extra_specs', async (req) => createSpecs(volume, req));
  app.get<{ Params: { id: string; key: string } }>('/v3/types/:id/extra_specs/:key', async (req) => showSpec(volume, req));
  app.put<{ Params: { id: string; key: string } }>('/v3/types/:id/extra_specs/:key', async (req) => updateSpec(volume, req));
  app.delete<{ Params: { id: string; key: string } }>('/v3/types/:id/extra_specs/:key', async (req, reply) => deleteSpec(volume, req, reply));
}

