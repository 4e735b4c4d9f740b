import type { ServiceClient } from '../core/auth/service-client.js';
import type { AgentPlacement } from './agent/agent.js';
import type { SchedulerPlacement } from './scheduler/scheduler.js';

/**
 * What compute's roles ask of placement: the scheduler's candidates and
 * claims, the conductor's frees and moves. `PlacementClient` (HTTP) is the
 * real one.
 */
export interface ComputePlacement extends SchedulerPlacement {
  /** Removes a consumer's allocations (a deleted server, a confirmed migration). Succeeds when there are none. */
  deleteAllocations(consumer: string): Promise<void>;
  /** Moves every allocation of `from` to `to` (resize and migrate keep the source's usage under the migration). */
  moveAllocations(from: string, to: string, projectId: string, userId: string): Promise<void>;
  /** A consumer's allocations by provider. */
  allocations(consumer: string): Promise<Record<string, Record<string, number>>>;
}


const VERSION = { 'OpenStack-API-Version': 'placement 1.39' };

/** A placement answer that is not a success. */
export class PlacementError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PlacementError';
  }
}

/**
 * Compute's placement calls over HTTP as the `nova` service user (Placement
 * API 1.39). Writes that lose a generation race are retried from a fresh read.
 */
export class HttpPlacement implements ComputePlacement, AgentPlacement {
  constructor(private readonly client: ServiceClient) {}

  private async call<T>(method: string, path: string, body?: unknown, ok: number[] = []): Promise<{ status: number; body: T }> {
    const res = await this.client.request<T>('placement', method, path, { headers: VERSION, ...(body === undefined ? {} : { body }) });
    if (res.status >= 400 && !ok.includes(res.status)) throw new PlacementError(res.status, `placement ${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  }

  async candidates(resources: Record<string, number>, limit: number): Promise<Map<string, { capacity: Record<string, number>; used: Record<string, number> }>> {
    const wanted = Object.entries(resources)
      .map(([rc, n]) => `${rc}:${n}`)
      .join(',');
    const res = await this.call<{ provider_summaries: Record<string, { resources: Record<string, { capacity: number; used: number }> }> }>('GET', `/allocation_candidates?resources=${wanted}&limit=${limit}`);
    const out = new Map<string, { capacity: Record<string, number>; used: Record<string, number> }>();
    for (const [uuid, summary] of Object.entries(res.body.provider_summaries ?? {})) {
      const capacity: Record<string, number> = {};
      const used: Record<string, number> = {};
      for (const [rc, r] of Object.entries(summary.resources)) {
        capacity[rc] = r.capacity;
        used[rc] = r.used;
      }
      out.set(uuid, { capacity, used });
    }
    return out;
  }

  async claim(consumer: string, allocation: Record<string, Record<string, number>>, projectId: string, userId: string): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.call<{ consumer_generation?: number | null }>('GET', `/allocations/${consumer}`);
      const body = {
        allocations: Object.fromEntries(Object.entries(allocation).map(([rp, resources]) => [rp, { resources }])),
        project_id: projectId,
        user_id: userId,
        consumer_generation: current.body.consumer_generation ?? null,
        consumer_type: 'INSTANCE',
      };
      const res = await this.call<{ errors?: { code?: string }[] }>('PUT', `/allocations/${consumer}`, body, [409]);
      if (res.status < 400) return true;
      if (res.body.errors?.[0]?.code !== 'placement.concurrent_update') return false;
    }
    return false;
  }

  async deleteAllocations(consumer: string): Promise<void> {
    await this.call('DELETE', `/allocations/${consumer}`, undefined, [404]);
  }

  async allocations(consumer: string): Promise<Record<string, Record<string, number>>> {
    const res = await this.call<{ allocations: Record<string, { resources: Record<string, number> }> }>('GET', `/allocations/${consumer}`);
    return Object.fromEntries(Object.entries(res.body.allocations ?? {}).map(([rp, a]) => [rp, a.resources]));
  }

  async moveAllocations(from: string, to: string, projectId: string, userId: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const source = await this.call<{ allocations: Record<string, { resources: Record<string, number> }>; consumer_generation?: number }>('GET', `/allocations/${from}`);
      const target = await this.call<{ consumer_generation?: number | null }>('GET', `/allocations/${to}`);
      const res = await this.call<{ errors?: { code?: string }[] }>(
        'POST',
        '/allocations',
        {
          [from]: { allocations: {}, project_id: projectId, user_id: userId, consumer_generation: source.body.consumer_generation ?? null, consumer_type: 'INSTANCE' },
          [to]: { allocations: source.body.allocations ?? {}, project_id: projectId, user_id: userId, consumer_generation: target.body.consumer_generation ?? null, consumer_type: 'MIGRATION' },
        },
        [409],
      );
      if (res.status < 400) return;
    }
    throw new PlacementError(409, `could not move the allocations of ${from} to ${to}`);
  }

  async ensureProvider(uuid: string, name: string): Promise<void> {
    const found = await this.call('GET', `/resource_providers/${uuid}`, undefined, [404]);
    if (found.status === 404) await this.call('POST', '/resource_providers', { uuid, name }, [409]);
  }

  async setInventory(uuid: string, inventories: Record<string, { total: number; reserved: number; allocation_ratio: number; max_unit: number }>): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const rp = await this.call<{ generation: number }>('GET', `/resource_providers/${uuid}`);
      const res = await this.call('PUT', `/resource_providers/${uuid}/inventories`, { resource_provider_generation: rp.body.generation, inventories }, [409]);
      if (res.status < 400) return;
    }
    throw new PlacementError(409, `could not set the inventory of ${uuid}`);
  }

  async setTraits(uuid: string, traits: string[]): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const rp = await this.call<{ generation: number }>('GET', `/resource_providers/${uuid}`);
      const res = await this.call('PUT', `/resource_providers/${uuid}/traits`, { resource_provider_generation: rp.body.generation, traits }, [409, 400]);
      if (res.status < 400 || res.status === 400) return;
    }
  }
}
