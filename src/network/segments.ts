import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { NetworkConfig } from '../core/config.js';
import type { NetworkSchema } from './db/schema.js';
import { NeutronError } from './errors.js';
import { invalidOperation } from './ipam/subnet-rules.js';

/**
 * Provider segments (ML2's type drivers, for `flat`, `vlan` and `vxlan`):
 * which physical network and VLAN or VNI a network uses. A segment is taken
 * by inserting its `segment_allocation` row, whose primary key (type,
 * physical network, id) makes two networks on one segment impossible, also
 * across API processes: the loser of a race fails with a unique violation
 * and its transaction is run again (`retryOnConflict`), where it sees the
 * winner's row.
 */

export const MIN_VLAN = 1;
export const MAX_VLAN = 4094;
export const MAX_VNI = 2 ** 24 - 1;
/** IPv4 header and VXLAN encapsulation: what a VXLAN network's MTU loses to the physical one. */
export const VXLAN_OVERHEAD = 50;

export interface Segment {
  network_type: string;
  physical_network: string | null;
  segmentation_id: number | null;
}

/** The provider attributes of a request (undefined: not given). */
export interface ProviderRequest {
  network_type?: string | null;
  physical_network?: string | null;
  segmentation_id?: number | null;
}

type Db = Kysely<NetworkSchema>;

interface Ranges {
  /** physical network -> VLAN ranges (empty: admin-chosen VLANs only). */
  vlan: Map<string, [number, number][]>;
  vni: [number, number][];
}

function ranges(config: NetworkConfig): Ranges {
  const vlan = new Map<string, [number, number][]>();
  for (const entry of config.network_vlan_ranges) {
    const [physnet = '', first, last] = entry.split(':');
    if (!physnet) continue;
    const list = vlan.get(physnet) ?? [];
    if (first !== undefined && last !== undefined) list.push([Number(first), Number(last)]);
    vlan.set(physnet, list);
  }
  const vni: [number, number][] = [];
  for (const part of config.vni_ranges.split(',')) {
    const [first, last] = part.trim().split(':');
    if (first && last) vni.push([Number(first), Number(last)]);
  }
  return { vlan, vni };
}

/** True when the request names any provider attribute. */
export function hasProviderAttributes(req: ProviderRequest): boolean {
  return (req.network_type ?? null) !== null || (req.physical_network ?? null) !== null || (req.segmentation_id ?? null) !== null;
}

/**
 * Checks a provider segment as ML2's type drivers do; returns it (with
 * `segmentation_id` null when one is to be allocated). Throws Neutron's 400
 * `InvalidInput`.
 */
export function validateProviderSegment(config: NetworkConfig, req: ProviderRequest): Segment {
  const type = req.network_type ?? null;
  const physnet = req.physical_network ?? null;
  const id = req.segmentation_id ?? null;
  if (type === null) throw invalidOperation('network_type required');
  const { vlan } = ranges(config);
  switch (type) {
    case 'flat': {
      if (!physnet) throw invalidOperation('physical_network required for flat provider network');
      const allowed = config.flat_networks;
      if (allowed.length === 0) throw invalidOperation('Flat provider networks are disabled');
      if (!allowed.includes('*') && !allowed.includes(physnet)) throw invalidOperation(`physical_network '${physnet}' unknown for flat provider network`);
      if (id) throw invalidOperation('segmentation_id prohibited for flat provider network');
      return { network_type: 'flat', physical_network: physnet, segmentation_id: null };
    }
    case 'vlan': {
      if (physnet) {
        if (!vlan.has(physnet)) throw invalidOperation(`physical_network '${physnet}' unknown for VLAN provider network`);
        if (id !== null && (id < MIN_VLAN || id > MAX_VLAN)) throw invalidOperation(`segmentation_id out of range (${MIN_VLAN} through ${MAX_VLAN})`);
      } else if (id !== null) {
        throw invalidOperation('segmentation_id requires physical_network for VLAN provider network');
      }
      return { network_type: 'vlan', physical_network: physnet, segmentation_id: id };
    }
    case 'vxlan': {
      if (physnet) throw invalidOperation('provider:physical_network specified for vxlan network');
      if (id !== null && (id < 1 || id > MAX_VNI)) throw invalidOperation(`segmentation_id out of range (1 through ${MAX_VNI})`);
      return { network_type: 'vxlan', physical_network: null, segmentation_id: id };
    }
    default:
      throw invalidOperation(`network_type value '${type}' not supported`);
  }
}

/** The MTU a segment allows: the physical networks' MTU, less the VXLAN overhead. */
export function segmentMtu(config: NetworkConfig, networkType: string): number {
  return networkType === 'vxlan' ? config.global_physnet_mtu - VXLAN_OVERHEAD : config.global_physnet_mtu;
}

function key(segment: Segment): { network_type: string; physical_network: string; segmentation_id: number } {
  return { network_type: segment.network_type, physical_network: segment.physical_network ?? '', segmentation_id: segment.segmentation_id ?? 0 };
}

function inUse(segment: Segment): NeutronError {
  switch (segment.network_type) {
    case 'flat':
      return new NeutronError(409, 'FlatNetworkInUse', `Unable to create the flat network. Physical network ${segment.physical_network ?? ''} is in use.`);
    case 'vlan':
      return new NeutronError(409, 'VlanIdInUse', `Unable to create the network. The VLAN ${segment.segmentation_id ?? ''} on physical network ${segment.physical_network ?? ''} is in use.`);
    default:
      return new NeutronError(409, 'TunnelIdInUse', `Unable to create the network. The tunnel ID ${segment.segmentation_id ?? ''} is in use.`);
  }
}

