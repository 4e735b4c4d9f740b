import type { Kysely } from 'kysely';
import { parseJson } from './common.js';
import type { ComputeSchema, InstanceRow } from './db/schema.js';
import { badRequest } from './errors.js';

/**
 * Simple tenant usage: for a period, the servers that ran in it (launched
 * before its end, not terminated before its start, deleted ones included)
 * and how many hours each ran in it, summed per project with the vcpus,
 * memory and disk of the flavor the server has.
 */

type Db = Kysely<ComputeSchema>;

/** The columns of a server that its usage is computed from. */
export type UsageInstance = Pick<InstanceRow, 'uuid' | 'project_id' | 'display_name' | 'vm_state' | 'flavor' | 'launched_at' | 'terminated_at'>;

/**
 * The servers that ran in [start, stop), optionally of one project, by
 * project then uuid, after `marker` (a server uuid: else 400 `Marker X
 * could not be found.`), at most `limit`.
 */
export async function instancesInPeriod(db: Db, start: Date, stop: Date, options: { projectId?: string; limit: number; marker?: string }): Promise<UsageInstance[]> {
  let query = db
    .selectFrom('instance')
    .select(['uuid', 'project_id', 'display_name', 'vm_state', 'flavor', 'launched_at', 'terminated_at'])
    .where((eb) => eb.or([eb('terminated_at', 'is', null), eb('terminated_at', '>', start.toISOString())]))
    .where('launched_at', '<', stop.toISOString())
    .orderBy('project_id')
    .orderBy('uuid');
  if (options.projectId !== undefined) query = query.where('project_id', '=', options.projectId);
  if (options.marker !== undefined) {
    const marker = await db.selectFrom('instance').select(['uuid', 'project_id']).where('uuid', '=', options.marker).executeTakeFirst();
    if (!marker) throw badRequest(`Marker ${options.marker} could not be found.`);
    query = query.where((eb) => eb.or([eb('project_id', '>', marker.project_id), eb.and([eb('project_id', '=', marker.project_id), eb('uuid', '>', marker.uuid)])]));
  }
  return query.limit(options.limit).execute();
}

/** One server's usage in the period, as Nova reports it. */
export interface ServerUsage {
  hours: number;
  flavor: string;
  instance_id: string;
  name: string;
  tenant_id: string;
  memory_mb: number;
  local_gb: number;
  vcpus: number;
  started_at: Date;
  ended_at: Date | null;
  state: string;
  uptime: number;
}

/** A project's usage in the period. */
export interface TenantUsage {
  tenant_id: string;
  server_usages?: ServerUsage[];
  total_local_gb_usage: number;
  total_vcpus_usage: number;
  total_memory_mb_usage: number;
  total_hours: number;
  start: Date;
  stop: Date;
}

function hoursIn(launched: Date, terminated: Date | null, start: Date, stop: Date): number {
  if (terminated && terminated < start) return 0;
  if (launched > stop) return 0;
  const from = launched > start ? launched : start;
  const to = terminated && terminated < stop ? terminated : stop;
  return (to.getTime() - from.getTime()) / 3_600_000;
}

/** Sums the servers' usage per project (in the servers' order); `detailed` keeps each server's. */
export function tenantUsages(instances: UsageInstance[], start: Date, stop: Date, detailed: boolean, now = new Date()): { usages: TenantUsage[]; servers: ServerUsage[] } {
  const byProject = new Map<string, TenantUsage>();
  const servers: ServerUsage[] = [];
  for (const instance of instances) {
    if (instance.launched_at === null) continue;
    const flavor = parseJson<{ name?: string; memory_mb?: number; root_gb?: number; ephemeral_gb?: number; vcpus?: number }>(instance.flavor, {});
    const launched = new Date(instance.launched_at);
    const terminated = instance.terminated_at === null ? null : new Date(instance.terminated_at);
    const usage: ServerUsage = {
      hours: hoursIn(launched, terminated, start, stop),
      flavor: flavor.name ?? '',
      instance_id: instance.uuid,
      name: instance.display_name,
      tenant_id: instance.project_id,
      memory_mb: Number(flavor.memory_mb ?? 0),
      local_gb: Number(flavor.root_gb ?? 0) + Number(flavor.ephemeral_gb ?? 0),
      vcpus: Number(flavor.vcpus ?? 0),
      started_at: launched,
      ended_at: terminated,
      state: terminated ? 'terminated' : instance.vm_state,
      uptime: Math.trunc(((terminated ?? now).getTime() - launched.getTime()) / 1000),
    };
    let summary = byProject.get(usage.tenant_id);
    if (!summary) {
      summary = { tenant_id: usage.tenant_id, ...(detailed ? { server_usages: [] } : {}), total_local_gb_usage: 0, total_vcpus_usage: 0, total_memory_mb_usage: 0, total_hours: 0, start, stop };
      byProject.set(usage.tenant_id, summary);
    }
    summary.total_local_gb_usage += usage.local_gb * usage.hours;
    summary.total_vcpus_usage += usage.vcpus * usage.hours;
    summary.total_memory_mb_usage += usage.memory_mb * usage.hours;
    summary.total_hours += usage.hours;
    summary.server_usages?.push(usage);
    servers.push(usage);
  }
  return { usages: [...byProject.values()], servers };
}
