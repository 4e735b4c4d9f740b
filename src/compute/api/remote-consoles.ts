import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { createConsoleToken, lookupConsoleToken, novncAccessUrl } from '../consoles/console-tokens.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, ComputeError, conflict, invalidState, notFound } from '../errors.js';
import { loadInstanceFor } from '../instances.js';
import { AgentRpc } from '../rpc.js';
import type { ActionHandler } from './action-common.js';
import { bodyOf, checkObject, invalidField, pyRepr, requireVersion } from './nova-input.js';

/**
 * Remote consoles (Nova's `os-remote-consoles` and `os-console-auth-tokens`):
 * `POST /servers/{id}/remote-consoles` (2.6+), the older actions
 * `os-getVNCConsole` & co. (2.1 to 2.5), and `GET
 * /os-console-auth-tokens/{token}` (admin, 2.31+). Only VNC through noVNC is
 * offered: SPICE, serial, RDP and MKS consoles answer Nova's 400 for a
 * console type that is not enabled.
 *
 * A console URL carries a new one-time token (see consoles/console-tokens.ts)
 * for the address the server's host reports for its VNC server; the console
 * proxy (consoles/novnc-proxy.ts) trades it for a connection there.
 */

/** vm_states in which a server's guest runs (and so has a VNC server). */
const RUNNING_STATES = new Set(['active', 'paused', 'rescued', 'resized']);
/** task_states Nova refuses consoles in (`reject_instance_state`). */
const REFUSED_TASKS = new Set(['deleting', 'migrating']);

const PROTOCOLS_V26 = ['vnc', 'spice', 'serial', 'rdp'];
const TYPES_V26 = ['novnc', 'xvpvnc', 'spice-html5', 'serial', 'rdp-html5'];

/** The console page URL tokens are appended to (`compute.vnc.base_url`, or the proxy on the public host). */
export function novncBaseUrl(compute: ComputeService): string {
  const vnc = compute.config.compute.vnc;
  return vnc.base_url || `http://${compute.config.public_host}:${vnc.proxy_port}/vnc_lite.html`;
}

/**
 * Gets a console of `protocol`/`type` for a server and returns its URL.
 * Nova's order: no host yet is 409 `not ready`, a task it refuses is 409,
 * then the console type (400 when it is not enabled or does not fit the
 * protocol), then the host (400 `Unavailable console type vnc.` when its
 * driver has no VNC server for the server). Unlike Nova, a server whose
 * guest does not run (stopped, suspended, ...) is a 409 rather than a URL
 * that cannot connect.
 */
async function consoleUrl(compute: ComputeService, instance: InstanceRow, protocol: string, type: string): Promise<string> {
  if (!instance.host || instance.vm_state === 'building') throw conflict(`Instance ${instance.uuid} is not ready`);
  if (instance.task_state !== null && REFUSED_TASKS.has(instance.task_state)) throw invalidState('task_state', instance.task_state, 'get_vnc_console', instance.uuid);
  if (protocol === 'rdp') throw badRequest('Unavailable console type rdp.');
  // Only VNC is there: the others are "not enabled", reported with the type asked.
  if (protocol !== 'vnc' || !compute.config.compute.vnc.enabled) throw badRequest(`Unavailable console type ${type}.`);
  if (type !== 'novnc') throw badRequest(`Invalid console type ${type}`);
  // A guest that does not run has no VNC server (Nova would hand out a URL that cannot connect).
  if (!RUNNING_STATES.has(instance.vm_state)) throw invalidState('vm_state', instance.vm_state, 'get_vnc_console', instance.uuid);
  const endpoint = await new AgentRpc(compute.bus).vncConsole(instance.host, instance.uuid);
  if (!endpoint) throw badRequest('Unavailable console type vnc.');
  const base = novncBaseUrl(compute);
  const { token } = await createConsoleToken(compute.db, { instanceUuid: instance.uuid, consoleType: 'novnc', host: endpoint.host, port: endpoint.port, accessUrlBase: base }, compute.config.compute.vnc.token_ttl);
  compute.log.info({ instance_uuid: instance.uuid, console_type: 'novnc' }, 'console token handed out');
  return novncAccessUrl(base, token);
}

