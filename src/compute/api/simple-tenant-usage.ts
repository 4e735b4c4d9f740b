import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { badRequest, notFound } from '../errors.js';
import { instancesInPeriod, tenantUsages, type ServerUsage, type TenantUsage } from '../tenant-usage.js';
import { checkQueryKeys, collectionLinks, queryParam, pagination, pyIsoTime } from './request-checks.js';

/**
 * `/os-simple-tenant-usage` (every project, admin; `detailed=1` lists the
 * servers) and `/os-simple-tenant-usage/{tenant_id}` (one project, with its
 * servers), for the period `start`..`end` (default: now; the end is cut at
 * now). From 2.40 the servers page with `limit`/`marker`.
 */

const FORMATS = [/^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)$/, /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{1,6})$/, /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{1,6})$/];

/** A time in one of Nova's three formats, as UTC; 400 `Invalid datetime string: ...` otherwise. */
function parseTime(text: string): Date {
  for (const format of FORMATS) {
    const m = format.exec(text);
    if (!m) continue;
    const [, y, mo, d, h, mi, s, frac = ''] = m;
    const ms = Math.floor(Number(frac.padEnd(6, '0')) / 1000);
    const date = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms));
    if (!Number.isNaN(date.getTime()) && date.getUTCDate() === Number(d) && Number(h) < 24 && Number(mi) < 60 && Number(s) < 60) return date;
  }
  throw badRequest('Invalid datetime string: Datetime is in invalid format');
}

function period(req: FastifyRequest): { start: Date; stop: Date } {
  const now = new Date();
  const startText = queryParam(req, 'start');
  const endText = queryParam(req, 'end');
  const start = startText ? parseTime(startText) : now;
  const stop = endText ? parseTime(endText) : now;
  if ((startText || endText) && !(start < stop)) throw badRequest('Invalid start time. The start time cannot occur after the end time.');
  return { start, stop: stop > now ? now : stop };
}

function serverView(u: ServerUsage): Record<string, unknown> {
  return { ...u, started_at: pyIsoTime(u.started_at.toISOString()), ended_at: u.ended_at ? pyIsoTime(u.ended_at.toISOString()) : null };
}

function tenantView(u: TenantUsage): Record<string, unknown> {
  return {
    ...u,
    ...(u.server_usages ? { server_usages: u.server_usages.map(serverView) } : {}),
    start: pyIsoTime(u.start.toISOString()),
    stop: pyIsoTime(u.stop.toISOString()),
  };
}

async function usages(compute: ComputeService, req: FastifyRequest, projectId: string | undefined, detailed: boolean): Promise<{ usages: TenantUsage[]; servers: ServerUsage[]; paged: boolean }> {
  const paged = atLeast(req, '2.40');
  const { start, stop } = period(req);
  const page = paged ? pagination(compute, req) : { limit: compute.config.compute.max_limit, marker: undefined };
  const instances = await instancesInPeriod(compute.db, start, stop, { ...(projectId === undefined ? {} : { projectId }), limit: page.limit, ...(page.marker === undefined ? {} : { marker: page.marker }) });
  return { ...tenantUsages(instances, start, stop, detailed), paged };
}

/** Registers the simple tenant usage routes. */
export function registerSimpleTenantUsage(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-simple-tenant-usage', async (req) => {
    // `/os-simple-tenant-usage/` is the show route with an empty project id: Nova's 404, not the list.
    if (req.url.split('?')[0]?.endsWith('/')) throw notFound('The resource could not be found.');
    authorize(compute, contextOf(req), 'os-simple-tenant-usage:list');
    checkQueryKeys(req, ['start', 'end', 'detailed', 'limit', 'marker'], atLeast(req, '2.75'));
    const result = await usages(compute, req, undefined, queryParam(req, 'detailed') === '1');
    const out: Record<string, unknown> = { tenant_usages: result.usages.map(tenantView) };
    if (result.paged) {
      const links = collectionLinks(compute, req, 'os-simple-tenant-usage', result.servers.length, result.servers[result.servers.length - 1]?.instance_id);
      if (links.length > 0) out.tenant_usages_links = links;
    }
    return out;
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-simple-tenant-usage/:id', async (req) => {
    const projectId = req.params.id;
    authorize(compute, contextOf(req), 'os-simple-tenant-usage:show', { project_id: projectId });
    checkQueryKeys(req, ['start', 'end', 'limit', 'marker'], atLeast(req, '2.75'));
    const result = await usages(compute, req, projectId, true);
    const [usage] = result.usages;
    const out: Record<string, unknown> = { tenant_usage: usage ? tenantView(usage) : {} };
    if (result.paged) {
      const links = collectionLinks(compute, req, `os-simple-tenant-usage/${projectId}`, result.servers.length, result.servers[result.servers.length - 1]?.instance_id);
      if (links.length > 0) out.tenant_usage_links = links;
    }
    return out;
  });
}
