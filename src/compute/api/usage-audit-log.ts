import type { FastifyInstance } from 'fastify';
import { authorize, contextOf, type ComputeService } from '../compute.js';
import { badRequest } from '../errors.js';
import { listServices } from '../services.js';

/**
 * `/os-instance_usage_audit_log`: the state of the periodic usage audit
 * of each compute host for an audit period (a month, Nova's default).
 * Stratus's agents run no usage audit (Nova's `instance_usage_audit` is
 * off by default too), so every host is listed as not run.
 */

const pad = (n: number): string => String(n).padStart(2, '0');
const pyTime = (d: Date): string => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;

/** The monthly audit period before the one `at` is in (Nova's `last_completed_audit_period`). */
function period(at: Date): { begin: Date; end: Date } {
  const end = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  const begin = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 1, 1));
  return { begin, end };
}

/** `YYYY-mm-dd HH:MM:SS` (with optional `.ffffff`), as Nova parses it; null otherwise. */
function parseTime(text: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?$/.exec(text);
  if (!m) return null;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  return Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[3]) ? null : d;
}

async function auditLog(compute: ComputeService, at: Date): Promise<Record<string, unknown>> {
  const hosts = (await listServices(compute.db, compute.config.compute, { binary: 'nova-compute' })).map((s) => s.host);
  const { begin, end } = period(at);
  return {
    hosts_not_run: hosts,
    log: {},
    num_hosts: hosts.length,
    num_hosts_done: 0,
    num_hosts_not_run: hosts.length,
    num_hosts_running: 0,
    overall_status: `0 of ${hosts.length} hosts done. 0 errors.`,
    period_beginning: pyTime(begin),
    period_ending: pyTime(end),
    total_errors: 0,
    total_instances: 0,
  };
}

export function registerUsageAuditLog(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-instance_usage_audit_log', async (req) => {
    authorize(compute, contextOf(req), 'os-instance-usage-audit-log:list');
    return { instance_usage_audit_logs: await auditLog(compute, new Date()) };
  });
  app.get<{ Params: { before: string } }>('/v2.1/os-instance_usage_audit_log/:before', async (req) => {
    authorize(compute, contextOf(req), 'os-instance-usage-audit-log:show');
    const at = parseTime(req.params.before);
    if (!at) throw badRequest(`Invalid timestamp for date ${req.params.before}`);
    return { instance_usage_audit_log: await auditLog(compute, at) };
  });
}