function noNetworkAvailable(): NeutronError {
  return new NeutronError(503, 'NoNetworkAvailable', 'Unable to create the network. No tenant network is available for allocation.');
}

/**
 * Takes a fully specified segment for `networkId` (the network row must
 * exist in this transaction): 409 `FlatNetworkInUse`, `VlanIdInUse` or
 * `TunnelIdInUse` when another network has it.
 */
async function reserve(db: Db, networkId: string, segment: Segment): Promise<Segment> {
  const row = key(segment);
  const taken = await db
    .selectFrom('segment_allocation')
    .select('network_id')
    .where('network_type', '=', row.network_type)
    .where('physical_network', '=', row.physical_network)
    .where('segmentation_id', '=', row.segmentation_id)
    .executeTakeFirst();
  if (taken) throw inUse(segment);
  // A concurrent request may insert it first: the unique violation makes the
  // caller's retryOnConflict run the transaction again, which then sees it.
  await db.insertInto('segment_allocation').values({ ...row, network_id: networkId }).execute();
  return segment;
}

/** A free id in `ranges` that `taken` does not hold, or null. Random, so that concurrent requests rarely pick the same. */
function pickFree(spans: [number, number][], taken: Set<number>): number | null {
  const total = spans.reduce((n, [a, b]) => n + Math.max(0, b - a + 1), 0);
  if (total === 0) return null;
  const at = (i: number): number => {
    let rest = i;
    for (const [a, b] of spans) {
      const n = Math.max(0, b - a + 1);
      if (rest < n) return a + rest;
      rest -= n;
    }
    return -1;
  };
  for (let probe = 0; probe < 32 && taken.size < total; probe++) {
    const id = at(randomInt(total));
    if (!taken.has(id)) return id;
  }
  for (const [a, b] of spans) for (let id = a; id <= b; id++) if (!taken.has(id)) return id;
  return null;
}

async function takenIds(db: Db, networkType: string, physnet: string): Promise<Set<number>> {
  const rows = await db.selectFrom('segment_allocation').select('segmentation_id').where('network_type', '=', networkType).where('physical_network', '=', physnet).execute();
  return new Set(rows.map((r) => Number(r.segmentation_id)));
}

/**
 * Gives `networkId` its segment, in the caller's transaction: the one
 * requested (`segment`, validated), completed from the configured ranges
 * when its id is missing; without a request, a project network of
 * `tenant_network_type` with a free VNI (or VLAN). 503 `NoNetworkAvailable`
 * when the ranges are exhausted.
 */
export async function allocateSegment(db: Db, config: NetworkConfig, networkId: string, segment: Segment | null): Promise<Segment> {
  const { vlan, vni } = ranges(config);
  const wanted: Segment = segment ?? { network_type: config.tenant_network_type, physical_network: null, segmentation_id: null };
  switch (wanted.network_type) {
    case 'flat':
      if (!wanted.physical_network) throw noNetworkAvailable();
      return reserve(db, networkId, wanted);
    case 'vxlan': {
      if (wanted.segmentation_id !== null) return reserve(db, networkId, wanted);
      const id = pickFree(vni, await takenIds(db, 'vxlan', ''));
      if (id === null) throw noNetworkAvailable();
      return reserve(db, networkId, { ...wanted, segmentation_id: id });
    }
    case 'vlan': {
      if (wanted.physical_network && wanted.segmentation_id !== null) return reserve(db, networkId, wanted);
      const physnets = wanted.physical_network ? [wanted.physical_network] : [...vlan.keys()];
      for (const physnet of physnets) {
        const id = pickFree(vlan.get(physnet) ?? [], await takenIds(db, 'vlan', physnet));
        if (id !== null) return reserve(db, networkId, { network_type: 'vlan', physical_network: physnet, segmentation_id: id });
      }
      throw noNetworkAvailable();
    }
    default:
      throw noNetworkAvailable();
  }
}

/** Frees a network's segments (in the caller's transaction). */
export async function releaseSegments(db: Db, networkId: string): Promise<void> {
  await db.deleteFrom('segment_allocation').where('network_id', '=', networkId).execute();
}

/**
 * Moves a network to another segmentation id of its type and physical
 * network (`PUT` of `provider:segmentation_id`): takes the new one, frees
 * the old. Flat networks have none (400).
 */
export async function changeSegmentationId(db: Db, networkId: string, current: Segment, segmentationId: number): Promise<Segment> {
  if (current.network_type === 'flat') throw invalidOperation('segmentation_id prohibited for flat provider network');
  if (current.network_type === 'vlan' && (segmentationId < MIN_VLAN || segmentationId > MAX_VLAN)) throw invalidOperation(`segmentation_id out of range (${MIN_VLAN} through ${MAX_VLAN})`);
  if (current.network_type === 'vxlan' && (segmentationId < 1 || segmentationId > MAX_VNI)) throw invalidOperation(`segmentation_id out of range (1 through ${MAX_VNI})`);
  if (current.segmentation_id === segmentationId) return current;
  const next = { ...current, segmentation_id: segmentationId };
  await releaseSegments(db, networkId);
  return reserve(db, networkId, next);
}
