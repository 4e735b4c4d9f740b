import type { Kysely } from 'kysely';
import type { ComputeSchema } from '../db/schema.js';

/**
 * The encrypted password a guest posts to the metadata service (Windows'
 * cloudbase-init, `nova get-password`): kept in the server's system metadata
 * as Nova keeps it, in up to four chunks `password_0` ... `password_3` of 255
 * characters each.
 */
const CHUNKS = 4;
const CHUNK_LENGTH = 255;

/** The largest password accepted, in bytes (Nova's 4 x 255). */
export const MAX_PASSWORD_SIZE = CHUNKS * CHUNK_LENGTH;

const KEYS = Array.from({ length: CHUNKS }, (_, i) => `password_${i}`);

/** The server's stored password, or '' when it has none. */
export async function readServerPassword(db: Kysely<ComputeSchema>, uuid: string): Promise<string> {
  const rows = await db.selectFrom('instance_system_metadata').select(['key', 'value']).where('instance_uuid', '=', uuid).where('key', 'in', KEYS).execute();
  return rows
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((r) => r.value)
    .join('');
}

/**
 * Stores the password once: false (and nothing changed) when the server
 * already has one, also when two posts race. `password` is at most
 * {@link MAX_PASSWORD_SIZE} characters (the caller checks).
 */
export async function setServerPasswordOnce(db: Kysely<ComputeSchema>, uuid: string, password: string): Promise<boolean> {
  try {
    return await db.transaction().execute(async (trx) => {
      if ((await readServerPassword(trx, uuid)) !== '') return false;
      await trx.deleteFrom('instance_system_metadata').where('instance_uuid', '=', uuid).where('key', 'in', KEYS).execute();
      // `password_0` is always written, so that a racing second insert hits the primary key.
      const rows = KEYS.map((key, i) => ({ instance_uuid: uuid, key, value: password.slice(i * CHUNK_LENGTH, (i + 1) * CHUNK_LENGTH) })).filter((r, i) => i === 0 || r.value !== '');
      await trx.insertInto('instance_system_metadata').values(rows).execute();
      return true;
    });
  } catch (err) {
    if ((await readServerPassword(db, uuid)) !== '') return false;
    throw err;
  }
}

/** Forgets the server's password (`DELETE /servers/{id}/os-server-password`); idempotent. */
export async function clearServerPassword(db: Kysely<ComputeSchema>, uuid: string): Promise<void> {
  await db.deleteFrom('instance_system_metadata').where('instance_uuid', '=', uuid).where('key', 'in', KEYS).execute();
}
