import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { isRecord } from '../common.js';
import { badRequest, invalidInput, NeutronError } from '../errors.js';
import { authorize, isAdmin, type NetworkService } from '../network.js';
import { allProjectLimits, defaultLimits, projectLimits, quotaResources, resetLimits, setLimits, usageOf } from '../quotas.js';

/** The largest limit Neutron stores (a 32-bit signed integer column). */
const MAX_LIMIT = 2 ** 31 - 1;

/** Neutron accepts `/v2.0/quotas/<id>.json` as well as `/v2.0/quotas/<id>`. */
function projectOf(req: FastifyRequest<{ Params: { id: string } }>): string {
  return req.params.id.replace(/\.json$/, '');
}

/**
 * Reading another project's quotas takes the `get_quota` rule, checked
 * against that project; one's own project needs no rule (as in Neutron).
 */
function authorizeRead(net: NetworkService, ctx: RequestContext, projectId: string): void {
  if (projectId !== ctx.projectId) authorize(net, ctx, 'get_quota', { project_id: projectId, tenant_id: projectId });
}

/** Neutron's `convert_to_int` then `type:range [-1, 2^31-1]`, with its messages. */
function limitValue(value: unknown, resource: string): number {
  const n = typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value) ? Number(value.trim()) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw badRequest(`Invalid input for operation: '${String(value)}' is not an integer.`, 'InvalidInput');
  if (n < -1) throw invalidInput(resource, `'${n}' is too small - must be at least '-1'`);
  if (n > MAX_LIMIT) throw invalidInput(resource, `'${n}' is too large - must be no larger than '${MAX_LIMIT}'`);
  return n;
}

/** Python's truthiness of a JSON value, as Neutron reads `force` and `check_limit`. */
function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (isRecord(value)) return Object.keys(value).length > 0;
  return Boolean(value);
}

/**
 * Reads `{"quota": {"port": 5, ...}}` of a PUT: known resources only, each an
 * integer from -1 (unlimited) up. `force` and `check_limit` are taken out
 * first; `check_limit` asks that no limit go below the current usage.
 */
function readQuotaBody(net: NetworkService, body: unknown): { limits: Record<string, number>; checkLimit: boolean } {
  if (!isRecord(body)) throw badRequest('Resource body required');
  const quota = body.quota;
  if (quota === undefined) throw badRequest("Unable to find 'quota' in request body");
  if (!isRecord(quota)) throw badRequest('Invalid input for quota. Reason: the body is not a mapping.');
  const { force: _force, check_limit: checkLimit, ...rest } = quota;
  const known = new Set(quotaResources(net.config.network));
  const unknown = Object.keys(rest).filter((key) => !known.has(key));
  if (unknown.length > 0) throw badRequest(`Unrecognized attribute(s) '${unknown.join(', ')}'`);
  const limits: Record<string, number> = {};
  for (const [resource, value] of Object.entries(rest)) limits[resource] = limitValue(value, resource);
  return { limits, checkLimit: truthy(checkLimit) };
}

/**
 * Neutron Zed checks usage only when the request asks (`check_limit`); `force`
 * is accepted and skips nothing more. An unlimited (-1) limit never fails the
 * check (Zed would refuse it, comparing usage with -1).
 */
async function refuseBelowUsage(net: NetworkService, projectId: string, limits: Record<string, number>): Promise<void> {
  for (const [resource, limit] of Object.entries(limits)) {
    if (limit < 0) continue;
    const used = await usageOf(net.db, projectId, resource);
    if (used > limit) throw badRequest(`Quota limit ${limit} for ${resource} must be greater than or equal to already used ${used}`);
  }
}

/**
 * Neutron's quotas and quota_details extensions: per-project limits over the
 * defaults in `network.default_quotas`, with the usage counted from the tables.
 */
export function registerQuotas(app: FastifyInstance, net: NetworkService): void {
  app.get('/v2.0/quotas', async (req) => {
    // Neutron checks `get_quota` here against no particular project: with the
    // default rules only an administrator lists every project's quotas.
    authorize(net, req.ctx, 'get_quota', { project_id: '', tenant_id: '' });
    return { quotas: await allProjectLimits(net.db, net.config.network) };
  });

  app.post('/v2.0/quotas', async () => {
    throw new NeutronError(501, 'HTTPNotImplemented', 'POST requests are not supported on this resource.');
  });

  app.get('/v2.0/quotas/project', async (req) => {
    if (!req.ctx.projectId) throw badRequest('Tenant-id was missing from quota request.', 'QuotaMissingTenant');
    return { project: { project_id: req.ctx.projectId } };
  });

  app.get('/v2.0/quotas/tenant', async (req) => {
    if (!req.ctx.projectId) throw badRequest('Tenant-id was missing from quota request.', 'QuotaMissingTenant');
    return { tenant: { tenant_id: req.ctx.projectId } };
  });

  app.get<{ Params: { id: string } }>('/v2.0/quotas/:id', async (req) => {
    const projectId = projectOf(req);
    authorizeRead(net, req.ctx, projectId);
    return { quota: await projectLimits(net.db, net.config.network, projectId) };
  });

  const showDefault = async (req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> => {
    authorizeRead(net, req.ctx, req.params.id);
    return { quota: defaultLimits(net.config.network) };
  };
  app.get('/v2.0/quotas/:id/default', showDefault);
  app.get('/v2.0/quotas/:id/default.json', showDefault);

  const showDetails = async (req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> => {
    const projectId = req.params.id;
    if (projectId !== req.ctx.projectId && !isAdmin(net, req.ctx)) {
      throw new NeutronError(403, 'AdminRequired', 'User does not have admin privileges: Only admin is authorized to access quotas for another project.');
    }
    const limits = await projectLimits(net.db, net.config.network, projectId);
    const quota: Record<string, { limit: number; used: number; reserved: number }> = {};
    for (const [resource, limit] of Object.entries(limits)) quota[resource] = { limit, used: await usageOf(net.db, projectId, resource), reserved: 0 };
    return { quota };
  };
  app.get('/v2.0/quotas/:id/details', showDetails);
  app.get('/v2.0/quotas/:id/details.json', showDetails);

  app.put<{ Params: { id: string } }>('/v2.0/quotas/:id', async (req) => {
    const projectId = projectOf(req);
    authorize(net, req.ctx, 'update_quota', { project_id: projectId, tenant_id: projectId });
    const { limits, checkLimit } = readQuotaBody(net, req.body);
    if (checkLimit) await refuseBelowUsage(net, projectId, limits);
    if (Object.keys(limits).length > 0) await setLimits(net.db, projectId, limits);
    return { quota: await projectLimits(net.db, net.config.network, projectId) };
  });

  app.delete<{ Params: { id: string } }>('/v2.0/quotas/:id', async (req, reply) => {
    const projectId = projectOf(req);
    authorize(net, req.ctx, 'delete_quota', { project_id: projectId, tenant_id: projectId });
    if (!(await resetLimits(net.db, projectId))) throw new NeutronError(404, 'TenantQuotaNotFound', `Quota for tenant ${projectId} could not be found.`);
    reply.code(204);
  });
}