/** jsonschema's `'x' is not one of [...]`. */
function notOneOf(value: unknown, allowed: string[]): string {
  return `${pyRepr(value, true)} is not one of ${pyRepr(allowed)}`;
}

/** Checks a string member against an enum, as Nova's schemas do. */
function checkEnum(name: string, value: unknown, allowed: string[]): string {
  if (typeof value !== 'string') throw invalidField(name, value, `${pyRepr(value, true)} is not of type 'string'`);
  if (!allowed.includes(value)) throw invalidField(name, value, notOneOf(value, allowed));
  return value;
}

/**
 * One of the older console actions (2.1 to 2.5; later: 404): `{type}` is
 * checked against the action's types, and the answer is `{console: {type, url}}`.
 */
function legacyAction(action: string, protocol: string, types: string[]): ActionHandler {
  return async (compute, _placement, req, ctx, instance, arg) => {
    if (atLeast(req, '2.6')) throw new ComputeError(404, 'The resource could not be found.');
    // RDP went with Hyper-V: the action takes anything and answers a bare 400.
    if (protocol === 'rdp') throw badRequest('The server could not comply with the request since it is either malformed or otherwise incorrect.');
    const body = checkObject(arg, action, ['type'], ['type']);
    const type = checkEnum('type', body.type, types);
    authorize(compute, ctx, 'os-remote-consoles', { project_id: instance.project_id });
    const url = await consoleUrl(compute, instance, protocol, type);
    return { status: 200, body: { console: { type, url } } };
  };
}

/** The console actions of `POST /servers/{id}/action`. */
export const CONSOLE_ACTIONS: Record<string, ActionHandler> = {
  'os-getVNCConsole': legacyAction('os-getVNCConsole', 'vnc', ['novnc', 'xvpvnc']),
  'os-getSPICEConsole': legacyAction('os-getSPICEConsole', 'spice', ['spice-html5']),
  'os-getSerialConsole': legacyAction('os-getSerialConsole', 'serial', ['serial']),
  'os-getRDPConsole': legacyAction('os-getRDPConsole', 'rdp', ['rdp-html5']),
};

/** The body of `POST /servers/{id}/remote-consoles` as the request's microversion allows it. */
function remoteConsoleBody(req: FastifyRequest): { protocol: string; type: string } {
  const body = checkObject(bodyOf(req), null, ['remote_console'], ['remote_console']);
  const rc = checkObject(body.remote_console, 'remote_console', ['protocol', 'type'], ['protocol', 'type']);
  const mks = atLeast(req, '2.8');
  const protocol = checkEnum('protocol', rc.protocol, mks ? [...PROTOCOLS_V26, 'mks'] : PROTOCOLS_V26);
  const type = checkEnum('type', rc.type, mks ? [...TYPES_V26, 'webmks'] : TYPES_V26);
  return { protocol, type };
}

async function createRemoteConsole(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, id: string): Promise<unknown> {
  requireVersion(req, '2.6');
  const { protocol, type } = remoteConsoleBody(req);
  const instance = await loadInstanceFor(compute, ctx, id, 'servers:show');
  authorize(compute, ctx, 'os-remote-consoles', { project_id: instance.project_id });
  const url = await consoleUrl(compute, instance, protocol, type);
  return { remote_console: { protocol, type, url } };
}

/** `POST /servers/{id}/remote-consoles` and `GET /os-console-auth-tokens/{token}`. */
export function registerRemoteConsoles(app: FastifyInstance, compute: ComputeService): void {
  app.post<{ Params: { id: string } }>('/v2.1/servers/:id/remote-consoles', async (req) => createRemoteConsole(compute, req, contextOf(req), req.params.id));

  app.get<{ Params: { token: string } }>('/v2.1/os-console-auth-tokens/:token', async (req) => {
    // Before 2.31 only RDP tokens could be shown, and RDP is gone: Nova answers a bare 400.
    if (!atLeast(req, '2.31')) throw badRequest('The server could not comply with the request since it is either malformed or otherwise incorrect.');
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-console-auth-tokens');
    const token = req.params.token;
    if (!token) throw badRequest('token not provided');
    const info = await lookupConsoleToken(compute.db, token);
    if (!info) throw notFound('Token not found');
    return { console: { instance_uuid: info.instanceUuid, host: info.host, port: info.port, internal_access_path: info.internalAccessPath } };
  });
}
