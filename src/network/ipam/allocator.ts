import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../../core/db/database.js';
import { json } from '../common.js';
import type { NetworkSchema, SubnetRow } from '../db/schema.js';
import { badRequest, conflict, NeutronError } from '../errors.js';
import { contains, eui64, formatIp, lastAddress, mergeRanges, parseCidr, parseIp, type Cidr, type Range } from './addresses.js';

/**
 * IP address management. An address is taken by inserting its row in
 * `ip_allocation`, whose primary key (subnet, address) the database enforces:
 * two requests racing for one address cannot both have it, on SQLite or on
 * PostgreSQL with many API processes. A loser's transaction fails with a
 * unique violation and {@link retryOnConflict} runs it again from the start,
 * so a port is created whole or not at all. Deleting a port deletes its rows
 * (the foreign key cascades), which gives its addresses back.
 *
 * Automatic addresses are random within the allocation pools, as Neutron's
 * do, so that concurrent requests rarely collide; when random probes keep
 * hitting taken addresses the allocator reads the subnet's taken set and
 * picks from what is left. A full subnet is told by a count, without reading
 * its addresses: a network of many small subnets tries every full one before
 * the first with room, for every port.
 */
export interface FixedIpRequest {
  subnet_id?: string;
  ip_address?: string;
}

export interface Allocation {
  subnet_id: string;
  ip_address: string;
}

export interface PortForIpam {
  id: string;
  network_id: string;
  mac_address: string;
  device_owner: string;
}

type Db = Kysely<NetworkSchema>;

/** The subnet's pools as ranges (from its `allocation_pools` column). */
export function poolsOf(subnet: SubnetRow): Range[] {
  return json<{ start: string; end: string }[]>(subnet.allocation_pools, []).map((p) => ({ start: parseIp(p.start)?.value ?? 0n, end: parseIp(p.end)?.value ?? -1n }));
}

/** True when the subnet hands out addresses by SLAAC (or DHCPv6-stateless): computed from the MAC, never chosen. */
export function isAutoAddressSubnet(subnet: SubnetRow): boolean {
  return subnet.ip_version === 6 && (subnet.ipv6_address_mode === 'slaac' || subnet.ipv6_address_mode === 'dhcpv6-stateless');
}

/** The router ports that may hold a subnet's gateway and get no SLAAC address (Neutron's ROUTER_INTERFACE_OWNERS_SNAT). */
export const ROUTER_INTERFACE_OWNERS_SNAT: readonly string[] = ['network:router_interface', 'network:router_interface_distributed', 'network:ha_router_replicated_interface', 'network:router_centralized_snat'];

/**
 * Allocates the addresses of a new port on its network's `subnets`. Without
 * `requests`: one address from the first IPv4 subnet with room, one from the
 * first stateful IPv6 subnet with room, and the EUI-64 address on every
 * SLAAC subnet (router interfaces excepted). With `requests`: each names a
 * subnet, an address, or both. Throws Neutron's errors
 * (`IpAddressGenerationFailure`, `IpAddressAlreadyAllocated`, `InvalidIpForSubnet`, ...).
 */
