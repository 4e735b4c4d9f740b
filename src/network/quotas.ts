import type { Kysely } from 'kysely';
import type { NetworkConfig } from '../core/config.js';
import type { NetworkSchema } from './db/schema.js';
import { overQuota } from './errors.js';

/** The resources Neutron counts against per-project quotas, and the tables that hold them. */
export const QUOTA_RESOURCES = {
  network: 'network',
  subnet: 'subnet',
  subnetpool: 'subnetpool',
  port: 'port',
  router: 'router',
  floatingip: 'floatingip',
  security_group: 'security_group',
  security_group_rule: 'security_group_rule',
} as const;

export type QuotaResource = keyof typeof QUOTA_RESOURCES;

/** Every quota resource, with the ones that have no table (rbac_policy) counted as zero. */
export function quotaResources(config: NetworkConfig): string[] {
  return Object.keys(config.default_quotas);
}

/** A project's limit for a resource: its own, else the configured default (-1: unlimited). */
export async function limitOf(db: Kysely<NetworkSchema>, config: NetworkConfig, projectId: string, resource: string): Promise<number> {
  const row = await db.selectFrom('quota').select('hard_limit').where('project_id', '=', projectId).where('resource', '=', resource).executeTakeFirst();
  return row ? Number(row.hard_limit) : (config.default_quotas[resource] ?? -1);
}

/** How many of a resource the project has. */
export async function usageOf(db: Kysely<NetworkSchema>, projectId: string, resource: string): Promise<number> {
  const table = QUOTA_RESOURCES[resource as QuotaResource];
  if (!table) return 0;
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * Refuses with Neutron's 409 `OverQuota` when adding `count` more of a
 * resource would pass the project's limit. Call it inside the transaction
 * that creates the resources, so that a refused request creates nothing.
 */
export async function checkQuota(db: Kysely<NetworkSchema>, config: NetworkConfig, projectId: string, resource: QuotaResource, count = 1): Promise<void> {
  const limit = await limitOf(db, config, projectId, resource);
  if (limit < 0) return;
  const used = await usageOf(db, projectId, resource);
  if (used + count > limit) throw overQuota(resource);
}
