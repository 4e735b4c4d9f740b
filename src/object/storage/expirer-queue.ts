import { EXPIRER_ACCOUNT, EXPIRER_DIVISOR, hashPathHex, type HashPathSalt } from '../common.js';

/**
 * Names of the expirer's queue (Swift's `.expiring_objects` account): the
 * proxy routes X-Delete-At updates with them, the object server writes and
 * removes queue entries, the expirer reads them.
 */

/** Task containers per divisor window (Swift's `task_container_per_day`). */
export const TASK_CONTAINERS_PER_DAY = 100;

/** `%010d` of a delete-at time, clamped as Swift's `normalize_delete_at_timestamp`. */
export function normalizeDeleteAt(deleteAt: number): string {
  return String(Math.min(Math.max(0, Math.floor(deleteAt)), 9999999999)).padStart(10, '0');
}

/**
 * The queue container of an object that expires at `deleteAt` (Swift's
 * `get_expirer_container`): the start of its day, minus a per-object offset
 * (hash of the name modulo 100) that spreads a day over 100 containers.
 */
export function expirerContainer(salt: HashPathSalt, deleteAt: number, account: string, container: string, object: string): string {
  const shard = Number(BigInt(`0x${hashPathHex(salt, account, container, object)}`) % BigInt(TASK_CONTAINERS_PER_DAY));
  return normalizeDeleteAt(Math.floor(deleteAt / EXPIRER_DIVISOR) * EXPIRER_DIVISOR - shard);
}

/** The queue entry's object name: `<delete_at>-<account>/<container>/<object>`. */
export function expirerTaskObject(deleteAt: number, account: string, container: string, object: string): string {
  return `${normalizeDeleteAt(deleteAt)}-${account}/${container}/${object}`;
}

/** Splits a queue entry's name; null when it is not one. */
export function parseExpirerTask(name: string): { deleteAt: number; account: string; container: string; object: string } | null {
  const match = /^(\d+)-([^/]+)\/([^/]+)\/(.+)$/s.exec(name);
  if (!match) return null;
  return { deleteAt: Number(match[1]), account: match[2] ?? '', container: match[3] ?? '', object: match[4] ?? '' };
}

/** The expirer queue account, re-exported for callers of this module. */
export { EXPIRER_ACCOUNT };
