import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, notFound } from '../errors.js';
import { apiTime, authorize, contextOf, now, type VolumeService } from '../volume.js';
import { getVolumeType } from '../volume-types.js';
import { bodyObject, DB_MAX_INT, invalidField, notOfType, pyRepr, type Obj } from './catalog-input.js';

/**
 * A volume type's encryption (`/types/{id}/encryption`): the provider,
 * cipher, key size and control location a volume of the type is encrypted
 * with. Recorded and shown as Cinder does; refused while a volume has the
 * type.
 */

interface Encryption {
  provider?: string;
  cipher?: string | null;
  key_size?: number | null;
  control_location?: string;
}

/** Cinder's encryption schema (create: provider and control_location required). */
function parseEncryption(body: unknown, create: boolean): Encryption {
  const inner = bodyObject(body, 'encryption');
  if (create) {
    for (const key of ['provider', 'control_location']) if (!(key in inner)) throw invalidField('encryption', inner, `'${key}' is a required property`);
  }
  const out: Encryption = {};
  if (inner.key_size !== undefined && inner.key_size !== null) {
    const v = inner.key_size;
    if (typeof v !== 'number' && typeof v !== 'string') throw invalidField('key_size', v, notOfType(v, 'string', 'integer', 'null'));
    const text = String(v).trim();
    if (!/^[+-]?\d+$/.test(text)) throw badRequest('Invalid input received: key_size must be an integer.');
    const n = Number(text);
    if (n < 0) throw invalidField('key_size', v, `${pyRepr(v)} is less than the minimum of 0`);
    if (n > DB_MAX_INT) throw invalidField('key_size', v, `${pyRepr(v)} is greater than the maximum of ${DB_MAX_INT}`);
    out.key_size = n;
  } else if (inner.key_size === null) out.key_size = null;
  if (inner.provider !== undefined) {
    if (typeof inner.provider !== 'string') throw invalidField('provider', inner.provider, notOfType(inner.provider, 'string'));
    if (inner.provider.length > 255) throw invalidField('provider', inner.provider, `${pyRepr(inner.provider)} is too long`);
    out.provider = inner.provider;
  }
  if (inner.control_location !== undefined) {
    if (inner.control_location !== 'front-end' && inner.control_location !== 'back-end') {
      throw invalidField('control_location', inner.control_location, `${pyRepr(inner.control_location)} is not one of ['front-end', 'back-end']`);
    }
    out.control_location = inner.control_location;
  }
  if (inner.cipher !== undefined) {
    if (inner.cipher !== null && typeof inner.cipher !== 'string') throw invalidField('cipher', inner.cipher, notOfType(inner.cipher, 'string', 'null'));
    if (typeof inner.cipher === 'string' && inner.cipher.length > 255) throw invalidField('cipher', inner.cipher, `${pyRepr(inner.cipher)} is too long`);
    out.cipher = inner.cipher;
  }
  return out;
}

async function inUse(volume: VolumeService, typeId: string): Promise<boolean> {
  return (await volume.db.selectFrom('volume').select('id').where('volume_type_id', '=', typeId).executeTakeFirst()) !== undefined;
}

/** The encryption of a type as Cinder shows it ({} when it has none). */
export async function encryptionOf(volume: VolumeService, typeId: string): Promise<Obj> {
  const row = await volume.db.selectFrom('volume_type_encryption').selectAll().where('volume_type_id', '=', typeId).executeTakeFirst();
  if (!row) return {};
  return {
    volume_type_id: row.volume_type_id,
    encryption_id: row.encryption_id,
    key_size: row.key_size === null ? null : Number(row.key_size),
    provider: row.provider,
    control_location: row.control_location,
    cipher: row.cipher,
    deleted: false,
    created_at: apiTime(row.created_at),
    updated_at: apiTime(row.updated_at),
    deleted_at: null,
  };
}

async function create(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const spec = parseEncryption(req.body, true);
  authorize(volume, ctx, 'volume_extension:volume_type_encryption:create');
  if (await inUse(volume, req.params.id)) throw badRequest('Cannot create encryption specs. Volume type in use.');
  const type = await getVolumeType(volume, ctx, req.params.id);
  if (Object.keys(await encryptionOf(volume, type.id)).length > 0) throw badRequest(`Volume type encryption for type ${type.id} already exists.`);
  const encryptionId = randomUUID();
  await volume.db
    .insertInto('volume_type_encryption')
    .values({
      volume_type_id: type.id,
      encryption_id: encryptionId,
      provider: spec.provider ?? '',
      cipher: spec.cipher ?? null,
      key_size: spec.key_size ?? null,
      control_location: spec.control_location ?? 'front-end',
      created_at: now(),
      updated_at: null,
    })
    .execute();
  volume.notify('volume_type_encryption.create', { type_id: type.id, specs: spec });
  return { encryption: { ...spec, volume_type_id: type.id, encryption_id: encryptionId } };
}

async function update(volume: VolumeService, req: FastifyRequest<{ Params: { id: string; key: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const spec = parseEncryption(req.body, false);
  authorize(volume, ctx, 'volume_extension:volume_type_encryption:update');
  const type = await getVolumeType(volume, ctx, req.params.id);
  if (await inUse(volume, type.id)) throw badRequest('Cannot update encryption specs. Volume type in use.');
  const res = await volume.db
    .updateTable('volume_type_encryption')
    .set({ ...spec, updated_at: now() })
    .where('volume_type_id', '=', type.id)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw notFound(`Volume type encryption for type ${type.id} does not exist.`);
  volume.notify('volume_type_encryption.update', { type_id: type.id, id: req.params.key });
  return { encryption: spec };
}

async function remove(volume: VolumeService, req: FastifyRequest<{ Params: { id: string; key: string } }>, reply: FastifyReply): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:volume_type_encryption:delete');
  if (await inUse(volume, req.params.id)) throw badRequest('Cannot delete encryption specs. Volume type in use.');
  const res = await volume.db.deleteFrom('volume_type_encryption').where('volume_type_id', '=', req.params.id).executeTakeFirst();
  if (Number(res.numDeletedRows) === 0) throw notFound(`Volume type encryption for type ${req.params.id} does not exist.`);
  volume.notify('volume_type_encryption.delete', { type_id: req.params.id });
  return reply.code(202).send();
}

/** Registers `/types/{id}/encryption`. */
export function registerTypeEncryption(app: FastifyInstance, volume: VolumeService): void {
  app.get<{ Params: { id: string } }>('/v3/types/:id/encryption', async (req) => {
    const ctx = contextOf(req);
    authorize(volume, ctx, 'volume_extension:volume_type_encryption:get');
    const type = await getVolumeType(volume, ctx, req.params.id);
    return encryptionOf(volume, type.id);
  });
  app.post<{ Params: { id: string } }>('/v3/types/:id/encryption', async (req) => create(volume, req));
  app.get<{ Params: { id: string; key: string } }>('/v3/types/:id/encryption/:key', async (req) => {
    const ctx = contextOf(req);
    authorize(volume, ctx, 'volume_extension:volume_type_encryption:get');
    const type = await getVolumeType(volume, ctx, req.params.id);
    const specs = await encryptionOf(volume, type.id);
    if (!(req.params.key in specs)) throw notFound(`Volume type encryption for type ${type.id} does not exist.`);
    return { [req.params.key]: specs[req.params.key] };
  });
  app.put<{ Params: { id: string; key: string } }>('/v3/types/:id/encryption/:key', async (req) => update(volume, req));
  app.delete<{ Params: { id: string; key: string } }>('/v3/types/:id/encryption/:key', async (req, reply) => remove(volume, req, reply));
}
