import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { RequestContext } from '../core/auth/context.js';
import type { TransferRow } from './db/schema.js';
import { badRequest, invalidVolume, notFound, volumeNotFound, type VolumeError } from './errors.js';
import { checkPerVolumeLimit, checkQuotaAfterInsert, reserveQuota } from './quotas.js';
import { authorize, isAdmin, now, type VolumeService } from './volume.js';

/**
 * Volume transfers (Cinder's transfer API): a project offers one of its
 * available volumes (status `awaiting-transfer`) with a secret auth key; a
 * member of another project accepts it with the key, and the volume (and,
 * unless `no_snapshots`, its snapshots) become that project's, quota moving
 * with them. Only the HMAC of the key is kept. A transfer row lives until
 * it is accepted or deleted.
 */

/** Cinder's `volume_transfer_salt_length` and `volume_transfer_key_length`. */
const SALT_LENGTH = 8;
const KEY_LENGTH = 16;

function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2))
    .toString('hex')
    .slice(0, length);
}

function cryptHash(salt: string, authKey: string): string {
  return createHmac('sha1', salt).update(authKey).digest('hex');
}

/** Cinder's `TransferNotFound`. */
export const transferNotFound = (id: string): VolumeError => notFound(`Transfer ${id} could not be found.`);

/** A transfer as the views need it (the giver is its volume's project until accepted). */
export interface Transfer extends TransferRow {
  auth_key?: string;
}

/** The transfer `id` if `ctx` may see it: administrators all, others those of their project's volumes (404 otherwise). */
export async function getTransfer(volume: VolumeService, ctx: RequestContext | null, id: string): Promise<Transfer> {
  let query = volume.db.selectFrom('transfer').innerJoin('volume', 'volume.id', 'transfer.volume_id').selectAll('transfer').where('transfer.id', '=', id);
  if (ctx && !isAdmin(volume, ctx)) query = query.where('volume.project_id', '=', ctx.projectId ?? '');
  const row = await query.executeTakeFirst();
  if (!row) throw transferNotFound(id);
  return row;
}

/** A volume event's payload (Cinder's usage notification, the fields a consumer reads). */
function usage(row: { id: string; project_id: string; user_id: string; display_name: string | null; size: number; status: string; availability_zone: string; volume_type_id: string; host: string | null }): Record<string, unknown> {
  return { tenant_id: row.project_id, user_id: row.user_id, volume_id: row.id, display_name: row.display_name, size: row.size, status: row.status, availability_zone: row.availability_zone, volume_type: row.volume_type_id, host: row.host };
}

/**
 * Offers volume `volumeId` (which must be available, its snapshots too
 * unless `noSnapshots`): the volume goes to `awaiting-transfer`. Returns
 * the transfer with its auth key, shown this once.
 */
export async function createTransfer(
  volume: VolumeService,
  ctx: RequestContext,
  input: { volumeId: string; name: string | null; noSnapshots: boolean; allowEncrypted: boolean },
): Promise<Transfer> {
  let query = volume.db.selectFrom('volume').selectAll().where('id', '=', input.volumeId);
  if (!isAdmin(volume, ctx)) query = query.where('project_id', '=', ctx.projectId ?? '');
  const vol = await query.executeTakeFirst();
  if (!vol) throw volumeNotFound(input.volumeId);
  authorize(volume, ctx, 'volume:create_transfer', { project_id: vol.project_id });
  if (vol.status !== 'available') throw invalidVolume('status must be available');
  if (vol.encryption_key_id !== null) {
    if (!input.allowEncrypted) throw invalidVolume('transferring encrypted volume is not supported');
    if (input.noSnapshots) throw invalidVolume('transferring an encrypted volume without its snapshots is not supported');
  }
  if (!input.noSnapshots) {
    const snapshots = await volume.db.selectFrom('snapshot').select(['id', 'status']).where('volume_id', '=', vol.id).execute();
    const busy = snapshots.find((s) => s.status !== 'available');
    if (busy) throw badRequest(`Invalid snapshot: snapshot: ${busy.id} status must be available`);
  }
  const salt = randomHex(SALT_LENGTH);
  const authKey = randomHex(KEY_LENGTH);
  const row: TransferRow = {
    id: randomUUID(),
    volume_id: vol.id,
    project_id: vol.project_id,
    display_name: input.name,
    salt,
    crypt_hash: cryptHash(salt, authKey),
    no_snapshots: input.noSnapshots ? 1 : 0,
    created_at: now(),
    updated_at: null,
  };
  volume.notify('volume.transfer.create.start', usage(vol));
  await volume.db.transaction().execute(async (trx) => {
    const moved = await trx.updateTable('volume').set({ status: 'awaiting-transfer', updated_at: now() }).where('id', '=', vol.id).where('status', '=', 'available').executeTakeFirst();
    if (Number(moved.numUpdatedRows) === 0) throw invalidVolume(`Transfer ${row.id}: Volume id ${vol.id} expected in available state.`);
    await trx.insertInto('transfer').values(row).execute();
  });
  volume.notify('volume.transfer.create.end', usage({ ...vol, status: 'awaiting-transfer' }));
  return { ...row, auth_key: authKey };
}

