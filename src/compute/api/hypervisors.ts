import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { isUuid, parseJson } from '../common.js';
import { badRequest, notFound } from '../errors.js';
import { getHypervisor, hostUptime, hypervisorStatistics, listHypervisors, serversOnHost, type Hypervisor, type HypervisorQuery } from '../hypervisors.js';
import { singleValue } from './nova-input.js';
import { checkQueryKeys, collectionLinks, invalidQuery, pagination, queryParams, strictBool } from './request-checks.js';

/**
 * `/os-hypervisors`: list, detail, show, statistics and uptime (until
 * 2.87), search and servers by hostname pattern (until 2.52). From 2.33
 * lists page (`limit`, `marker`); from 2.53 ids are uuids and the pattern
 * and `with_servers` are query parameters; from 2.88 the resource figures
 * leave the detail view, which gains `uptime`.
 */

type Servers = { name: string; uuid: string }[] | undefined;

function view(req: FastifyRequest, h: Hypervisor, detail: boolean, servers: Servers, withServers: boolean): Record<string, unknown> {
  const uuids = atLeast(req, '2.53');
  const out: Record<string, unknown> = {
    id: uuids ? h.node.uuid : Number(h.node.id),
    hypervisor_hostname: h.node.hypervisor_hostname,
    state: h.up ? 'up' : 'down',
    status: Number(h.service.disabled) === 1 ? 'disabled' : 'enabled',
  };
  if (detail) {
    out.hypervisor_type = h.node.hypervisor_type;
    out.hypervisor_version = Number(h.node.hypervisor_version);
    out.host_ip = h.node.host_ip;
    out.service = { id: uuids ? h.service.uuid : Number(h.service.id), host: h.node.host, disabled_reason: h.service.disabled_reason };
    if (atLeast(req, '2.88')) {
      out.uptime = hostUptime();
    } else {
      Object.assign(out, {
        vcpus: Number(h.node.vcpus),
        memory_mb: Number(h.node.memory_mb),
        local_gb: Number(h.node.local_gb),
        vcpus_used: h.vcpus_used,
        memory_mb_used: h.memory_mb_used,
        local_gb_used: h.local_gb_used,
        free_ram_mb: h.free_ram_mb,
        free_disk_gb: h.free_disk_gb,
        current_workload: h.current_workload,
        running_vms: h.running_vms,
        disk_available_least: h.free_disk_gb,
        cpu_info: atLeast(req, '2.28') ? parseJson<Record<string, unknown>>(h.node.cpu_info, {}) : h.node.cpu_info,
      });
    }
  }
  if (servers && servers.length > 0) out.servers = servers;
  else if (withServers && atLeast(req, '2.75')) out.servers = [];
  return out;
}

/** A 2.53 query parameter that takes one value (a repeat is 400). */
function single(req: FastifyRequest, name: string): string | undefined {
  return singleValue(queryParams(req), name);
}

function withServersParam(req: FastifyRequest): boolean {
  if (!atLeast(req, '2.53')) return false;
  const text = single(req, 'with_servers');
  if (text === undefined) return false;
  const value = strictBool(text);
  if (value === undefined) throw invalidQuery('with_servers', text, `'${text}' is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']`);
  return value;
}

async function serversFor(compute: ComputeService, hypervisors: Hypervisor[], wanted: boolean): Promise<Map<string, Servers>> {
  const out = new Map<string, Servers>();
  if (wanted) for (const h of hypervisors) out.set(h.node.uuid, await serversOnHost(compute.db, h.node.host));
  return out;
}

function noMatch(pattern: string): Error {
  return notFound(`No hypervisor matching '${pattern}' could be found.`);
}

