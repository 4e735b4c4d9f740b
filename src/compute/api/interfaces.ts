import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { RemoteError } from '../../core/bus/index.js';
import { atLeast, contextOf, type ComputeService } from '../compute.js';
import { isUuid, parseJson } from '../common.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, ComputeError, conflict, notFound } from '../errors.js';
import { loadInstanceFor } from '../instances.js';
import { AgentRpc, type NetworkInfo } from '../rpc.js';
import { checkLock, recordFor, toAgent } from './action-common.js';
import { checkObject, invalidField, notOfType } from './nova-input.js';
import { checkActionState } from '../instances.js';

/**
 * `/servers/{id}/os-interface`: a server's ports (list and show read the
 * network service), attach (a port given, or a new one on a network, made
 * and plugged by the server's host before the answer) and detach (the host
 * unplugs it; a port compute made is deleted, a given one unbound).
 */

interface Port {
  id: string;
  network_id: string;
  mac_address: string;
  status: string;
  device_id: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
}

function view(req: FastifyRequest, port: Port, tag: string | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { net_id: port.network_id, port_id: port.id, mac_addr: port.mac_address, port_state: port.status, fixed_ips: port.fixed_ips.map((ip) => ({ subnet_id: ip.subnet_id, ip_address: ip.ip_address })) };
  if (atLeast(req, '2.70')) out.tag = tag ?? null;
  return out;
}

function tagOf(instance: InstanceRow, portId: string): string | null {
  return parseJson<NetworkInfo>(instance.network_info, []).find((v) => v.port_id === portId)?.tag ?? null;
}

async function network<T>(compute: ComputeService, ctx: RequestContext, method: string, path: string): Promise<{ status: number; body: T }> {
  return compute.client.request<T>('network', method, path, { userToken: ctx.authToken });
}

/** Reads the attach body as its microversion's schema says. */
function readAttach(req: FastifyRequest): { netId: string | null; portId: string | null; ip: string | null; tag: string | null } {
  const body = req.body ?? null;
  if (body === null) return { netId: null, portId: null, ip: null, tag: null };
  checkObject(body, null, [], ['interfaceAttachment']);
  const a = checkObject((body as Record<string, unknown>).interfaceAttachment, 'interfaceAttachment', [], ['net_id', 'port_id', 'fixed_ips', ...(atLeast(req, '2.49') ? ['tag'] : [])]);
  for (const key of ['net_id', 'port_id'] as const) {
    if (a[key] !== undefined && !isUuid(a[key])) throw invalidField(key, a[key], `'${String(a[key])}' is not a 'uuid'`);
  }
  let ip: string | null = null;
  if (a.fixed_ips !== undefined) {
    if (!Array.isArray(a.fixed_ips)) throw invalidField('fixed_ips', a.fixed_ips, notOfType(a.fixed_ips, 'array'));
    if (a.fixed_ips.length > 1) throw invalidField('fixed_ips', a.fixed_ips, `${JSON.stringify(a.fixed_ips)} is too long`);
    const first = a.fixed_ips[0];
    if (first !== undefined) {
      const entry = checkObject(first, 'fixed_ips', ['ip_address'], ['ip_address']);
      if (typeof entry.ip_address !== 'string' || !/^[0-9a-fA-F.:]+$/.test(entry.ip_address)) throw invalidField('ip_address', entry.ip_address, `'${String(entry.ip_address)}' is not a 'ip-address'`);
      ip = entry.ip_address;
    }
  }
  let tag: string | null = null;
  if (a.tag !== undefined) {
    if (typeof a.tag !== 'string' || a.tag.length > 60 || /[,/]/.test(a.tag)) throw invalidField('tag', a.tag, `'${String(a.tag)}' does not match "^[^,/]*$"`);
    tag = a.tag;
  }
  return { netId: (a.net_id as string | undefined) ?? null, portId: (a.port_id as string | undefined) ?? null, ip, tag };
}

/**
 * Checks what is asked before the host is: the port exists and is free, the
 * network exists (or the project has exactly one), as Nova's network API
 * answers (404, 409 `Port X is still in use.`, 400).
 */
async function checkAttachable(compute: ComputeService, ctx: RequestContext, instance: InstanceRow, ask: { netId: string | null; portId: string | null }): Promise<string | null> {
  if (ask.portId) {
    const port = await network<{ port?: Port }>(compute, ctx, 'GET', `/v2.0/ports/${ask.portId}`);
    if (port.status === 404 || !port.body.port) throw notFound(`Port id ${ask.portId} could not be found.`);
    if (port.body.port.device_id) throw conflict(`Port ${ask.portId} is still in use.`);
    return null;
  }
  if (ask.netId) {
    const net = await network<{ network?: { id: string } }>(compute, ctx, 'GET', `/v2.0/networks/${ask.netId}`);
    if (net.status === 404 || !net.body.network) throw notFound(`Network ${ask.netId} could not be found.`);
    return ask.netId;
  }
  const nets = await network<{ networks?: { id: string; shared?: boolean }[] }>(compute, ctx, 'GET', `/v2.0/networks?project_id=${instance.project_id}`);
  const own = nets.body.networks ?? [];
  const candidates = own.length > 0 ? own : ((await network<{ networks?: { id: string }[] }>(compute, ctx, 'GET', '/v2.0/networks?shared=true')).body.networks ?? []);
  if (candidates.length === 0) throw badRequest(`No specific network was requested and none are available for project '${instance.project_id}'.`);
  if (candidates.length > 1) throw badRequest('More than one possible network found. Specify network ID(s) to select which one(s) to connect to.');
  return candidates[0]?.id ?? null;
}