export async function allocate(db: Db, port: PortForIpam, subnets: SubnetRow[], requests: FixedIpRequest[] | undefined): Promise<Allocation[]> {
  const taken: Allocation[] = [];
  const isRouter = ROUTER_INTERFACE_OWNERS_SNAT.includes(port.device_owner);
  if (requests === undefined) {
    for (const version of [4, 6] as const) {
      const candidates = subnets.filter((s) => s.ip_version === version && !isAutoAddressSubnet(s));
      // The last candidate needs no count: reading it finds out as cheaply.
      const full = await fullSubnets(db, port.network_id, candidates.slice(0, -1));
      for (const subnet of candidates) {
        if (full.has(subnet.id)) continue;
        const ip = await takeAny(db, port, subnet);
        if (ip !== null) {
          taken.push({ subnet_id: subnet.id, ip_address: ip });
          break;
        }
      }
    }
    if (!isRouter) {
      for (const subnet of subnets.filter(isAutoAddressSubnet)) taken.push(await takeSpecific(db, port, subnet, formatIp(6, eui64(cidrOf(subnet), port.mac_address))));
    }
    if (taken.length === 0 && subnets.length > 0) throw generationFailure(port.network_id);
    return taken;
  }
  for (const request of requests) {
    if (request.subnet_id !== undefined && request.ip_address === undefined) {
      const subnet = subnetOf(subnets, request.subnet_id, port.network_id);
      if (isAutoAddressSubnet(subnet) && !isRouter) {
        taken.push(await takeSpecific(db, port, subnet, formatIp(6, eui64(cidrOf(subnet), port.mac_address))));
        continue;
      }
      const ip = await takeAny(db, port, subnet);
      if (ip === null) throw generationFailure(port.network_id);
      taken.push({ subnet_id: subnet.id, ip_address: ip });
    } else if (request.ip_address !== undefined) {
      const ip = parseIp(request.ip_address);
      if (!ip) throw badRequest(`Invalid input for fixed_ips. Reason: '${request.ip_address}' is not a valid IP address.`);
      const text = formatIp(ip.version, ip.value);
      let subnet: SubnetRow | undefined;
      if (request.subnet_id !== undefined) {
        subnet = subnetOf(subnets, request.subnet_id, port.network_id);
        if (!contains(cidrOf(subnet), ip)) throw new NeutronError(400, 'InvalidIpForSubnet', `IP address ${text} is not a valid IP for the specified subnet.`);
      } else {
        subnet = subnets.find((s) => contains(cidrOf(s), ip));
        if (!subnet) throw new NeutronError(400, 'InvalidIpForNetwork', `IP address ${text} is not a valid IP for any of the subnets on the specified network.`);
      }
      if (isAutoAddressSubnet(subnet) && !isRouter) {
        throw badRequest(`IPv6 address ${text} cannot be directly assigned to a port on subnet ${subnet.id} as the subnet is configured for automatic addresses`);
      }
      if (taken.some((t) => t.subnet_id === subnet.id && t.ip_address === text)) throw conflict('IpAddressAlreadyAllocated', `IP address ${text} already allocated in subnet ${subnet.id}`);
      taken.push(await takeSpecific(db, port, subnet, text));
    } else {
      throw badRequest('Invalid input for fixed_ips. Reason: each entry needs a subnet_id or an ip_address.');
    }
  }
  // As Neutron: SLAAC subnets give their EUI-64 address even when the request names other subnets.
  if (!isRouter) {
    for (const subnet of subnets.filter(isAutoAddressSubnet)) {
      if (taken.some((t) => t.subnet_id === subnet.id)) continue;
      const held = await db.selectFrom('ip_allocation').select('ip_address').where('port_id', '=', port.id).where('subnet_id', '=', subnet.id).executeTakeFirst();
      if (held) continue;
      taken.push(await takeSpecific(db, port, subnet, formatIp(6, eui64(cidrOf(subnet), port.mac_address))));
    }
  }
  return taken;
}

/** Gives back every address of a port (deleting the port does this too). */
export async function release(db: Db, portId: string, keep: Allocation[] = []): Promise<void> {
  const rows = await db.selectFrom('ip_allocation').select(['subnet_id', 'ip_address']).where('port_id', '=', portId).execute();
  for (const row of rows) {
    if (keep.some((k) => k.subnet_id === row.subnet_id && k.ip_address === row.ip_address)) continue;
    await db.deleteFrom('ip_allocation').where('subnet_id', '=', row.subnet_id).where('ip_address', '=', row.ip_address).execute();
  }
}

/**
 * Runs a transaction again (up to `attempts` times) when it failed on a
 * unique violation: another request took the same address or MAC first.
 */
