import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceClient, ServiceResponse } from '../core/auth/service-client.js';
import type { Logger } from '../core/logging.js';
import type { AgentPlacement } from './agent/agent.js';
import type { ComputePlacement } from './placement.js';

/**
 * The typed client compute uses to talk to placement over HTTP (through the
 * catalog's `placement` endpoint, with the service's own token). Every call
 * sends `OpenStack-API-Version: placement 1.39`. Provider generation
 * conflicts (`placement.concurrent_update`) are retried after re-reading;
 * running out of room is an answer (`false`), not an error.
 */

/** The microversion every call uses. */
export const PLACEMENT_MICROVERSION = '1.39';

/** Placement refused a call (other than the outcomes a method returns). */
export class PlacementApiError extends Error {
  constructor(
    readonly status: number,
    /** Placement's error code (`placement.concurrent_update`, ...), or `placement.undefined_code`. */
    readonly code: string,
    readonly detail: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`placement ${method} ${path}: ${status} ${code}: ${detail.trim()}`);
    this.name = 'PlacementApiError';
  }

  /** True for a stale consumer generation: re-read the consumer's allocations before trying again. */
  get consumerGenerationConflict(): boolean {
    return this.status === 409 && this.detail.includes('consumer generation conflict');
  }
}

/** One inventory record; placement's defaults fill what is left out. */
export interface InventoryRecord {
  total: number;
  reserved?: number;
  min_unit?: number;
  max_unit?: number;
  step_size?: number;
  allocation_ratio?: number;
}

/** Amounts by resource class, by provider UUID. */
export type AllocationsByProvider = Record<string, Record<string, number>>;

/** What `GET /allocation_candidates` is asked for (the unsuffixed group). */
export interface CandidateQuery {
  /** Amounts by resource class, e.g. `{ VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }`. */
  resources: Record<string, number>;
  /** Traits the providers used must have, together. */
  required?: string[];
  /** Traits none of the providers used may have. */
  forbidden?: string[];
  /** Traits the root provider (the host) must not have, e.g. `COMPUTE_STATUS_DISABLED`. */
  rootForbidden?: string[];
  /** Aggregates of which the host must be in at least one. */
  memberOf?: string[];
  /** A provider UUID: only its tree. */
  inTree?: string;
  limit?: number;
}

/** One provider's summary in a candidates answer. */
export interface ProviderSummary {
  resources: Record<string, { capacity: number; used: number }>;
  traits: string[];
  parentProviderUuid: string | null;
  rootProviderUuid: string;
}

/** One way to satisfy a request: what to claim from which providers. */
export interface AllocationCandidate {
  /** The root provider (the host) of the candidate. */
  rootProviderUuid: string;
  allocations: AllocationsByProvider;
}

/** The candidates, and the same grouped by host (root provider UUID). */
export interface AllocationCandidates {
  candidates: AllocationCandidate[];
  byProvider: Map<string, AllocationCandidate[]>;
  providers: Record<string, ProviderSummary>;
}

/** A consumer's allocations as placement has them. */
export interface ConsumerAllocations {
  allocations: AllocationsByProvider;
  /** Null when the consumer has no allocations (it does not exist for placement). */
  consumerGeneration: number | null;
  projectId: string | null;
  userId: string | null;
  consumerType: string | null;
}

/** Tuning of a {@link PlacementClient}. */
export interface PlacementClientOptions {
  logger?: Logger;
  /** Attempts of a write whose generation keeps moving (default 5). */
  attempts?: number;
}

interface ErrorBody {
  errors?: { code?: string; detail?: string }[];
}

function encode(value: string): string {
  return encodeURIComponent(value);
}

/**
 * A client of placement for compute (hosts as resource providers, claims as
 * allocations): what the scheduler, conductor and API (`ComputePlacement`)
 * and the agents (`AgentPlacement`) use.
 */
export class PlacementClient implements ComputePlacement, AgentPlacement {
  private readonly attempts: number;
  private readonly logger: Logger | undefined;

