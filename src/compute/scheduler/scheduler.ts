import type { Kysely } from 'kysely';
import type { ComputeConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import { Counter, Histogram } from 'prom-client';
import { registry } from '../../core/metrics.js';
import { parseJson } from '../common.js';
import type { ComputeSchema } from '../db/schema.js';
import { PlacementApiError, type AllocationCandidates, type CandidateQuery } from '../placement-client.js';
import type { Destination, RequestSpec, Selection } from '../rpc.js';
import { filterHosts, weighHosts, type FilterContext } from './filters.js';
import type { HostState } from './host-state.js';

/** What the scheduler asks of placement (PlacementClient does it over HTTP). */
export interface SchedulerPlacement {
  /** Where a request fits now (`GET /allocation_candidates`), with each provider's capacity and usage. */
  allocationCandidates(query: CandidateQuery): Promise<AllocationCandidates>;
  /**
   * Claims for `consumer` atomically; false when the provider no longer has
   * room. `consumerGeneration` null says the consumer is new (no read
   * first); left out, the consumer's current generation is read.
   */
  claim(consumer: string, allocation: Record<string, Record<string, number>>, projectId: string, userId: string, consumerGeneration?: number | null): Promise<boolean>;
}

/** What a provider has and uses, by resource class. */
type ProviderResources = Map<string, { capacity: Record<string, number>; used: Record<string, number> }>;

/** Servers the scheduler placed (`placed`) or found no host for (`no_valid_host`). */
const decisionsTotal = new Counter({ name: 'stratus_compute_scheduler_decisions_total', help: 'Scheduling decisions, one per server, by result', labelNames: ['result'] as const, registers: [registry] });
/** Time of one `select_destinations`: candidates, filters, weighers and claims. */
const selectSeconds = new Histogram({ name: 'stratus_compute_scheduler_select_seconds', help: 'Time to place one request (candidates from placement, filters, weighers, claims)', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });

/** Nova's NoValidHost, with the reason in the message. */
export class NoValidHost extends Error {
  constructor(reason: string) {
    super(`No valid host was found. ${reason}`);
    this.name = 'NoValidHost';
  }
}

/** The placement resources one server of this spec needs. */
export function resourcesOf(spec: RequestSpec): Record<string, number> {
  const f = spec.flavor;
  const disk = (spec.local_root ? f.root_gb : 0) + f.ephemeral_gb + Math.ceil(f.swap / 1024);
  const resources: Record<string, number> = { VCPU: f.vcpus, MEMORY_MB: f.memory_mb };
  if (disk > 0) resources.DISK_GB = disk;
  return resources;
}

/**
 * The compute-scheduler: for each server, filters and weighs the hosts that
 * placement says have room, then claims in placement on the best one,
 * falling back to the next when the claim loses a race. Requests for one
 * server group are decided one at a time (in this process), so that two
 * concurrent boots in an anti-affinity group cannot pick the same host.
 *
 * Concurrent requests see each other's claims (Nova's scheduler consumes
 * from its shared host states the same way): a claim made here that a
 * placement answer may not include yet is taken off that answer's free
 * resources before weighing, so that twenty boots at once spread over
 * twenty hosts instead of all weighing the same emptiest one. Placement
 * alone decides whether a claim fits; this only orders the hosts.
 */
export class Scheduler {
  private readonly groupLocks = new Map<string, Promise<unknown>>();
  /** Claims of this scheduler, with the sequence number at which each finished (Infinity while in flight). */
  private readonly recentClaims = new Set<{ node: string; resources: Record<string, number>; done: number }>();
  /** Sequence numbers at which the candidate reads in flight started. */
  private readonly readsInFlight = new Set<{ started: number }>();
  private sequence = 0;

  constructor(
    private readonly db: Kysely<ComputeSchema>,
    private readonly config: ComputeConfig,
    private readonly placement: SchedulerPlacement,
    private readonly log: Logger,
  ) {}

  /**
   * Places `instanceUuids` (all of one request spec). Returns, per server,
   * the chosen destination then up to two alternates; throws NoValidHost
   * when a server finds no host (the ones placed before keep their claims:
   * the caller frees them).
   */
  async selectDestinations(spec: RequestSpec, instanceUuids: string[]): Promise<Selection[]> {
    const timer = selectSeconds.startTimer();
    try {
      return await this.selectInOrder(spec, instanceUuids);
    } catch (err) {
      if (err instanceof NoValidHost) decisionsTotal.inc({ result: 'no_valid_host' });
      throw err;
    } finally {
      timer();
    }
  }

  /** Requests of one server group one after another, others at once. */
  private async selectInOrder(spec: RequestSpec, instanceUuids: string[]): Promise<Selection[]> {
    const group = spec.group?.uuid;
    if (!group) return this.select(spec, instanceUuids);
    const previous = this.groupLocks.get(group) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.select(spec, instanceUuids));
    this.groupLocks.set(group, run);
    try {
      return await run;
    } finally {
      if (this.groupLocks.get(group) === run) this.groupLocks.delete(group);
    }
  }

  private async select(spec: RequestSpec, instanceUuids: string[]): Promise<Selection[]> {
    const resources = resourcesOf(spec);
    const [providers, hostRows, groupHosts] = await Promise.all([this.candidates(resources), this.hostRows(spec), this.groupHosts(spec)]);
    const hosts = this.hostStates(providers, hostRows);
    const ctx: FilterContext = { spec, groupHosts };
    const selections: Selection[] = [];
    for (const uuid of instanceUuids) {
      const { hosts: passing, emptiedBy } = filterHosts(hosts, ctx);
      if (passing.length === 0) {
        this.log.info({ instance_uuid: uuid, filter: emptiedBy }, 'no valid host');
        throw new NoValidHost('There are not enough hosts available.');
      }
      const weighed = weighHosts(passing, ctx, this.config.weigher === 'pack' ? 'pack' : 'spread');
      let chosen: Destination | null = null;
      for (const host of weighed) {
        const allocation = { [host.nodeUuid]: resources };
        if (await this.claim(uuid, host.nodeUuid, resources, spec)) {
          chosen = { host: host.host, node: host.node, node_uuid: host.nodeUuid, allocation };
          host.free.vcpus -= resources.VCPU ?? 0;
          host.free.memoryMb -= resources.MEMORY_MB ?? 0;
          host.free.diskGb -= resources.DISK_GB ?? 0;
          host.instances.add(uuid);
          groupHosts.set(host.host, (groupHosts.get(host.host) ?? 0) + 1);
          break;
        }
      }
      if (!chosen) throw new NoValidHost('There are not enough hosts available.');
      decisionsTotal.inc({ result: 'placed' });
      const alternates = weighed
        .filter((h) => h.host !== chosen.host && fits(h, resources))
        .slice(0, Math.max(0, this.config.max_attempts - 1))
        .map((h) => ({ host: h.host, node: h.node, node_uuid: h.nodeUuid, allocation: { [h.nodeUuid]: resources } }));
      selections.push([chosen, ...alternates]);
    }
    return selections;
  }

  /**
   * Placement's single-provider candidates for `resources`, as capacity and
   * usage per provider, less this scheduler's claims that the answer may
   * not include (finished after the read started, or still in flight).
   */
  private async candidates(resources: Record<string, number>): Promise<ProviderResources> {
    const read = { started: this.sequence };
    this.readsInFlight.add(read);
    let answer: AllocationCandidates;
    try {
      answer = await this.placement.allocationCandidates({ resources, limit: 1000 });
    } finally {
      this.readsInFlight.delete(read);
    }
    const out: ProviderResources = new Map();
    for (const [uuid, summary] of Object.entries(answer.providers)) {
      if (summary.parentProviderUuid !== null) continue;
      const capacity: Record<string, number> = {};
      const used: Record<string, number> = {};
      for (const [rc, r] of Object.entries(summary.resources)) {
        capacity[rc] = r.capacity;
        used[rc] = r.used;
      }
      out.set(uuid, { capacity, used });
    }
    for (const claim of this.recentClaims) {
      const provider = claim.done > read.started ? out.get(claim.node) : undefined;
      if (!provider) continue;
      for (const [rc, n] of Object.entries(claim.resources)) provider.used[rc] = (provider.used[rc] ?? 0) + n;
    }
    this.forgetOldClaims();
    return out;
  }

  /** Claims `resources` on `node` for a new server, remembering the claim for the reads that may miss it. */
  private async claim(uuid: string, node: string, resources: Record<string, number>, spec: RequestSpec): Promise<boolean> {
    const entry = { node, resources, done: Infinity };
    this.recentClaims.add(entry);
    let ok = false;
    try {
      const allocation = { [node]: resources };
      try {
        ok = await this.placement.claim(uuid, allocation, spec.project_id, spec.user_id, null);
      } catch (err) {
        // The server held allocations already (a move, a retried request): replace them.
        if (!(err instanceof PlacementApiError && err.consumerGenerationConflict)) throw err;
        ok = await this.placement.claim(uuid, allocation, spec.project_id, spec.user_id);
      }
      return ok;
    } finally {
      if (ok) entry.done = ++this.sequence;
      else this.recentClaims.delete(entry);
      this.forgetOldClaims();
    }
  }

  /** Drops the claims every read in flight (and any read to come) already sees. */
  private forgetOldClaims(): void {
    let oldest = this.sequence;
    for (const read of this.readsInFlight) oldest = Math.min(oldest, read.started);
    for (const claim of this.recentClaims) if (claim.done <= oldest) this.recentClaims.delete(claim);
  }

  /** What compute's database knows of the hosts: nodes with their service, aggregates, hosts of same/different-host servers. */
  private async hostRows(spec: RequestSpec) {
    const [nodes, aggregates, hostsWithInstances] = await Promise.all([
      this.db
        .selectFrom('compute_node')
        .innerJoin('service', 'service.id', 'compute_node.service_id')
        .select(['compute_node.uuid', 'compute_node.host', 'compute_node.hypervisor_hostname', 'compute_node.capabilities', 'compute_node.cpu_info', 'compute_node.hypervisor_type', 'service.disabled', 'service.forced_down', 'service.last_seen_up'])
        .execute(),
      this.db
        .selectFrom('aggregate_host')
        .innerJoin('aggregate', 'aggregate.id', 'aggregate_host.aggregate_id')
        .leftJoin('aggregate_metadata', 'aggregate_metadata.aggregate_id', 'aggregate.id')
        .select(['aggregate_host.host', 'aggregate.id', 'aggregate.name', 'aggregate_metadata.key', 'aggregate_metadata.value'])
        .execute(),
      spec.same_host.length + spec.different_host.length > 0 ? this.instanceHosts([...spec.same_host, ...spec.different_host]) : Promise.resolve(new Map<string, string[]>()),
    ]);
    return { nodes, aggregates, hostsWithInstances };
  }

  /** The hosts of placement's candidates, with what compute's database knows of them. */
  private hostStates(providers: ProviderResources, rows: Awaited<ReturnType<Scheduler['hostRows']>>): HostState[] {
    if (providers.size === 0) return [];
    const { nodes, aggregates, hostsWithInstances } = rows;
    const byHost = new Map<string, Map<number, { id: number; name: string; metadata: Record<string, string> }>>();
    for (const row of aggregates) {
      const list = byHost.get(row.host) ?? new Map();
      byHost.set(row.host, list);
      const agg = list.get(row.id) ?? { id: row.id, name: row.name, metadata: {} };
      list.set(row.id, agg);
      if (row.key !== null && row.value !== null) agg.metadata[row.key] = row.value;
    }
    const downAfter = Date.now() - this.config.service_down_time * 1000;
    const states: HostState[] = [];
    for (const node of nodes) {
      const summary = providers.get(node.uuid);
      if (!summary) continue;
      const free = (rc: string): number => (summary.capacity[rc] ?? 0) - (summary.used[rc] ?? 0);
      const aggs = [...(byHost.get(node.host)?.values() ?? [])];
      const zone = aggs.map((a) => a.metadata.availability_zone).find((z): z is string => typeof z === 'string') ?? this.config.default_availability_zone;
      states.push({
        host: node.host,
        node: node.hypervisor_hostname,
        nodeUuid: node.uuid,
        up: !node.forced_down && node.last_seen_up !== null && Date.parse(node.last_seen_up) >= downAfter,
        enabled: !node.disabled,
        availabilityZone: zone,
        aggregates: aggs,
        capabilities: { ...parseJson<Record<string, unknown>>(node.capabilities, {}), hypervisor_type: node.hypervisor_type, cpu_info: parseJson<Record<string, unknown>>(node.cpu_info, {}) },
        free: { vcpus: free('VCPU'), memoryMb: free('MEMORY_MB'), diskGb: free('DISK_GB') },
        total: { vcpus: summary.capacity.VCPU ?? 0, memoryMb: summary.capacity.MEMORY_MB ?? 0, diskGb: summary.capacity.DISK_GB ?? 0 },
        instances: new Set(hostsWithInstances.get(node.host) ?? []),
      });
    }
    return states;
  }

  /** Hosts of the given servers: host -> their uuids. */
  private async instanceHosts(uuids: string[]): Promise<Map<string, string[]>> {
    const rows = await this.db.selectFrom('instance').select(['uuid', 'host']).where('uuid', 'in', uuids).where('deleted', '=', 0).execute();
    const map = new Map<string, string[]>();
    for (const row of rows) if (row.host) map.set(row.host, [...(map.get(row.host) ?? []), row.uuid]);
    return map;
  }

  /** How many members of the spec's group each host has. */
  private async groupHosts(spec: RequestSpec): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (!spec.group) return counts;
    const rows = await this.db
      .selectFrom('instance_group_member')
      .innerJoin('instance', 'instance.uuid', 'instance_group_member.instance_uuid')
      .select('instance.host')
      .where('instance_group_member.group_uuid', '=', spec.group.uuid)
      .where('instance.deleted', '=', 0)
      .where('instance.host', 'is not', null)
      .execute();
    for (const row of rows) if (row.host) counts.set(row.host, (counts.get(row.host) ?? 0) + 1);
    return counts;
  }
}

function fits(host: HostState, resources: Record<string, number>): boolean {
  return host.free.vcpus >= (resources.VCPU ?? 0) && host.free.memoryMb >= (resources.MEMORY_MB ?? 0) && host.free.diskGb >= (resources.DISK_GB ?? 0);
}