async function list(compute: ComputeService, req: FastifyRequest, detail: boolean): Promise<unknown> {
  authorize(compute, contextOf(req), detail ? 'os-hypervisors:list-detail' : 'os-hypervisors:list');
  const v253 = atLeast(req, '2.53');
  checkQueryKeys(req, ['limit', 'marker', 'hypervisor_hostname_pattern', 'with_servers'], v253);
  const paged = atLeast(req, '2.33');
  const query: HypervisorQuery = {};
  let links = paged;
  if (v253) {
    single(req, 'limit');
    single(req, 'marker');
    const pattern = single(req, 'hypervisor_hostname_pattern');
    if (pattern !== undefined) {
      if (!/^[a-zA-Z0-9-._]*$/.test(pattern) || pattern.length < 1 || pattern.length > 255) {
        throw invalidQuery('hypervisor_hostname_pattern', pattern, `'${pattern}' does not match '^[a-zA-Z0-9-._]*$'`);
      }
      if (queryParams(req).limit !== undefined || queryParams(req).marker !== undefined) {
        throw badRequest('Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.');
      }
      query.pattern = pattern;
      links = false;
    }
  }
  if (paged && query.pattern === undefined) {
    const { limit, marker } = pagination(compute, req);
    query.limit = limit;
    if (marker !== undefined) {
      if (v253) query.marker = { uuid: marker };
      else if (/^\d+$/.test(marker)) query.marker = { id: Number(marker) };
      else throw badRequest(`marker [${marker}] not found`);
    }
  }
  const hypervisors = await listHypervisors(compute.db, compute.config.compute, query);
  if (hypervisors === null) throw badRequest(`marker [${query.marker && 'id' in query.marker ? query.marker.id : query.marker?.uuid}] not found`);
  if (query.pattern !== undefined && hypervisors.length === 0) throw noMatch(query.pattern);
  const withServers = withServersParam(req);
  const servers = await serversFor(compute, hypervisors, withServers);
  const items = hypervisors.map((h) => view(req, h, detail, servers.get(h.node.uuid), withServers));
  const out: Record<string, unknown> = { hypervisors: items };
  if (links) {
    const last = hypervisors[hypervisors.length - 1];
    const next = collectionLinks(compute, req, detail ? 'os-hypervisors/detail' : 'os-hypervisors', hypervisors.length, last && (v253 ? last.node.uuid : String(last.node.id)));
    if (next.length > 0) out.hypervisors_links = next;
  }
  return out;
}

/** The hypervisor named in a URL: a uuid from 2.53 (else 400), an integer before (else 404). */
async function hypervisorFor(compute: ComputeService, req: FastifyRequest, id: string): Promise<Hypervisor> {
  const missing = notFound(`Hypervisor with ID '${id}' could not be found.`);
  let key: { id: number } | { uuid: string };
  if (atLeast(req, '2.53')) {
    if (!isUuid(id)) throw badRequest(`Invalid uuid ${id}`);
    key = { uuid: id };
  } else {
    if (!/^\s*[-+]?\d+\s*$/.test(id)) throw missing;
    key = { id: Number(id) };
  }
  const hypervisor = await getHypervisor(compute.db, compute.config.compute, key);
  if (!hypervisor) throw missing;
  return hypervisor;
}

/** The `search` and `servers` routes before 2.53: hypervisors whose hostname contains the pattern. */
async function byPattern(compute: ComputeService, req: FastifyRequest, pattern: string, rule: string, withServers: boolean): Promise<unknown> {
  if (atLeast(req, '2.53')) throw notFound('The resource could not be found.');
  authorize(compute, contextOf(req), rule);
  const hypervisors = (await listHypervisors(compute.db, compute.config.compute, { pattern })) ?? [];
  if (hypervisors.length === 0) throw noMatch(pattern);
  const servers = await serversFor(compute, hypervisors, withServers);
  return { hypervisors: hypervisors.map((h) => view(req, h, false, servers.get(h.node.uuid), false)) };
}

/** Registers `/os-hypervisors`. */
export function registerHypervisors(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/os-hypervisors', async (req) => list(compute, req, false));
  app.get('/v2.1/os-hypervisors/detail', async (req) => list(compute, req, true));

  app.get('/v2.1/os-hypervisors/statistics', async (req) => {
    if (atLeast(req, '2.88')) throw notFound('The resource could not be found.');
    authorize(compute, contextOf(req), 'os-hypervisors:statistics');
    return { hypervisor_statistics: await hypervisorStatistics(compute.db, compute.config.compute) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-hypervisors/:id', async (req) => {
    authorize(compute, contextOf(req), 'os-hypervisors:show');
    const v253 = atLeast(req, '2.53');
    checkQueryKeys(req, ['with_servers'], v253);
    const withServers = withServersParam(req);
    const hypervisor = await hypervisorFor(compute, req, req.params.id);
    const servers = withServers ? await serversOnHost(compute.db, hypervisor.node.host) : undefined;
    return { hypervisor: view(req, hypervisor, true, servers, withServers) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-hypervisors/:id/uptime', async (req) => {
    if (atLeast(req, '2.88')) throw notFound('The resource could not be found.');
    authorize(compute, contextOf(req), 'os-hypervisors:uptime');
    const hypervisor = await hypervisorFor(compute, req, req.params.id);
    return { hypervisor: { ...view(req, hypervisor, false, undefined, false), uptime: hostUptime() } };
  });

  app.get<{ Params: { id: string } }>('/v2.1/os-hypervisors/:id/search', async (req) => byPattern(compute, req, req.params.id, 'os-hypervisors:search', false));
  app.get<{ Params: { id: string } }>('/v2.1/os-hypervisors/:id/servers', async (req) => byPattern(compute, req, req.params.id, 'os-hypervisors:servers', true));
}