export async function retryOnConflict<T>(run: () => Promise<T>, attempts = 20): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (!isUniqueViolation(err) || attempt >= attempts) throw err;
    }
  }
}

export function cidrOf(subnet: SubnetRow): Cidr {
  const cidr = parseCidr(subnet.cidr);
  if (!cidr) throw new Error(`subnet ${subnet.id} has an invalid CIDR ${subnet.cidr}`);
  return cidr;
}

function subnetOf(subnets: SubnetRow[], id: string, networkId: string): SubnetRow {
  const subnet = subnets.find((s) => s.id === id);
  if (!subnet) throw badRequest(`Invalid input for operation: Failed to create port on network ${networkId}, because fixed_ips included invalid subnet ${id}.`, 'InvalidInput');
  return subnet;
}

function generationFailure(networkId: string): NeutronError {
  return conflict('IpAddressGenerationFailure', `No more IP addresses available on network ${networkId}.`);
}

async function isTaken(db: Db, subnetId: string, ip: string): Promise<boolean> {
  const row = await db.selectFrom('ip_allocation').select('port_id').where('subnet_id', '=', subnetId).where('ip_address', '=', ip).executeTakeFirst();
  return row !== undefined;
}

async function insert(db: Db, port: PortForIpam, subnetId: string, ip: string): Promise<void> {
  await db.insertInto('ip_allocation').values({ subnet_id: subnetId, ip_address: ip, network_id: port.network_id, port_id: port.id }).execute();
}

async function takeSpecific(db: Db, port: PortForIpam, subnet: SubnetRow, ip: string): Promise<Allocation> {
  if (subnet.gateway_ip === ip && !ROUTER_INTERFACE_OWNERS_SNAT.includes(port.device_owner) && port.device_owner !== 'network:router_gateway') {
    throw conflict('IpAddressAlreadyAllocated', `IP address ${ip} already allocated in subnet ${subnet.id}`);
  }
  if (await isTaken(db, subnet.id, ip)) throw conflict('IpAddressAlreadyAllocated', `IP address ${ip} already allocated in subnet ${subnet.id}`);
  await insert(db, port, subnet.id, ip);
  return { subnet_id: subnet.id, ip_address: ip };
}

const PROBES = 8;

/** Pools up to this size are read whole; larger ones are probed at random first. */
const SMALL_POOL = 1024n;

/** The subnet's pools without empty ones, and how many addresses they hold. */
function usablePools(subnet: SubnetRow): { pools: Range[]; total: bigint } {
  const pools = poolsOf(subnet).filter((p) => p.end >= p.start);
  return { pools, total: pools.reduce((n, p) => n + (p.end - p.start + 1n), 0n) };
}

/** A random free address of the subnet's pools, taken; null when the pools are full. */
async function takeAny(db: Db, port: PortForIpam, subnet: SubnetRow): Promise<string | null> {
  const { pools, total } = usablePools(subnet);
  if (total === 0n) return null;
  const version = subnet.ip_version as 4 | 6;
  // Large pools: random probes almost always find a free address at once.
  if (total > SMALL_POOL) {
    for (let i = 0; i < PROBES; i++) {
      const ip = formatIp(version, nth(pools, randomBig(total)));
      if (!(await isTaken(db, subnet.id, ip))) {
        await insert(db, port, subnet.id, ip);
        return ip;
      }
    }
  }
  // Small or crowded pools: read what is taken, choose among the rest.
  const used = new Set((await db.selectFrom('ip_allocation').select('ip_address').where('subnet_id', '=', subnet.id).execute()).map((r) => r.ip_address));
  const free: bigint[] = [];
  for (const pool of pools) {
    for (let v = pool.start; v <= pool.end && free.length < 4096; v++) if (!used.has(formatIp(version, v))) free.push(v);
  }
  const choice = free[free.length > 1 ? randomInt(free.length) : 0];
  if (choice === undefined) return null;
  const ip = formatIp(version, choice);
  await insert(db, port, subnet.id, ip);
  return ip;
}

