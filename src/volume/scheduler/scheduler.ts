import { MessageDetail } from '../message-fields.js';
import { AgentRpc, type BackendReport, type CreateRequest, type FindBackendRequest, type PoolStats } from '../rpc.js';
import { apiTime, now, type VolumeService } from '../volume.js';
import { filterPools, type FilterRequest, type PoolState } from './filters.js';
import { weighPools } from './weighers.js';
import type { Conductor } from './conductor.js';

/** A placement decided but not yet reflected in the backend's reports. */
interface Claim {
  backend: string;
  pool: string;
  size: number;
  at: number;
  /** When the create ended (done or failed); a report received after this includes it. */
  doneAt: number | null;
}

/**
 * Capacity placed by this scheduler that the backends' reports may not show
 * yet (Cinder's host manager consuming from its stats), so that a burst of
 * creates spreads instead of piling on the pool that looked emptiest. A
 * claim lasts until a report received after its create ended.
 */
export class CapacityClaims {
  private readonly claims = new Map<string, Claim>();

  add(volumeId: string, pool: PoolState, size: number): void {
    this.claims.set(volumeId, { backend: pool.backend, pool: pool.name, size, at: Date.now(), doneAt: null });
  }

  /** The create ended (its volume is on the backend, or it failed there). */
  finish(volumeId: string): void {
    const claim = this.claims.get(volumeId);
    if (claim && claim.doneAt === null) claim.doneAt = Date.now();
  }

  drop(volumeId: string): void {
    this.claims.delete(volumeId);
  }

  /** A report of `backend` arrived: claims whose create ended before it are in it. */
  reported(backend: string): void {
    const at = Date.now();
    for (const [id, claim] of this.claims) if (claim.backend === backend && claim.doneAt !== null && claim.doneAt <= at) this.claims.delete(id);
  }

  /** Claims still open older than `ms` (their end may have been seen by another process). */
  stale(ms: number): string[] {
    const limit = Date.now() - ms;
    return [...this.claims].filter(([, c]) => c.doneAt === null && c.at < limit).map(([id]) => id);
  }

  /** The pool's stats with the claimed capacity taken. */
  apply(name: string, stats: PoolStats): PoolStats {
    let claimed = 0;
    for (const claim of this.claims.values()) if (claim.pool === name) claimed += claim.size;
    if (claimed === 0) return stats;
    return {
      ...stats,
      free_capacity_gb: Number(stats.free_capacity_gb) - claimed,
      allocated_capacity_gb: Number(stats.allocated_capacity_gb) + claimed,
      provisioned_capacity_gb: Number(stats.provisioned_capacity_gb) + claimed,
    };
  }

  get size(): number {
    return this.claims.size;
  }
}

/** A pool as `get_pools` shows it. */
export interface PoolView {
  name: string;
  capabilities: PoolStats & { volume_backend_name: string; timestamp: string; storage_protocol: string; vendor_name: string; driver_version: string };
}

/**
 * The volume scheduler (cinder-scheduler): picks a pool for each new volume
 * from the backends that are up and enabled (filters, then the capacity
 * weigher), records the choice on the volume and casts the create to that
 * backend's agent. With no pool the volume goes to `error` with Cinder's
 * "no valid backend" user message.
 */
