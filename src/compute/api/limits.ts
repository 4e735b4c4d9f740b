import type { FastifyInstance } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { projectQuotaSet, quotaUsage, type AnyResource } from '../quota-sets.js';
import { checkQueryKeys, queryParam } from './request-checks.js';

/**
 * `GET /limits`: the project's absolute limits and what it uses, under
 * Nova's names; `rate` is always empty. An admin may ask for another
 * project with `?tenant_id=`. The nova-network limits go away in 2.36,
 * `maxImageMeta` in 2.39, the personality ones in 2.57.
 */

const LIMIT_NAMES: [AnyResource, string][] = [
  ['ram', 'maxTotalRAMSize'],
  ['instances', 'maxTotalInstances'],
  ['cores', 'maxTotalCores'],
  ['key_pairs', 'maxTotalKeypairs'],
  ['floating_ips', 'maxTotalFloatingIps'],
  ['metadata_items', 'maxServerMeta'],
  ['metadata_items', 'maxImageMeta'],
  ['injected_files', 'maxPersonality'],
  ['injected_file_content_bytes', 'maxPersonalitySize'],
  ['security_groups', 'maxSecurityGroups'],
  ['security_group_rules', 'maxSecurityGroupRules'],
  ['server_groups', 'maxServerGroups'],
  ['server_group_members', 'maxServerGroupMembers'],
];

const USED_NAMES: [AnyResource, string][] = [
  ['ram', 'totalRAMUsed'],
  ['cores', 'totalCoresUsed'],
  ['instances', 'totalInstancesUsed'],
  ['floating_ips', 'totalFloatingIpsUsed'],
  ['security_groups', 'totalSecurityGroupsUsed'],
  ['server_groups', 'totalServerGroupsUsed'],
];

/** Registers `GET /limits`. */
export function registerLimits(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/limits', async (req) => {
    const ctx = contextOf(req);
    checkQueryKeys(req, ['tenant_id'], atLeast(req, '2.75'));
    authorize(compute, ctx, 'limits');
    const asked = queryParam(req, 'tenant_id');
    if (asked !== undefined) authorize(compute, ctx, 'limits:other_project');
    const projectId = asked ?? ctx.projectId ?? '';
    const hidden = new Set<string>();
    if (atLeast(req, '2.36')) for (const r of ['floating_ips', 'security_groups', 'security_group_rules']) hidden.add(r);
    if (atLeast(req, '2.57')) for (const r of ['injected_files', 'injected_file_content_bytes']) hidden.add(r);
    const limits = await projectQuotaSet(compute.db, compute.config.compute, projectId);
    const used = await quotaUsage(compute.db, projectId);
    const absolute: Record<string, number> = {};
    for (const [resource, name] of LIMIT_NAMES) {
      if (hidden.has(resource) || (name === 'maxImageMeta' && atLeast(req, '2.39'))) continue;
      absolute[name] = limits[resource];
    }
    for (const [resource, name] of USED_NAMES) if (!hidden.has(resource)) absolute[name] = used[resource];
    return { limits: { rate: [], absolute } };
  });
}
