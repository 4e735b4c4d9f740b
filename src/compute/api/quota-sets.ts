import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { badRequest } from '../errors.js';
import {
  ALL_RESOURCES,
  classQuotaSet,
  deleteProjectQuotas,
  LEGACY_RESOURCES,
  projectQuotaSet,
  quotaUsage,
  setClassQuotas,
  setProjectQuotas,
  settableRanges,
  type AnyResource,
  type QuotaSet,
} from '../quota-sets.js';
import { bodyObject, booleanLike, checkKeys, checkQueryKeys, queryParam, integerLike, MAX_INT, verifyProjectId, type Obj } from './request-checks.js';

/**
 * `os-quota-sets` (a project's limits, or a user's with `?user_id=`: show,
 * detail with usage, defaults, update, delete) and `os-quota-class-sets`
 * (the `default` class). The nova-network quotas go away in 2.36 (quota
 * classes: 2.50), the injected file ones in 2.57.
 */

const INJECTED = ['injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes'] as const;
const SERVER_GROUPS = ['server_groups', 'server_group_members'] as const;

function hiddenQuotas(req: FastifyRequest): readonly string[] {
  if (atLeast(req, '2.57')) return [...LEGACY_RESOURCES, ...INJECTED];
  if (atLeast(req, '2.36')) return LEGACY_RESOURCES;
  return [];
}

function hiddenClassQuotas(req: FastifyRequest): readonly string[] {
  if (atLeast(req, '2.57')) return [...LEGACY_RESOURCES, ...INJECTED];
  if (atLeast(req, '2.50')) return LEGACY_RESOURCES;
  return SERVER_GROUPS;
}

function shown<T>(values: Record<AnyResource, T>, hidden: readonly string[]): Record<string, T> {
  return Object.fromEntries(ALL_RESOURCES.filter((r) => !hidden.includes(r)).map((r) => [r, values[r]]));
}

/** A quota value: an integer (or a string of one) from -1 (unlimited) to MAX_INT. */
function quotaValue(value: unknown, field: string): number {
  return integerLike(value, field, -1, MAX_INT, /^-?[0-9]+$/);
}

/** The limits of a body, for the resources this microversion still knows. */
function parseValues(body: Obj, field: string, hidden: readonly string[], extra: readonly string[] = []): Partial<Record<AnyResource, number>> {
  const settable = ALL_RESOURCES.filter((r) => !hidden.includes(r));
  checkKeys(body, field, [...settable, ...extra]);
  const out: Partial<Record<AnyResource, number>> = {};
  for (const resource of settable) if (body[resource] !== undefined) out[resource] = quotaValue(body[resource], resource);
  return out;
}

async function checkProject(compute: ComputeService, req: FastifyRequest, projectId: string): Promise<void> {
  if (!(await verifyProjectId(compute, contextOf(req), projectId))) throw badRequest(`Project ID ${projectId} is not a valid project.`);
}

function userOf(req: FastifyRequest): string | undefined {
  checkQueryKeys(req, ['user_id'], atLeast(req, '2.75'));
  return queryParam(req, 'user_id') || undefined;
}

const inf = (v: number): number => (v === -1 ? Infinity : v);

async function update(compute: ComputeService, req: FastifyRequest, projectId: string): Promise<unknown> {
  authorize(compute, contextOf(req), 'os-quota-sets:update', { project_id: projectId });
  const body = bodyObject(req.body, 'quota_set');
  const values = parseValues(body, 'quota_set', hiddenQuotas(req), ['force']);
  const force = body.force === undefined ? false : booleanLike(body.force, 'force');
  await checkProject(compute, req, projectId);
  const userId = userOf(req);
  if (!force) {
    const ranges = await settableRanges(compute.db, compute.config.compute, projectId, userId);
    for (const [resource, limit] of Object.entries(values) as [AnyResource, number][]) {
      const { minimum, maximum } = ranges[resource];
      if (inf(limit) < inf(minimum)) throw badRequest(`Quota limit ${limit} for ${resource} must be greater than or equal to already used and reserved ${minimum}.`);
      if (inf(limit) > inf(maximum)) throw badRequest(`Quota limit ${limit} for ${resource} must be less than or equal to ${maximum}.`);
    }
  }
  await setProjectQuotas(compute.db, projectId, userId ?? '', values);
  const limits = await projectQuotaSet(compute.db, compute.config.compute, projectId, userId);
  return { quota_set: shown(limits, hiddenQuotas(req)) };
}

