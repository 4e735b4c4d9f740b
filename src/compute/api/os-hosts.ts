import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { parseJson } from '../common.js';
import { badRequest, ComputeError, notFound } from '../errors.js';
import type { EmbeddedFlavor } from '../rpc.js';
import { listServices, updateService } from '../services.js';
import { isObject } from './nova-input.js';

/**
 * `/os-hosts` (up to 2.42): the hosts of the services with their zones,
 * a compute host's resources (total, used now, used at most, per
 * project), enabling or disabling a host's compute service. Maintenance
 * mode and host power actions are not something the drivers do: 501, as
 * Nova answers for a driver without them.
 */

/** Nova's topic of a service binary (`nova-compute` -> `compute`). */
function topic(binary: string): string {
  return binary.replace(/^nova-/, '');
}

function until242(req: FastifyRequest): void {
  if (atLeast(req, '2.43')) throw new ComputeError(404, 'The resource could not be found.');
}

/** The compute host `host`, or Nova's 404. */
async function computeHost(compute: ComputeService, host: string): Promise<void> {
  const services = await listServices(compute.db, compute.config.compute, { host, binary: 'nova-compute' });
  if (services.length === 0) throw notFound(`Compute host ${host} could not be found.`);
}

const ENUM = ['enable', 'disable'];

export function registerOsHosts(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-hosts', async (req) => {
    until242(req);
    authorize(compute, contextOf(req), 'os-hosts:list');
    const zone = (req.query as Record<string, string>).zone;
    const services = await listServices(compute.db, compute.config.compute);
    const hosts = services.map((s) => ({ host_name: s.host, service: topic(s.binary), zone: s.zone }));
    return { hosts: zone ? hosts.filter((h) => h.zone === zone) : hosts };
  });

  app.get<{ Params: { host: string } }>('/v2.1/os-hosts/:host', async (req) => {
    until242(req);
    authorize(compute, contextOf(req), 'os-hosts:show');
    const host = req.params.host;
    await computeHost(compute, host);
    const nodes = await compute.db.selectFrom('compute_node').selectAll().where('host', '=', host).execute();
    const total = { cpu: 0, memory_mb: 0, disk_gb: 0 };
    for (const n of nodes) {
      total.cpu += Number(n.vcpus);
      total.memory_mb += Number(n.memory_mb);
      total.disk_gb += Number(n.local_gb);
    }
    const servers = await compute.db.selectFrom('instance').select(['project_id', 'vcpus', 'memory_mb', 'flavor']).where('host', '=', host).where('deleted', '=', 0).execute();
    const used = { cpu: 0, memory_mb: 0, disk_gb: 0 };
    const projects = new Map<string, { cpu: number; memory_mb: number; disk_gb: number }>();
    for (const s of servers) {
      const flavor = parseJson<Partial<EmbeddedFlavor>>(s.flavor, {});
      const disk = Number(flavor.root_gb ?? 0) + Number(flavor.ephemeral_gb ?? 0);
      const p = projects.get(s.project_id) ?? { cpu: 0, memory_mb: 0, disk_gb: 0 };
      for (const sum of [used, p]) {
        sum.cpu += Number(s.vcpus);
        sum.memory_mb += Number(s.memory_mb);
        sum.disk_gb += disk;
      }
      projects.set(s.project_id, p);
    }
    const row = (project: string, r: { cpu: number; memory_mb: number; disk_gb: number }): Record<string, unknown> => ({ resource: { host, project, ...r } });
    return { host: [row('(total)', total), row('(used_now)', used), row('(used_max)', used), ...[...projects].map(([project, r]) => row(project, r))] };
  });

  app.put<{ Params: { host: string } }>('/v2.1/os-hosts/:host', async (req) => {
    until242(req);
    authorize(compute, contextOf(req), 'os-hosts:update');
    const body = req.body;
    if (!isObject(body) || Object.keys(body).length === 0) throw badRequest("Invalid input for field/attribute body. Value: {}. {} does not have enough properties");
    const extra = Object.keys(body).filter((k) => k !== 'status' && k !== 'maintenance_mode');
    if (extra.length) throw badRequest(`Additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} ${extra.length === 1 ? 'was' : 'were'} unexpected)`);
    for (const key of ['status', 'maintenance_mode'] as const) {
      const value = body[key];
      if (value !== undefined && (typeof value !== 'string' || !ENUM.includes(value.toLowerCase()))) throw badRequest(`Invalid input for field/attribute ${key}. Value: ${String(value)}. '${String(value)}' is not one of ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE']`);
    }
    const host = req.params.host;
    await computeHost(compute, host);
    if (body.maintenance_mode !== undefined) throw new ComputeError(501, 'Virt driver does not implement host maintenance mode.');
    const enable = String(body.status).toLowerCase() === 'enable';
    const [service] = await listServices(compute.db, compute.config.compute, { host, binary: 'nova-compute' });
    if (service) await updateService(compute.db, service, { disabled: !enable, disabled_reason: null });
    return { host, status: enable ? 'enabled' : 'disabled' };
  });

  for (const action of ['startup', 'shutdown', 'reboot'] as const) {
    app.get<{ Params: { host: string } }>(`/v2.1/os-hosts/:host/${action}`, async (req) => {
      until242(req);
      authorize(compute, contextOf(req), `os-hosts:${action === 'startup' ? 'start' : action}`);
      await computeHost(compute, req.params.host);
      throw new ComputeError(501, 'Virt driver does not implement host power management.');
    });
  }
}
