import type { SchedulerPlacement } from './scheduler/scheduler.js';

export { PlacementApiError, PlacementClient } from './placement-client.js';

/**
 * What compute's roles ask of placement: the scheduler's candidates and
 * claims, the conductor's and API's frees and moves. `PlacementClient`
 * (placement-client.ts, over HTTP) is the implementation; the agents use
 * its `AgentPlacement` part (agent/agent.ts).
 */
export interface ComputePlacement extends SchedulerPlacement {
  /** Removes a consumer's allocations (a deleted server, a confirmed migration). Succeeds when there are none. */
  deleteAllocations(consumer: string): Promise<void>;
  /**
   * Moves every allocation of `from` to `to` in one write (resize and
   * migrate keep the source's usage under the migration, revert moves it
   * back); `to` becomes a MIGRATION consumer, or an INSTANCE one when `from`
   * was a migration. Resolves false when `from` held nothing.
   */
  moveAllocations(from: string, to: string, projectId: string, userId: string): Promise<unknown>;
  /** A consumer's allocations by provider (empty when it holds none). */
  allocations(consumer: string): Promise<Record<string, Record<string, number>>>;
}