/** Registers `os-quota-sets` and `os-quota-class-sets`. */
export function registerQuotaSets(app: FastifyInstance, compute: ComputeService): void {
  app.get<{ Params: { id: string } }>('/v2.1/os-quota-sets/:id', async (req) => {
    const projectId = req.params.id;
    authorize(compute, contextOf(req), 'os-quota-sets:show', { project_id: projectId });
    await checkProject(compute, req, projectId);
    const limits = await projectQuotaSet(compute.db, compute.config.compute, projectId, userOf(req));
    return { quota_set: { id: projectId, ...shown(limits, hiddenQuotas(req)) } };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-quota-sets/:id/detail', async (req) => {
    const projectId = req.params.id;
    authorize(compute, contextOf(req), 'os-quota-sets:detail', { project_id: projectId });
    await checkProject(compute, req, projectId);
    const userId = userOf(req);
    const limits = await projectQuotaSet(compute.db, compute.config.compute, projectId, userId);
    const used: QuotaSet = await quotaUsage(compute.db, projectId, userId);
    const detail = Object.fromEntries(ALL_RESOURCES.map((r) => [r, { limit: limits[r], in_use: used[r], reserved: 0 }])) as Record<AnyResource, { limit: number; in_use: number; reserved: number }>;
    return { quota_set: { id: projectId, ...shown(detail, hiddenQuotas(req)) } };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-quota-sets/:id/defaults', async (req) => {
    const projectId = req.params.id;
    authorize(compute, contextOf(req), 'os-quota-sets:defaults', { project_id: projectId });
    await checkProject(compute, req, projectId);
    const defaults = await classQuotaSet(compute.db, compute.config.compute, 'default');
    return { quota_set: { id: projectId, ...shown(defaults, hiddenQuotas(req)) } };
  });

  app.put<{ Params: { id: string } }>('/v2.1/os-quota-sets/:id', async (req) => update(compute, req, req.params.id));

  app.delete<{ Params: { id: string } }>('/v2.1/os-quota-sets/:id', async (req, reply) => {
    const projectId = req.params.id;
    authorize(compute, contextOf(req), 'os-quota-sets:delete', { project_id: projectId });
    await deleteProjectQuotas(compute.db, projectId, userOf(req));
    return reply.code(202).send();
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-quota-class-sets/:id', async (req) => {
    authorize(compute, contextOf(req), 'os-quota-class-sets:show');
    const values = await classQuotaSet(compute.db, compute.config.compute, req.params.id);
    return { quota_class_set: { id: req.params.id, ...shown(values, hiddenClassQuotas(req)) } };
  });

  app.put<{ Params: { id: string } }>('/v2.1/os-quota-class-sets/:id', async (req) => {
    authorize(compute, contextOf(req), 'os-quota-class-sets:update');
    const className = req.params.id;
    if (className.length < 1 || className.length > 255) throw badRequest('Invalid input received: quota_class_name has a length outside 1..255.');
    const hidden = atLeast(req, '2.57') ? [...LEGACY_RESOURCES, ...INJECTED] : atLeast(req, '2.50') ? LEGACY_RESOURCES : [];
    const values = parseValues(bodyObject(req.body, 'quota_class_set'), 'quota_class_set', hidden);
    await setClassQuotas(compute.db, className, values);
    const after = await classQuotaSet(compute.db, compute.config.compute, className);
    return { quota_class_set: shown(after, hiddenClassQuotas(req)) };
  });
}
