import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import type { ComputeSchema, InstanceRow } from './db/schema.js';
import { ComputeError, forbidden, invalidState } from './errors.js';

/**
 * Server metadata: the user's key/value pairs on a server (keys and values
 * of at most 255 characters), limited in number by the `metadata_items`
 * quota, and changed only while the server is unlocked (for non-admins) and
 * settled in ACTIVE, PAUSED, SUSPENDED or STOPPED with no task running.
 */

type Db = Kysely<ComputeSchema>;

/** Nova's 403 when a server would have more metadata items than the quota allows. */
export function metadataLimitExceeded(limit: number): ComputeError {
  return forbidden(`Maximum number of metadata items exceeds ${limit}`);
}

/** The metadata of several servers (for server views); a server without any is absent from the map. */
export async function serverMetadata(db: Db, uuids: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  for (let i = 0; i < uuids.length; i += 500) {
    const rows = await db.selectFrom('instance_metadata').select(['instance_uuid', 'key', 'value']).where('instance_uuid', 'in', uuids.slice(i, i + 500)).execute();
    for (const row of rows) {
      const meta = out.get(row.instance_uuid) ?? {};
      meta[row.key] = row.value;
      out.set(row.instance_uuid, meta);
    }
  }
  return out;
}

/** The metadata of one server. */
export async function metadataOf(db: Db, uuid: string): Promise<Record<string, string>> {
  return (await serverMetadata(db, [uuid])).get(uuid) ?? {};
}

/** The states in which a server's metadata may change. */
const EDITABLE_STATES = ['active', 'paused', 'suspended', 'stopped'];

/**
 * Throws Nova's 409 when the server's metadata may not change now: `Instance
 * <id> is locked` (unless `admin`), or `Cannot '<action>' instance <id> while
 * it is in vm_state|task_state|launched_at <state>`.
 */
export function checkMetadataEditable(server: InstanceRow, admin: boolean, action: 'update metadata' | 'delete metadata'): void {
  if (server.locked && !admin) throw new ComputeError(409, `Instance ${server.uuid} is locked`);
  if (!EDITABLE_STATES.includes(server.vm_state)) throw invalidState('vm_state', server.vm_state, action, server.uuid);
  if (server.task_state !== null) throw invalidState('task_state', server.task_state, action, server.uuid);
  if (!server.launched_at) throw invalidState('launched_at', null, action, server.uuid);
}

/**
 * Sets metadata items: merged into the server's (`replace` false) or
 * instead of them (`replace` true), in one transaction; 403 when the result
 * would have more than `limit` items (-1: no limit). Returns the server's
 * metadata after the change. Idempotent.
 */
export async function setMetadata(db: Db, uuid: string, values: Record<string, string>, options: { replace: boolean; limit: number }): Promise<Record<string, string>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await writeMetadata(db, uuid, values, options);
    } catch (err) {
      // A concurrent change wrote a key first: read again and redo.
      if (!isUniqueViolation(err) || attempt >= 2) throw err;
    }
  }
}

async function writeMetadata(db: Db, uuid: string, values: Record<string, string>, options: { replace: boolean; limit: number }): Promise<Record<string, string>> {
  return db.transaction().execute(async (trx) => {
    const current = await metadataOf(trx, uuid);
    const next = options.replace ? { ...values } : { ...current, ...values };
    if (options.limit >= 0 && Object.keys(next).length > options.limit) throw metadataLimitExceeded(options.limit);
    const gone = Object.keys(current).filter((k) => !Object.hasOwn(next, k));
    const changed = Object.keys(next).filter((k) => current[k] !== next[k]);
    const rewrite = [...gone, ...changed];
    for (let i = 0; i < rewrite.length; i += 500) {
      await trx.deleteFrom('instance_metadata').where('instance_uuid', '=', uuid).where('key', 'in', rewrite.slice(i, i + 500)).execute();
    }
    for (let i = 0; i < changed.length; i += 500) {
      const rows = changed.slice(i, i + 500).map((key) => ({ instance_uuid: uuid, key, value: next[key] ?? '' }));
      await trx.insertInto('instance_metadata').values(rows).execute();
    }
    return next;
  });
}

/** Removes one item; false when the server did not have it. */
export async function deleteMetadataItem(db: Db, uuid: string, key: string): Promise<boolean> {
  const result = await db.deleteFrom('instance_metadata').where('instance_uuid', '=', uuid).where('key', '=', key).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
