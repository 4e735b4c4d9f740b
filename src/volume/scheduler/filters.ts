import type { PoolStats } from '../rpc.js';

/**
 * The scheduler's filters (Cinder's AvailabilityZoneFilter, CapacityFilter,
 * CapabilitiesFilter, plus the source backend and retry exclusions): pure
 * functions of one pool's state and the request.
 */

/** One pool as the scheduler sees it: its backend's report, with the capacity claimed since. */
export interface PoolState {
  /** `host@backend#pool`. */
  name: string;
  /** `host@backend`. */
  backend: string;
  availability_zone: string;
  /** Capacity after in-memory claims. */
  stats: PoolStats;
  /** What extra specs match: the backend's fields (`volume_backend_name`, `vendor_name`, `storage_protocol`, ...) and the pool's stats. */
  capabilities: Record<string, unknown>;
  /** When the backend last reported. */
  reported_at: string;
}

/** What the filters check a pool against. */
export interface FilterRequest {
  /** GiB the volume needs on the pool. */
  size: number;
  /** The zone the volume must be in; null: any. */
  availability_zone: string | null;
  extra_specs: Record<string, string>;
  /** The only backend allowed (`host@backend`), for a volume made from a snapshot or a volume. */
  source_backend: string | null;
  /** Backends excluded (`host@backend`): already tried, or to move away from. */
  excluded: string[];
}

export interface Filter {
  name: string;
  passes(pool: PoolState, req: FilterRequest): boolean;
}

/** The zone must be the volume's, and one of the type's `RESKEY:availability_zones` when it names some. */
export const availabilityZoneFilter: Filter = {
  name: 'AvailabilityZoneFilter',
  passes(pool, req) {
    if (req.availability_zone !== null && pool.availability_zone !== req.availability_zone) return false;
    const zones = req.extra_specs['RESKEY:availability_zones'];
    if (zones !== undefined && zones.trim() !== '') {
      const allowed = zones.split(',').map((z) => z.trim()).filter((z) => z !== '');
      if (!allowed.includes(pool.availability_zone)) return false;
    }
    return true;
  },
};

/**
 * Enough room (Cinder's CapacityFilter): free space minus the reserved
 * percentage of the total; on a thin pool (unless the type asks for
 * `provisioning:type=thick`) the provisioned ratio must stay within
 * `max_over_subscription_ratio` and the over-subscribed free space must hold
 * the volume.
 */
export const capacityFilter: Filter = {
  name: 'CapacityFilter',
  passes(pool, req) {
    const s = pool.stats;
    const total = Number(s.total_capacity_gb);
    const freeSpace = Number(s.free_capacity_gb);
    if (!Number.isFinite(total) || !Number.isFinite(freeSpace) || total <= 0) return false;
    const reserved = Number(s.reserved_percentage || 0) / 100;
    const free = freeSpace - Math.floor(total * reserved);
    const thin = req.extra_specs['provisioning:type'] !== 'thick';
    if (thin && s.thin_provisioning_support) {
      const ratio = Number(s.max_over_subscription_ratio);
      if (!(ratio >= 1)) return false;
      const provisionedRatio = (Number(s.provisioned_capacity_gb || 0) + req.size) / total;
      if (provisionedRatio > ratio) return false;
      return free * ratio >= req.size;
    }
    return free >= req.size;
  },
};

/**
 * True when every extra spec of a type matches a pool's capabilities (Cinder's
 * CapabilitiesFilter): unscoped keys and `capabilities:<key>` (a `:` path
 * into nested capabilities) are checked, keys with another scope
 * (`RESKEY:`, `provisioning:`, `qos:`, ...) are not.
 */
export function capabilitiesMatch(capabilities: Record<string, unknown>, specs: Record<string, string>): boolean {
  for (const [key, requirement] of Object.entries(specs)) {
    const scope = key.split(':');
    if (scope.length > 1 && scope[0] !== 'capabilities') continue;
    if (scope[0] === 'capabilities') scope.shift();
    let cap: unknown = capabilities;
    for (const part of scope) {
      if (cap === null || typeof cap !== 'object' || Array.isArray(cap)) return false;
      cap = (cap as Record<string, unknown>)[part];
      if (cap === undefined || cap === null) return false;
    }
    if (!matchExtraSpec(cap, requirement)) return false;
  }
  return true;
}

