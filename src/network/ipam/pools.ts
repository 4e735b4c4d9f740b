import type { Kysely } from 'kysely';
import type { DialectName } from '../../core/db/database.js';
import { json } from '../common.js';
import type { NetworkSchema, SubnetpoolRow } from '../db/schema.js';
import { NeutronError } from '../errors.js';
import { parseCidr, type Cidr, type IpVersion } from './addresses.js';
import { firstFreePrefix, isFreeInPool } from './prefixes.js';

/**
 * Subnet allocation from subnet pools (`subnet_allocation`). The pool's row
 * is locked for the rest of the caller's transaction, so that two subnets
 * asked of one pool at once get different prefixes (PostgreSQL, MySQL; SQLite
 * runs one write transaction at a time).
 */

type Db = Kysely<NetworkSchema>;

/**
 * Locks the pool's row until the caller's transaction ends (`SELECT ... FOR
 * UPDATE`; SQLite runs one write transaction at a time, so a read does), so
 * that subnets cut from it, and its deletion, happen one after another.
 */
export async function lockSubnetpool(db: Db, dialect: DialectName, id: string): Promise<void> {
  const query = db.selectFrom('subnetpool').select('id').where('id', '=', id);
  await (dialect === 'sqlite' ? query.executeTakeFirst() : query.forUpdate().executeTakeFirst());
}

/** A pool's prefixes as CIDRs. */
export function poolPrefixes(pool: SubnetpoolRow): Cidr[] {
  return json<string[]>(pool.prefixes, []).flatMap((p) => {
    const cidr = parseCidr(p);
    return cidr ? [cidr] : [];
  });
}

/** Neutron counts a pool's `default_quota` in /32 (IPv4) or /64 (IPv6) units. */
const QUOTA_UNIT: Record<IpVersion, number> = { 4: 32, 6: 64 };

function units(version: IpVersion, prefixlen: number): bigint {
  const unit = QUOTA_UNIT[version];
  return prefixlen >= unit ? 1n : 1n << BigInt(unit - prefixlen);
}

function allocationError(reason: string): NeutronError {
  return new NeutronError(409, 'SubnetAllocationError', `Failed to allocate subnet: ${reason}.`);
}

/**
 * The CIDR a new subnet of `project` gets from `pool`: the requested one
 * when it is free in the pool, else the first free prefix of `prefixlen`
 * (the pool's `default_prefixlen` when absent). Refuses prefix lengths out
 * of the pool's bounds (400), a used or foreign CIDR or an exhausted pool
 * (409 `SubnetAllocationError`), and the pool's per-project quota (409
 * `SubnetPoolQuotaExceeded`).
 */
export async function allocateFromPool(db: Db, dialect: DialectName, pool: SubnetpoolRow, project: string, request: { cidr: Cidr | null; prefixlen?: number }): Promise<Cidr> {
  await lockSubnetpool(db, dialect, pool.id);
  const version = pool.ip_version as IpVersion;
  const prefixlen = request.cidr?.prefix ?? request.prefixlen ?? Number(pool.default_prefixlen);
  if (prefixlen > Number(pool.max_prefixlen)) {
    throw new NeutronError(400, 'MaxPrefixSubnetAllocationError', `Unable to allocate subnet with prefix length ${prefixlen}, maximum allowed prefix is ${pool.max_prefixlen}.`);
  }
  if (prefixlen < Number(pool.min_prefixlen)) {
    throw new NeutronError(400, 'MinPrefixSubnetAllocationError', `Unable to allocate subnet with prefix length ${prefixlen}, minimum allowed prefix is ${pool.min_prefixlen}.`);
  }
  const subnets = await db.selectFrom('subnet').select(['cidr', 'project_id']).where('subnetpool_id', '=', pool.id).execute();
  if (pool.default_quota !== null && pool.default_quota !== undefined) {
    let used = 0n;
    for (const s of subnets) {
      const c = parseCidr(s.cidr);
      if (c && s.project_id === project) used += units(version, c.prefix);
    }
    if (used + units(version, prefixlen) > BigInt(pool.default_quota)) throw new NeutronError(409, 'SubnetPoolQuotaExceeded', 'Per-tenant subnet pool prefix quota exceeded.');
  }
  const taken = subnets.flatMap((s) => {
    const c = parseCidr(s.cidr);
    return c ? [c] : [];
  });
  const prefixes = poolPrefixes(pool);
  if (request.cidr) {
    if (!isFreeInPool(request.cidr, prefixes, taken)) throw allocationError('Cannot allocate requested subnet from the available set of prefixes');
    return request.cidr;
  }
  const chosen = firstFreePrefix(version, prefixes, taken, prefixlen);
  if (!chosen) throw allocationError(`Insufficient prefix space to allocate subnet size /${prefixlen}`);
  return chosen;
}