  constructor(
    private readonly client: Pick<ServiceClient, 'request'>,
    options: PlacementClientOptions = {},
  ) {
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.logger = options.logger;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<ServiceResponse<T>> {
    return this.client.request<T>('placement', method, path, {
      ...(body === undefined ? {} : { body }),
      headers: { 'OpenStack-API-Version': `placement ${PLACEMENT_MICROVERSION}` },
    });
  }

  private failure(method: string, path: string, res: ServiceResponse<unknown>): PlacementApiError {
    const error = (res.body as ErrorBody | null)?.errors?.[0];
    return new PlacementApiError(res.status, error?.code ?? 'placement.undefined_code', error?.detail ?? String(res.body ?? ''), method, path);
  }

  private async expect<T>(method: string, path: string, statuses: number[], body?: unknown): Promise<ServiceResponse<T>> {
    const res = await this.call<T>(method, path, body);
    if (!statuses.includes(res.status)) throw this.failure(method, path, res);
    return res;
  }

  /**
   * Runs a read-then-write step again while placement says a generation
   * moved. A stale consumer generation is retried only when the step re-reads
   * the consumer (`rereadsConsumers`); otherwise the caller must.
   */
  private async retrying<T>(what: string, step: () => Promise<T>, rereadsConsumers = true): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        const conflict = err instanceof PlacementApiError && err.code === 'placement.concurrent_update' && (rereadsConsumers || !err.consumerGenerationConflict);
        if (!conflict || attempt >= this.attempts) throw err;
        this.logger?.info({ attempt, what }, 'placement generation conflict; re-reading and retrying');
        await sleep(Math.random() * 20 * attempt);
      }
    }
  }

  /**
   * Makes sure a provider with this UUID exists (creating it with `name`,
   * under `parentUuid` if given) and returns its generation. Idempotent;
   * a concurrent creation by someone else is fine.
   */
  async ensureProvider(uuid: string, name: string, options: { parentUuid?: string } = {}): Promise<number> {
    const path = `/resource_providers/${encode(uuid)}`;
    const found = await this.call<{ generation: number }>('GET', path);
    if (found.status === 200) return found.body.generation;
    if (found.status !== 404) throw this.failure('GET', path, found);
    const created = await this.call<{ generation: number }>('POST', '/resource_providers', { uuid, name, ...(options.parentUuid ? { parent_provider_uuid: options.parentUuid } : {}) });
    if (created.status === 200) return created.body.generation;
    if (created.status === 409) {
      const again = await this.expect<{ generation: number }>('GET', path, [200]);
      return again.body.generation;
    }
    throw this.failure('POST', '/resource_providers', created);
  }

  /** Deletes a provider (idempotent: an unknown one is fine). 409 errors (allocations, children) are thrown. */
  async deleteProvider(uuid: string): Promise<void> {
    await this.expect('DELETE', `/resource_providers/${encode(uuid)}`, [204, 404]);
  }

  /**
   * Sets the whole inventory of a provider (classes left out are removed),
   * retrying with a fresh generation when someone else wrote meanwhile;
   * nothing is written when it is already so. Returns the generation after.
   * Removing a class in use throws (`placement.inventory.inuse`).
   */
  async setInventory(uuid: string, inventories: Record<string, InventoryRecord>): Promise<number> {
    const path = `/resource_providers/${encode(uuid)}/inventories`;
    return this.retrying('set inventory', async () => {
      const current = await this.expect<{ resource_provider_generation: number; inventories: Record<string, Required<InventoryRecord>> }>('GET', path, [200]);
      if (sameInventory(current.body.inventories, inventories)) return current.body.resource_provider_generation;
      const res = await this.expect<{ resource_provider_generation: number }>('PUT', path, [200], { resource_provider_generation: current.body.resource_provider_generation, inventories });
      return res.body.resource_provider_generation;
    });
  }

  /** Places a provider in exactly these aggregates (retrying on generation conflicts). Returns the generation after. */
  async setAggregates(uuid: string, aggregates: string[]): Promise<number> {
    const path = `/resource_providers/${encode(uuid)}/aggregates`;
    return this.retrying('set aggregates', async () => {
      const current = await this.expect<{ aggregates: string[]; resource_provider_generation: number }>('GET', path, [200]);
      const res = await this.expect<{ resource_provider_generation: number }>('PUT', path, [200], { aggregates: [...new Set(aggregates)], resource_provider_generation: current.body.resource_provider_generation });
      return res.body.resource_provider_generation;
    });
  }

  /**
   * Gives a provider exactly these traits, creating the custom (`CUSTOM_*`)
   * ones first; retries on generation conflicts. Returns the generation after.
   */
  async setTraits(uuid: string, traits: string[]): Promise<number> {
    for (const trait of new Set(traits)) {
      if (trait.startsWith('CUSTOM_')) await this.expect('PUT', `/traits/${encode(trait)}`, [201, 204]);
    }
    const path = `/resource_providers/${encode(uuid)}/traits`;
    return this.retrying('set traits', async () => {
      const current = await this.expect<{ traits: string[]; resource_provider_generation: number }>('GET', path, [200]);
      const res = await this.expect<{ resource_provider_generation: number }>('PUT', path, [200], { traits: [...new Set(traits)], resource_provider_generation: current.body.resource_provider_generation });
      return res.body.resource_provider_generation;
    });
  }

  /** Where a request fits: the allocation candidates, also grouped by host, and the providers' summaries. */
  async allocationCandidates(query: CandidateQuery): Promise<AllocationCandidates> {
    const params = new URLSearchParams();
    params.set('resources', Object.entries(query.resources).map(([rc, n]) => `${rc}:${n}`).join(','));
    const required = [...(query.required ?? []), ...(query.forbidden ?? []).map((t) => `!${t}`)];
    if (required.length > 0) params.set('required', required.join(','));
    if (query.rootForbidden && query.rootForbidden.length > 0) params.set('root_required', query.rootForbidden.map((t) => `!${t}`).join(','));
    if (query.memberOf && query.memberOf.length > 0) params.set('member_of', `in:${query.memberOf.join(',')}`);
    if (query.inTree) params.set('in_tree', query.inTree);
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    const res = await this.expect<{
      allocation_requests: { allocations: Record<string, { resources: Record<string, number> }> }[];
      provider_summaries: Record<string, { resources: Record<string, { capacity: number; used: number }>; traits: string[]; parent_provider_uuid: string | null; root_provider_uuid: string }>;
    }>('GET', `/allocation_candidates?${params.toString()}`, [200]);
    const providers: Record<string, ProviderSummary> = {};
    for (const [uuid, s] of Object.entries(res.body.provider_summaries)) {
      providers[uuid] = { resources: s.resources, traits: s.traits, parentProviderUuid: s.parent_provider_uuid, rootProviderUuid: s.root_provider_uuid };
    }
    const candidates: AllocationCandidate[] = [];
    const byProvider = new Map<string, AllocationCandidate[]>();
    for (const req of res.body.allocation_requests) {
      const allocations: AllocationsByProvider = {};
      for (const [uuid, entry] of Object.entries(req.allocations)) allocations[uuid] = entry.resources;
      const roots = Object.keys(allocations).map((uuid) => providers[uuid]?.rootProviderUuid ?? uuid);
      const candidate = { rootProviderUuid: roots.find((r) => providers[r]?.parentProviderUuid === null) ?? roots[0] ?? '', allocations };
      candidates.push(candidate);
      byProvider.set(candidate.rootProviderUuid, [...(byProvider.get(candidate.rootProviderUuid) ?? []), candidate]);
    }
    return { candidates, byProvider, providers };
  }

  /**
   * Claims resources for a consumer (`PUT /allocations/{consumer}`),
   * replacing what it held: true when placement accepted, false when there is
   * not enough room. Provider generation conflicts are retried. With a
   * `consumerGeneration` (null: a new consumer, which saves a read) a stale
   * one throws a PlacementApiError whose `consumerGenerationConflict` is
   * true; without one, the consumer's generation is read first, and read
   * again when it moved meanwhile.
   */
  async claim(consumer: string, allocations: AllocationsByProvider, projectId: string, userId: string, consumerGeneration?: number | null, options: { consumerType?: string } = {}): Promise<boolean> {
    const path = `/allocations/${encode(consumer)}`;
    const body = (generation: number | null): unknown => ({
      allocations: Object.fromEntries(Object.entries(allocations).map(([uuid, resources]) => [uuid, { resources }])),
      project_id: projectId,
      user_id: userId,
      consumer_generation: generation,
      consumer_type: options.consumerType ?? 'INSTANCE',
    });
    if (consumerGeneration !== undefined) return this.retrying('claim', async () => this.writeAllocations('PUT', path, body(consumerGeneration)), false);
    return this.retrying('claim', async () => this.writeAllocations('PUT', path, body((await this.getAllocations(consumer)).consumerGeneration)));
  }

  /** 204: true; 409 for room: false; generation conflicts and other failures throw. */
  private async writeAllocations(method: string, path: string, body: unknown): Promise<boolean> {
    const res = await this.call(method, path, body);
    if (res.status === 204) return true;
    const error = this.failure(method, path, res);
    if (res.status === 409 && error.code !== 'placement.concurrent_update') return false;
    throw error;
  }

  /** A consumer's allocations (empty, with null generation, when it holds nothing). */
  async getAllocations(consumer: string): Promise<ConsumerAllocations> {
    const res = await this.expect<{ allocations: Record<string, { resources: Record<string, number> }>; consumer_generation?: number; project_id?: string; user_id?: string; consumer_type?: string }>('GET', `/allocations/${encode(consumer)}`, [200]);
    const allocations: AllocationsByProvider = {};
    for (const [uuid, entry] of Object.entries(res.body.allocations)) allocations[uuid] = entry.resources;
    return {
      allocations,
      consumerGeneration: res.body.consumer_generation ?? null,
      projectId: res.body.project_id ?? null,
      userId: res.body.user_id ?? null,
      consumerType: res.body.consumer_type ?? null,
    };
  }

  /** A consumer's allocations by provider (empty when it holds none). */
  async allocations(consumer: string): Promise<AllocationsByProvider> {
    return (await this.getAllocations(consumer)).allocations;
  }

  /**
   * Moves what `from` holds to `to` in one `POST /allocations` (resize and
   * migration: instance to migration consumer, and back on revert).
   * Whatever `to` held is replaced. `to` is owned by `projectId`/`userId`
   * (default: `from`'s owners) and gets `options.consumerType`, by default
   * INSTANCE when `from` is a MIGRATION consumer and MIGRATION otherwise.
   * Re-reads and retries when either consumer changed meanwhile. True when
   * moved (or when `from` holds nothing but `to` does: already moved), false
   * when `from` holds nothing or there is no room.
   */
  async moveAllocations(from: string, to: string, projectId?: string, userId?: string, options: { consumerType?: string } = {}): Promise<boolean> {
    return this.retrying('move allocations', async () => {
      const source = await this.getAllocations(from);
      const target = await this.getAllocations(to);
      if (Object.keys(source.allocations).length === 0) return Object.keys(target.allocations).length > 0;
      const owner = { project_id: source.projectId ?? projectId ?? '', user_id: source.userId ?? userId ?? '' };
      const sourceType = source.consumerType === 'unknown' || !source.consumerType ? 'INSTANCE' : source.consumerType;
      const body = {
        [from]: { allocations: {}, ...owner, consumer_generation: source.consumerGeneration, consumer_type: sourceType },
        [to]: {
          allocations: Object.fromEntries(Object.entries(source.allocations).map(([uuid, resources]) => [uuid, { resources }])),
          project_id: projectId ?? owner.project_id,
          user_id: userId ?? owner.user_id,
          consumer_generation: target.consumerGeneration,
          consumer_type: options.consumerType ?? (sourceType === 'MIGRATION' ? 'INSTANCE' : 'MIGRATION'),
        },
      };
      // Stale consumer generations here are ours to refresh: a retry re-reads both consumers.
      return this.writeAllocations('POST', '/allocations', body);
    });
  }

  /** Removes all of a consumer's allocations. Idempotent: a consumer without any is fine. */
  async deleteAllocations(consumer: string): Promise<void> {
    await this.expect('DELETE', `/allocations/${encode(consumer)}`, [204, 404]);
  }

  /**
   * What a project (optionally one of its users, one consumer type) uses, by
   * resource class, all consumer types together unless one is named.
   */
  async usages(projectId: string, options: { userId?: string; consumerType?: string } = {}): Promise<Record<string, number>> {
    const params = new URLSearchParams({ project_id: projectId });
    if (options.userId) params.set('user_id', options.userId);
    if (options.consumerType) params.set('consumer_type', options.consumerType);
    const res = await this.expect<{ usages: Record<string, Record<string, number>> }>('GET', `/usages?${params.toString()}`, [200]);
    const total: Record<string, number> = {};
    for (const byClass of Object.values(res.body.usages)) {
      for (const [rc, used] of Object.entries(byClass)) if (rc !== 'consumer_count') total[rc] = (total[rc] ?? 0) + used;
    }
    return total;
  }

  /** What is used of each class a provider has inventory of, and its generation. */
  async providerUsages(uuid: string): Promise<{ generation: number; usages: Record<string, number> }> {
    const res = await this.expect<{ resource_provider_generation: number; usages: Record<string, number> }>('GET', `/resource_providers/${encode(uuid)}/usages`, [200]);
    return { generation: res.body.resource_provider_generation, usages: res.body.usages };
  }
}

function sameInventory(current: Record<string, Required<InventoryRecord>>, wanted: Record<string, InventoryRecord>): boolean {
  const names = Object.keys(wanted);
  if (names.length !== Object.keys(current).length) return false;
  const defaults: Omit<Required<InventoryRecord>, 'total'> = { reserved: 0, min_unit: 1, max_unit: 2147483647, step_size: 1, allocation_ratio: 1 };
  return names.every((name) => {
    const have = current[name];
    const want = { ...defaults, ...wanted[name] };
    return have !== undefined && (Object.keys(want) as (keyof InventoryRecord)[]).every((k) => have[k] === want[k]);
  });
}
