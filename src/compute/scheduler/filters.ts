import type { RequestSpec } from '../rpc.js';
import type { HostState } from './host-state.js';

/**
 * The scheduler's filters (Nova's enabled_filters defaults and a few more),
 * each a pure predicate on one host for one server. A filter that refuses
 * names itself, so that "No valid host" can say which one emptied the list.
 */
export interface FilterContext {
  spec: RequestSpec;
  /** Hosts of the members of the server's group (with counts), when it has one. */
  groupHosts: Map<string, number>;
}

export interface HostFilter {
  name: string;
  passes(host: HostState, ctx: FilterContext): boolean;
}

/** Compares an extra spec's value with a host's (Nova's `extra_specs_ops`: `s==`, `<in>`, `<or>`, `>=`, ...). */
export function matchesSpec(actual: unknown, wanted: string): boolean {
  const value = actual === undefined || actual === null ? '' : String(actual);
  const words = wanted.trim().split(/\s+/);
  const [op, ...rest] = words;
  const arg = rest.join(' ');
  const num = (s: string): number => Number(s);
  switch (op) {
    case '=':
      return num(value) >= num(arg);
    case '==':
      return num(value) === num(arg);
    case '!=':
      return num(value) !== num(arg);
    case '>=':
      return num(value) >= num(arg);
    case '<=':
      return num(value) <= num(arg);
    case 's==':
      return value === arg;
    case 's!=':
      return value !== arg;
    case 's>=':
      return value >= arg;
    case 's<=':
      return value <= arg;
    case 's>':
      return value > arg;
    case 's<':
      return value < arg;
    case '<in>':
      return value.includes(arg);
    case '<all-in>':
      return rest.every((w) => value.split(/[\s,]+/).includes(w));
    case '<or>':
      return wanted
        .split('<or>')
        .map((s) => s.trim())
        .filter(Boolean)
        .includes(value);
    default:
      return value === wanted.trim();
  }
}

const compute: HostFilter = { name: 'ComputeFilter', passes: (h) => h.up && h.enabled };

const zone: HostFilter = {
  name: 'AvailabilityZoneFilter',
  passes: (h, { spec }) => spec.availability_zone === null || spec.availability_zone === h.availabilityZone,
};

const ignored: HostFilter = { name: 'IgnoreHosts', passes: (h, { spec }) => !spec.ignore_hosts.includes(h.host) };

const forced: HostFilter = {
  name: 'ForcedHost',
  passes: (h, { spec }) => (spec.force_host === null || spec.force_host === h.host) && (spec.force_node === null || spec.force_node === h.node),
};

const requested: HostFilter = {
  name: 'RequestedDestination',
  passes: (h, { spec }) => (spec.requested_host === null || spec.requested_host === h.host) && (spec.requested_node === null || spec.requested_node === h.node),
};

/** `capabilities:<key>` extra specs against the host's capabilities (Nova's ComputeCapabilitiesFilter). */
const capabilities: HostFilter = {
  name: 'ComputeCapabilitiesFilter',
  passes: (h, { spec }) =>
    Object.entries(spec.flavor.extra_specs)
      .filter(([key]) => key.startsWith('capabilities:'))
      .every(([key, wanted]) => {
        const path = key.slice('capabilities:'.length).split(':');
        let value: unknown = h.capabilities;
        for (const part of path) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
        return value !== undefined && matchesSpec(value, wanted);
      }),
};

/** `aggregate_instance_extra_specs:<key>` against the metadata of the host's aggregates. */
const aggregateSpecs: HostFilter = {
  name: 'AggregateInstanceExtraSpecsFilter',
  passes: (h, { spec }) =>
    Object.entries(spec.flavor.extra_specs)
      .filter(([key]) => key.startsWith('aggregate_instance_extra_specs:'))
      .every(([key, wanted]) => {
        const name = key.slice('aggregate_instance_extra_specs:'.length);
        const values = h.aggregates.map((a) => a.metadata[name]).filter((v): v is string => v !== undefined);
        return values.some((v) => matchesSpec(v, wanted));
      }),
};

/** Image properties (`hw_architecture`, `img_hv_type`) against what the host's driver runs. */
const imageProperties: HostFilter = {
  name: 'ImagePropertiesFilter',
  passes: (h, { spec }) => {
    const props = spec.image.properties;
    const arch = props.hw_architecture ?? props.architecture;
    const hvType = props.img_hv_type ?? props.hypervisor_type;
    const cpu = (h.capabilities.cpu_info ?? {}) as Record<string, unknown>;
    if (typeof arch === 'string' && typeof cpu.arch === 'string' && arch !== cpu.arch) return false;
    if (typeof hvType === 'string' && typeof h.capabilities.hypervisor_type === 'string' && hvType.toLowerCase() !== String(h.capabilities.hypervisor_type).toLowerCase()) return false;
    return true;
  },
};