async function showPort(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, portId: string): Promise<Record<string, unknown>> {
  const res = await network<{ port?: Port }>(compute, ctx, 'GET', `/v2.0/ports/${encodeURIComponent(portId)}`);
  if (res.status === 404 || !res.body.port) throw notFound(`Port id ${portId} could not be found.`);
  if (res.status === 403) throw new ComputeError(403, `Policy doesn't allow showing port ${portId}.`);
  if (res.body.port.device_id !== instance.uuid) throw notFound(`Instance ${instance.uuid} does not have a port with id ${portId}`);
  return view(req, res.body.port, tagOf(instance, portId));
}

type ServerParams = { Params: { server_id: string } };
type PortParams = { Params: { server_id: string; port_id: string } };

/** Registers `/servers/{id}/os-interface`. */
export function registerInterfaces(app: FastifyInstance, compute: ComputeService): void {
  app.get<ServerParams>('/v2.1/servers/:server_id/os-interface', async (req) => {
    const ctx = contextOf(req);
    const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'os-attach-interfaces:list');
    const res = await network<{ ports?: Port[] }>(compute, ctx, 'GET', `/v2.0/ports?device_id=${instance.uuid}`);
    return { interfaceAttachments: (res.body.ports ?? []).map((p) => view(req, p, tagOf(instance, p.id))) };
  });

  app.get<PortParams>('/v2.1/servers/:server_id/os-interface/:port_id', async (req) => {
    const ctx = contextOf(req);
    const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'os-attach-interfaces:show');
    return { interfaceAttachment: await showPort(compute, req, ctx, instance, req.params.port_id) };
  });

  app.post<ServerParams>('/v2.1/servers/:server_id/os-interface', async (req) => {
    const ctx = contextOf(req);
    const ask = readAttach(req);
    const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'os-attach-interfaces:create');
    if (ask.netId && ask.portId) throw badRequest('Must not input both network_id and port_id');
    if (ask.ip && !ask.netId) throw badRequest('Must input network_id when request IP address');
    checkLock(compute, ctx, instance);
    checkActionState(instance, 'attach_interface');
    if (!instance.host) throw conflict(`Instance ${instance.uuid} is not ready: it has no host.`);
    const networkId = await checkAttachable(compute, ctx, instance, ask);
    const actionId = await recordFor(compute, req, ctx, instance, 'attach_interface');
    let portId: string;
    try {
      portId = await new AgentRpc(compute.bus).attachInterface(instance.host, { instance_uuid: instance.uuid, action: { kind: 'attach_interface', network_id: networkId, port_id: ask.portId, fixed_ip: ask.ip, tag: ask.tag }, action_id: actionId });
    } catch (err) {
      compute.log.warn({ err, instance_uuid: instance.uuid }, 'interface attach failed');
      const message = err instanceof RemoteError ? err.message : '';
      if (/already allocated|IpAddressAlreadyAllocated|in use/i.test(message) && ask.ip) throw conflict(`Fixed IP address ${ask.ip} is already in use on instance ${instance.uuid}.`);
      if (/IpAddressGenerationFailure|No more IP addresses/i.test(message)) throw badRequest(`Zero fixed IPs could be found.`);
      throw new ComputeError(500, `Failed to attach network adapter device to ${instance.uuid}`);
    }
    const fresh = await loadInstanceFor(compute, ctx, instance.uuid, 'os-attach-interfaces:show');
    return { interfaceAttachment: await showPort(compute, req, ctx, fresh, portId) };
  });

  app.delete<PortParams>('/v2.1/servers/:server_id/os-interface/:port_id', async (req, reply) => {
    const ctx = contextOf(req);
    const instance = await loadInstanceFor(compute, ctx, req.params.server_id, 'os-attach-interfaces:delete');
    checkLock(compute, ctx, instance);
    checkActionState(instance, 'detach_interface');
    const portId = req.params.port_id;
    // Nova's host answers this after a 202; here the cache says it before anything is asked of the host.
    if (!parseJson<NetworkInfo>(instance.network_info, []).some((v) => v.port_id === portId)) throw notFound(`Port id ${portId} could not be found.`);
    await toAgent(compute, req, ctx, instance, 'detach_interface', { kind: 'detach_interface', port_id: portId });
    return reply.code(202).send();
  });
}

