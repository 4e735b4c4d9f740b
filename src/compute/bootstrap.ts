import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import { isoNow } from './common.js';
import type { ComputeSchema, FlavorRow } from './db/schema.js';

/** DevStack's flavors: Nova's m1.* and the small ones DevStack adds for CirrOS. */
const DEFAULT_FLAVORS: [flavorid: string, name: string, vcpus: number, memory_mb: number, root_gb: number][] = [
  ['1', 'm1.tiny', 1, 512, 1],
  ['2', 'm1.small', 1, 2048, 20],
  ['3', 'm1.medium', 2, 4096, 40],
  ['4', 'm1.large', 4, 8192, 80],
  ['5', 'm1.xlarge', 8, 16384, 160],
  ['c1', 'cirros256', 1, 256, 1],
  ['d1', 'ds512M', 1, 512, 5],
];

/**
 * Creates the default public flavors when there are no flavors at all.
 * Idempotent: a cloud with any flavor (even one an operator made) is left
 * alone, and a concurrent bootstrap that got there first is not an error.
 * Returns how many flavors it created.
 */
export async function ensureDefaultFlavors(db: Kysely<ComputeSchema>): Promise<number> {
  const any = await db.selectFrom('flavor').select('flavorid').limit(1).executeTakeFirst();
  if (any) return 0;
  const now = isoNow();
  const rows: FlavorRow[] = DEFAULT_FLAVORS.map(([flavorid, name, vcpus, memory_mb, root_gb]) => ({
    flavorid,
    name,
    vcpus,
    memory_mb,
    root_gb,
    ephemeral_gb: 0,
    swap: 0,
    rxtx_factor: 1.0,
    is_public: 1,
    disabled: 0,
    description: null,
    created_at: now,
    updated_at: null,
  }));
  try {
    await db.insertInto('flavor').values(rows).execute();
  } catch (err) {
    if (isUniqueViolation(err)) return 0;
    throw err;
  }
  return rows.length;
}