/** The type's extra specs against the pool's capabilities ({@link capabilitiesMatch}). */
export const capabilitiesFilter: Filter = {
  name: 'CapabilitiesFilter',
  passes: (pool, req) => capabilitiesMatch(pool.capabilities, req.extra_specs),
};

/** A volume made from a snapshot or another volume stays on its source's backend. */
export const sourceBackendFilter: Filter = {
  name: 'SourceBackendFilter',
  passes(pool, req) {
    return req.source_backend === null || pool.backend === req.source_backend.split('#')[0];
  },
};

/** Backends already tried (a reschedule) or to move away from are out. */
export const excludedBackendsFilter: Filter = {
  name: 'RetryFilter',
  passes(pool, req) {
    return !req.excluded.some((b) => b.split('#')[0] === pool.backend);
  },
};

export const FILTERS: Filter[] = [excludedBackendsFilter, availabilityZoneFilter, sourceBackendFilter, capabilitiesFilter, capacityFilter];

/** The pools that pass every filter, and for the log the first filter each other pool failed. */
export function filterPools(pools: PoolState[], req: FilterRequest, filters: Filter[] = FILTERS): { passed: PoolState[]; rejected: Record<string, string> } {
  const passed: PoolState[] = [];
  const rejected: Record<string, string> = {};
  for (const pool of pools) {
    const failed = filters.find((f) => !f.passes(pool, req));
    if (failed) rejected[pool.name] = failed.name;
    else passed.push(pool);
  }
  return { passed, rejected };
}

/** oslo's `bool_from_string` (not strict). */
function boolFromString(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  return ['1', 't', 'true', 'on', 'y', 'yes'].includes(String(value).trim().toLowerCase());
}

/** A capability as the extra-spec operators compare it: Python's `str()` of booleans. */
function text(value: unknown): string {
  if (value === true) return 'True';
  if (value === false) return 'False';
  return String(value);
}

const OPERATORS: Record<string, (value: unknown, operand: string) => boolean> = {
  '=': (v, o) => Number(text(v)) >= Number(o),
  '<in>': (v, o) => (Array.isArray(v) ? v.map(text).includes(o) : text(v).includes(o)),
  '<is>': (v, o) => boolFromString(v) === boolFromString(o),
  '==': (v, o) => Number(text(v)) === Number(o),
  '!=': (v, o) => Number(text(v)) !== Number(o),
  '>=': (v, o) => Number(text(v)) >= Number(o),
  '<=': (v, o) => Number(text(v)) <= Number(o),
  's==': (v, o) => text(v) === o,
  's!=': (v, o) => text(v) !== o,
  's<': (v, o) => text(v) < o,
  's<=': (v, o) => text(v) <= o,
  's>': (v, o) => text(v) > o,
  's>=': (v, o) => text(v) >= o,
};

/**
 * Cinder's `extra_specs_ops.match`: `requirement` is a plain value (equal),
 * `<or> a <or> b`, or an operator and an operand (`>= 10`, `<is> True`,
 * `<in> ssd`, `s== x`). A numeric comparison with a non-number fails.
 */
export function matchExtraSpec(value: unknown, requirement: string): boolean {
  const words = requirement.split(/\s+/).filter((w) => w !== '');
  const op = words.shift();
  if (op === undefined) return text(value) === requirement;
  if (op === '<or>') {
    while (words.length > 0) {
      if (words.shift() === text(value)) return true;
      if (words.length === 0) break;
      words.shift();
    }
    return false;
  }
  const method = OPERATORS[op];
  if (!method) return text(value) === requirement;
  const operand = words[0];
  if (operand === undefined) return false;
  if (['=', '==', '!=', '>=', '<='].includes(op) && (Number.isNaN(Number(text(value))) || Number.isNaN(Number(operand)))) return false;
  return method(value, operand);
}