/** More addresses of a CIDR outside its pools than this, and {@link fullSubnets} leaves the subnet to {@link takeAny}. */
const MAX_OUTSIDE_POOLS = 32;

/** The addresses of the CIDR outside the pools (network, gateway, broadcast, ...); null when there are more than {@link MAX_OUTSIDE_POOLS}. */
function outsidePools(cidr: Cidr, pools: Range[]): Set<string> | null {
  const last = lastAddress(cidr);
  const outside = new Set<string>();
  let next = cidr.network;
  // The addresses before each pool, then those after the last (`end` closes the CIDR).
  const end = { start: last + 1n, end: last + 1n };
  for (const pool of [...mergeRanges(pools), end]) {
    for (; next < pool.start && next <= last; next++) {
      if (outside.size === MAX_OUTSIDE_POOLS) return null;
      outside.add(formatIp(cidr.version, next));
    }
    if (pool.end >= next) next = pool.end + 1n;
  }
  return outside;
}

/**
 * The ids of those of `subnets` (small pools, on network `networkId`) whose
 * every pool address is taken, told by counting rather than by reading and
 * comparing their addresses, in two queries for all of them: on a network
 * of many small subnets every port creation passes the full ones. A
 * subnet's rows lie in its CIDR or its pools ({@link allocate} makes no
 * other), so its rows less those at its addresses outside the pools are its
 * taken pool addresses. Read in the caller's transaction; the primary key
 * still decides who gets an address.
 */
async function fullSubnets(db: Db, networkId: string, subnets: SubnetRow[]): Promise<Set<string>> {
  const checked = new Map<string, { total: bigint; outside: Set<string> }>();
  for (const subnet of subnets) {
    const { pools, total } = usablePools(subnet);
    const outside = total <= SMALL_POOL ? outsidePools(cidrOf(subnet), pools) : null;
    if (outside) checked.set(subnet.id, { total, outside });
  }
  const full = new Set<string>();
  if (checked.size === 0) return full;
  const counts = await db
    .selectFrom('ip_allocation')
    .select(['subnet_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('subnet_id', 'in', [...checked.keys()])
    .groupBy('subnet_id')
    .execute();
  // Fewer rows than pool addresses: room for sure. The others may hold addresses outside their pools.
  const crowded = counts.flatMap((c) => {
    const check = checked.get(c.subnet_id);
    return check && BigInt(c.n) >= check.total ? [{ id: c.subnet_id, rows: BigInt(c.n), ...check }] : [];
  });
  if (crowded.length === 0) return full;
  const addresses = [...new Set(crowded.flatMap((c) => [...c.outside]))];
  const outsideRows =
    addresses.length === 0
      ? []
      : await db
          .selectFrom('ip_allocation')
          .select(['subnet_id', 'ip_address'])
          .where('network_id', '=', networkId)
          .where('ip_address', 'in', addresses)
          .execute();
  for (const c of crowded) {
    const outside = outsideRows.filter((r) => r.subnet_id === c.id && c.outside.has(r.ip_address)).length;
    if (c.rows - BigInt(outside) >= c.total) full.add(c.id);
  }
  return full;
}

function randomBig(below: bigint): bigint {
  if (below <= BigInt(Number.MAX_SAFE_INTEGER)) return BigInt(randomInt(Number(below)));
  let r = 0n;
  for (let i = 0; i < 4; i++) r = (r << 32n) | BigInt(randomInt(2 ** 32));
  return r % below;
}

function nth(pools: Range[], index: bigint): bigint {
  let i = index;
  for (const pool of pools) {
    const n = pool.end - pool.start + 1n;
    if (i < n) return pool.start + i;
    i -= n;
  }
  return pools[0]?.start ?? 0n;
}