export class VolumeScheduler {
  private readonly agents: AgentRpc;
  /** The tail of the chain of placement decisions. */
  private decisions: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly volume: VolumeService,
    readonly claims: CapacityClaims,
    private readonly conductor: Conductor,
  ) {
    this.agents = new AgentRpc(volume.bus);
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.decisions.catch(() => undefined).then(work);
    this.decisions = next;
    return next;
  }

  /** The pools of every cinder-volume service that is up and enabled, with this scheduler's claims taken. */
  async pools(): Promise<PoolState[]> {
    const rows = await this.volume.db.selectFrom('service').select(['host', 'availability_zone', 'disabled', 'frozen', 'capabilities', 'last_seen_up']).where('binary', '=', 'cinder-volume').execute();
    const downAfter = this.volume.config.volume.service_down_time * 1000;
    const pools: PoolState[] = [];
    for (const row of rows) {
      if (row.disabled || row.frozen || !row.capabilities || !row.last_seen_up) continue;
      if (Date.now() - Date.parse(row.last_seen_up) > downAfter) continue;
      let report: BackendReport & { timestamp?: string };
      try {
        report = JSON.parse(row.capabilities) as BackendReport & { timestamp?: string };
      } catch {
        continue;
      }
      for (const pool of report.pools ?? []) {
        const name = `${row.host}#${pool.pool_name}`;
        const stats = this.claims.apply(name, pool);
        pools.push({
          name,
          backend: row.host,
          availability_zone: row.availability_zone,
          stats,
          capabilities: { volume_backend_name: report.volume_backend_name, vendor_name: report.vendor_name, driver_version: report.driver_version, storage_protocol: report.storage_protocol, ...stats },
          reported_at: report.timestamp ?? row.last_seen_up,
        });
      }
    }
    return pools;
  }

  /** The best pool for the request, or null. */
  async select(req: FilterRequest & { only?: string }): Promise<PoolState | null> {
    await this.dropStaleClaims();
    const all = await this.pools();
    const { passed, rejected } = filterPools(req.only ? all.filter((p) => p.name === req.only || p.backend === req.only) : all, req);
    if (passed.length === 0) {
      this.volume.log.info({ size: req.size, rejected }, 'no volume backend passed the filters');
      return null;
    }
    return weighPools(passed)[0] ?? null;
  }

  /** Claims left open by creates another process saw end. */
  private async dropStaleClaims(): Promise<void> {
    const stale = this.claims.stale(this.volume.config.volume.service_down_time * 1000);
    if (stale.length === 0) return;
    const creating = new Set((await this.volume.db.selectFrom('volume').select('id').where('id', 'in', stale).where('status', '=', 'creating').execute()).map((r) => r.id));
    for (const id of stale) if (!creating.has(id)) this.claims.drop(id);
  }

  /** `create_volume`: places the volume and hands it to the chosen agent; a volume that is no longer `creating` is left alone. */
  async createVolume(req: CreateRequest): Promise<void> {
    const row = await this.volume.db.selectFrom('volume').select(['id', 'status']).where('id', '=', req.volume_id).executeTakeFirst();
    if (!row || row.status !== 'creating') return;
    const max = this.volume.config.volume.max_attempts;
    if (req.attempts.length >= max) {
      await this.conductor.failCreate(req, `Exceeded max scheduling attempts ${max} for resource ${req.volume_id}`, MessageDetail.NO_BACKEND_AVAILABLE);
      return;
    }
    // One decision at a time in this process, so that each sees the claims of the previous ones.
    const pool = await this.serially(async () => {
      const chosen = await this.select({
        size: req.size,
        availability_zone: req.availability_zone || null,
        extra_specs: req.volume_type?.extra_specs ?? {},
        source_backend: req.source_backend,
        excluded: [...req.attempts, ...(req.ignore_backends ?? [])],
      });
      if (chosen) this.claims.add(req.volume_id, chosen, req.size);
      return chosen;
    });
    if (!pool) {
      await this.conductor.failCreate(req, 'No valid backend was found. No weighed backends available', MessageDetail.NO_BACKEND_AVAILABLE);
      return;
    }
    const attempts = [...req.attempts, pool.backend];
    const res = await this.volume.db
      .updateTable('volume')
      .set({ host: pool.name, scheduling_attempts: JSON.stringify(attempts), updated_at: now() })
      .where('id', '=', req.volume_id)
      .where('status', '=', 'creating')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) {
      this.claims.drop(req.volume_id);
      return;
    }
    this.volume.log.info({ volume_id: req.volume_id, host: pool.name, attempt: attempts.length }, 'volume scheduled');
    try {
      await this.agents.createVolume(pool.name, { ...req, attempts, host: pool.name });
    } catch (err) {
      this.claims.drop(req.volume_id);
      await this.conductor.failCreate(req, `could not reach the volume agent ${pool.backend}: ${err instanceof Error ? err.message : String(err)}`, MessageDetail.NO_BACKEND_AVAILABLE);
    }
  }

  /** `find_backend`: a pool (`host@backend#pool`) that can hold such a volume, or null; with `backend`, only that backend or pool. No claim. */
  async findBackend(req: FindBackendRequest): Promise<string | null> {
    const pool = await this.select({ size: req.size, availability_zone: req.availability_zone || null, extra_specs: req.volume_type?.extra_specs ?? {}, source_backend: null, excluded: req.ignore_backends ?? [], ...(req.backend ? { only: req.backend } : {}) });
    return pool?.name ?? null;
  }

  /** `get_pools`: every pool of the backends that are up and enabled, with their capabilities. */
  async getPools(): Promise<PoolView[]> {
    const pools = await this.pools();
    return pools
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((p) => ({
        name: p.name,
        capabilities: {
          ...p.stats,
          volume_backend_name: String(p.capabilities.volume_backend_name ?? ''),
          vendor_name: String(p.capabilities.vendor_name ?? ''),
          driver_version: String(p.capabilities.driver_version ?? ''),
          storage_protocol: String(p.capabilities.storage_protocol ?? ''),
          timestamp: apiTime(p.reported_at) ?? '',
          backend_state: 'up',
        },
      }));
  }
}