/** Withdraws a transfer: the volume is available to its project again. */
export async function deleteTransfer(volume: VolumeService, ctx: RequestContext, id: string): Promise<void> {
  const transfer = await getTransfer(volume, ctx, id);
  const vol = await volume.db.selectFrom('volume').selectAll().where('id', '=', transfer.volume_id).executeTakeFirst();
  if (!vol) throw transferNotFound(id);
  authorize(volume, ctx, 'volume:delete_transfer', { project_id: vol.project_id });
  volume.notify('volume.transfer.delete.start', usage(vol));
  await volume.db.transaction().execute(async (trx) => {
    await trx.updateTable('volume').set({ status: 'available', updated_at: now() }).where('id', '=', vol.id).where('status', '=', 'awaiting-transfer').execute();
    await trx.deleteFrom('transfer').where('id', '=', id).execute();
  });
  volume.notify('volume.transfer.delete.end', usage({ ...vol, status: 'available' }));
}

/**
 * Accepts transfer `id` into the caller's project with `authKey` (400
 * `Invalid auth key` when wrong): the recipient's quota must hold the
 * volume (and its snapshots), 413 otherwise; then the volume and its
 * snapshots change project and user, and the transfer is gone. All or
 * nothing: an overshoot found after the move (a concurrent create) puts
 * everything back and answers 413.
 */
export async function acceptTransfer(volume: VolumeService, ctx: RequestContext, id: string, authKey: string): Promise<Transfer> {
  authorize(volume, ctx, 'volume:accept_transfer');
  const transfer = await getTransfer(volume, null, id);
  const expected = Buffer.from(transfer.crypt_hash, 'utf8');
  const given = Buffer.from(cryptHash(transfer.salt, authKey), 'utf8');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw badRequest(`Invalid auth key: Attempt to transfer ${id} with invalid auth key.`);
  const vol = await volume.db.selectFrom('volume').selectAll().where('id', '=', transfer.volume_id).executeTakeFirst();
  if (!vol) throw transferNotFound(id);
  const recipient = ctx.projectId ?? '';
  const userId = ctx.userId;
  const type = await volume.db.selectFrom('volume_type').select('name').where('id', '=', vol.volume_type_id).executeTakeFirst();
  const typeName = type?.name ?? null;
  const snapshots = Number(transfer.no_snapshots) === 1 ? [] : await volume.db.selectFrom('snapshot').select(['id', 'status', 'volume_size', 'project_id', 'user_id']).where('volume_id', '=', vol.id).execute();
  const snapshotGb = snapshots.reduce((sum, s) => sum + Number(s.volume_size), 0);
  await checkPerVolumeLimit(volume, recipient, vol.size);
  await reserveQuota(volume, recipient, { volumes: 1, gigabytes: vol.size }, typeName);
  if (snapshots.length > 0) await reserveQuota(volume, recipient, { snapshots: snapshots.length, gigabytes: vol.size + snapshotGb }, typeName);
  volume.notify('volume.transfer.accept.start', usage(vol));
  await volume.db.transaction().execute(async (trx) => {
    const moved = await trx
      .updateTable('volume')
      .set({ status: 'available', project_id: recipient, user_id: userId, updated_at: now() })
      .where('id', '=', vol.id)
      .where('status', '=', 'awaiting-transfer')
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) === 0) throw invalidVolume(`Transfer ${id}: Volume id ${vol.id} expected in awaiting-transfer state.`);
    for (const snapshot of snapshots) {
      const done = await trx.updateTable('snapshot').set({ project_id: recipient, user_id: userId, updated_at: now() }).where('id', '=', snapshot.id).where('status', '=', 'available').executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) throw badRequest(`Invalid snapshot: Transfer ${id}: Snapshot ${snapshot.id} is not in the expected available state.`);
    }
    await trx.deleteFrom('transfer').where('id', '=', id).execute();
  });
  try {
    await checkQuotaAfterInsert(volume, recipient, { volumes: 1, gigabytes: vol.size }, typeName);
    if (snapshots.length > 0) await checkQuotaAfterInsert(volume, recipient, { snapshots: snapshots.length, gigabytes: vol.size + snapshotGb }, typeName);
  } catch (err) {
    await volume.db.transaction().execute(async (trx) => {
      await trx.updateTable('volume').set({ status: 'awaiting-transfer', project_id: vol.project_id, user_id: vol.user_id, updated_at: now() }).where('id', '=', vol.id).execute();
      for (const snapshot of snapshots) await trx.updateTable('snapshot').set({ project_id: snapshot.project_id, user_id: snapshot.user_id }).where('id', '=', snapshot.id).execute();
      await trx.insertInto('transfer').values(transfer).execute();
    });
    throw err;
  }
  volume.notify('volume.transfer.accept.end', usage({ ...vol, status: 'available', project_id: recipient, user_id: userId }));
  return transfer;
}

/**
 * The transfers `ctx` may list: its project's (the volumes it gives), or
 * with `allTenants` an administrator's view of all. `filters` are columns
 * (`name` is `display_name`); an unknown one matches nothing, as in Cinder.
 */
export async function listTransfers(volume: VolumeService, ctx: RequestContext, allTenants: boolean, filters: Record<string, string>): Promise<Transfer[]> {
  let query = volume.db.selectFrom('transfer').innerJoin('volume', 'volume.id', 'transfer.volume_id').selectAll('transfer');
  if (!(allTenants && isAdmin(volume, ctx))) query = query.where('volume.project_id', '=', ctx.projectId ?? '');
  const columns = ['id', 'volume_id', 'display_name', 'created_at', 'updated_at', 'no_snapshots'] as const;
  for (const [key, value] of Object.entries(filters)) {
    if (key === 'project_id') {
      query = query.where('volume.project_id', '=', value);
      continue;
    }
    const column = columns.find((c) => c === key);
    if (!column) return [];
    query = query.where(`transfer.${column}`, '=', column === 'no_snapshots' ? (['1', 'true', 'True'].includes(value) ? 1 : 0) : value);
  }
  return query.execute();
}