/** Hard affinity: every member on one host; hard anti-affinity: at most `max_server_per_host` (1) per host. */
const groupAffinity: HostFilter = {
  name: 'ServerGroupAffinityFilter',
  passes: (h, { spec, groupHosts }) => spec.group?.policy !== 'affinity' || groupHosts.size === 0 || groupHosts.has(h.host),
};

const groupAntiAffinity: HostFilter = {
  name: 'ServerGroupAntiAffinityFilter',
  passes: (h, { spec, groupHosts }) => {
    if (spec.group?.policy !== 'anti-affinity') return true;
    const max = spec.group.rules.max_server_per_host ?? 1;
    return (groupHosts.get(h.host) ?? 0) < max;
  },
};

const sameHost: HostFilter = {
  name: 'SameHostFilter',
  passes: (h, { spec }) => spec.same_host.length === 0 || spec.same_host.some((uuid) => h.instances.has(uuid)),
};

const differentHost: HostFilter = {
  name: 'DifferentHostFilter',
  passes: (h, { spec }) => spec.different_host.every((uuid) => !h.instances.has(uuid)),
};

/** Hosts in an aggregate with `filter_tenant_id` take only those projects' servers. */
const tenantIsolation: HostFilter = {
  name: 'AggregateMultiTenancyIsolation',
  passes: (h, { spec }) => {
    const allowed = h.aggregates.flatMap((a) =>
      Object.entries(a.metadata)
        .filter(([k]) => k === 'filter_tenant_id' || k.startsWith('filter_tenant_id'))
        .flatMap(([, v]) => v.split(',').map((s) => s.trim())),
    );
    return allowed.length === 0 || allowed.includes(spec.project_id);
  },
};

/** The filters, in the order they run (cheap ones first). */
export const FILTERS: HostFilter[] = [compute, ignored, forced, requested, zone, capabilities, aggregateSpecs, imageProperties, tenantIsolation, groupAffinity, groupAntiAffinity, sameHost, differentHost];

/**
 * Runs the filters; returns the hosts that pass, and the name of the filter
 * that removed the last candidates when none does.
 */
export function filterHosts(hosts: HostState[], ctx: FilterContext): { hosts: HostState[]; emptiedBy: string | null } {
  let current = hosts;
  for (const filter of FILTERS) {
    const next = current.filter((h) => filter.passes(h, ctx));
    if (next.length === 0 && current.length > 0) return { hosts: [], emptiedBy: filter.name };
    current = next;
  }
  return { hosts: current, emptiedBy: current.length === 0 ? 'PlacementCandidates' : null };
}

/**
 * Orders hosts best first: free RAM, then free vCPUs, then free disk, each
 * normalised over the candidates (Nova's RAM, CPU and disk weighers);
 * `spread` prefers the emptiest, `pack` the fullest. Soft (anti-)affinity
 * groups weigh by members on the host. Ties keep the given order.
 */
export function weighHosts(hosts: HostState[], ctx: FilterContext, mode: 'spread' | 'pack'): HostState[] {
  const sign = mode === 'pack' ? -1 : 1;
  const norm = (values: number[]): number[] => {
    const min = Math.min(...values);
    const max = Math.max(...values);
    return values.map((v) => (max === min ? 0 : (v - min) / (max - min)));
  };
  const ram = norm(hosts.map((h) => h.free.memoryMb));
  const cpu = norm(hosts.map((h) => h.free.vcpus));
  const disk = norm(hosts.map((h) => h.free.diskGb));
  const members = norm(hosts.map((h) => ctx.groupHosts.get(h.host) ?? 0));
  const policy = ctx.spec.group?.policy;
  const groupWeight = policy === 'soft-affinity' ? 1 : policy === 'soft-anti-affinity' ? -1 : 0;
  const scored = hosts.map((h, i) => ({ h, i, w: sign * ((ram[i] ?? 0) + (cpu[i] ?? 0) + (disk[i] ?? 0)) + 10 * groupWeight * (members[i] ?? 0) }));
  scored.sort((a, b) => b.w - a.w || a.i - b.i);
  return scored.map((s) => s.h);
}
