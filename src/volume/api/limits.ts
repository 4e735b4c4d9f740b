import type { FastifyInstance, FastifyRequest } from 'fastify';
import { projectLimits, projectUsage } from '../quotas.js';
import { allowed, atLeast, contextOf, isAdmin, type VolumeService } from '../volume.js';
import { queryOf } from './catalog-input.js';

/**
 * `GET /limits`: the caller's project's absolute limits and, with
 * `limits_extension:used_limits`, its usage (Cinder's used_limits
 * extension); an administrator may name another project with
 * `?project_id=` from 3.39. No rate limits.
 */

const LIMIT_NAMES: [resource: string, name: string][] = [
  ['gigabytes', 'maxTotalVolumeGigabytes'],
  ['backup_gigabytes', 'maxTotalBackupGigabytes'],
  ['volumes', 'maxTotalVolumes'],
  ['snapshots', 'maxTotalSnapshots'],
  ['backups', 'maxTotalBackups'],
];

const USED_NAMES: [name: string, resource: string][] = [
  ['totalVolumesUsed', 'volumes'],
  ['totalGigabytesUsed', 'gigabytes'],
  ['totalSnapshotsUsed', 'snapshots'],
  ['totalBackupsUsed', 'backups'],
  ['totalBackupGigabytesUsed', 'backup_gigabytes'],
];

async function limits(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  const ctx = contextOf(req);
  const query = queryOf(req);
  let projectId = ctx.projectId ?? '';
  if (atLeast(req, '3.39') && isAdmin(volume, ctx)) projectId = query.project_id ?? query.tenant_id ?? projectId;
  const limitsOf = await projectLimits(volume, projectId);
  const absolute: Record<string, number> = {};
  for (const [resource, name] of LIMIT_NAMES) absolute[name] = limitsOf[resource] ?? -1;
  if (allowed(volume, ctx, 'limits_extension:used_limits')) {
    const used = await projectUsage(volume, projectId);
    for (const [name, resource] of USED_NAMES) absolute[name] = used[resource] ?? 0;
  }
  return { limits: { rate: [], absolute } };
}

/** Registers `/limits`. */
export function registerLimits(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/limits', async (req) => limits(volume, req));
}
