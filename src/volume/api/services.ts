import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceRow } from '../db/schema.js';
import { badRequest, notFound, VolumeError } from '../errors.js';
import { SchedulerRpc } from '../rpc.js';
import { apiTime, atLeast, authorize, contextOf, now, type VolumeService } from '../volume.js';
import { backendOf, listServices, serviceIsUp, VOLUME_BINARY } from '../volume-services.js';
import { bodyOf, checkKeys, invalidField, notOfType, pyRepr, queryOf, type Obj } from './catalog-input.js';

/**
 * `os-services`: the list (filters `host`, which also matches
 * `host@backend`, and `binary`) with state up/down from the heartbeats,
 * and `PUT /os-services/{action}`: enable, disable, disable-log-reason,
 * freeze, thaw, failover_host/failover (refused: no backend replicates),
 * set-log/get-log (refused: Stratus sets log levels in its configuration).
 */

/** Cinder's `host` filter: the host itself or its backends (`host@...`). */
function matchesHost(row: ServiceRow, host: string): boolean {
  return row.host === host || row.host.startsWith(`${host}@`);
}

async function listView(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:services:index');
  const query = queryOf(req);
  let rows = await listServices(volume, query.binary !== undefined ? { binary: query.binary } : {});
  if (query.host !== undefined) rows = rows.filter((r) => matchesHost(r, query.host ?? ''));
  let backendStates: Map<string, string> | null = null;
  if (atLeast(req, '3.49')) {
    backendStates = new Map();
    try {
      for (const pool of await new SchedulerRpc(volume.bus).getPools()) {
        backendStates.set(backendOf(pool.name), String((pool.capabilities as Record<string, unknown>).backend_state ?? 'up'));
      }
    } catch (err) {
      volume.log.warn({ err }, 'could not ask the scheduler for the pools');
    }
  }
  const at = Date.now();
  const services = rows.map((row) => {
    const view: Record<string, unknown> = {
      binary: row.binary,
      host: row.host,
      zone: row.availability_zone,
      status: Number(row.disabled) === 1 ? 'disabled' : 'enabled',
      state: serviceIsUp(volume, row, at) ? 'up' : 'down',
      updated_at: apiTime(row.last_seen_up ?? row.updated_at ?? row.created_at),
    };
    if (backendStates && row.binary === VOLUME_BINARY) view.backend_state = backendStates.get(row.host) ?? null;
    if (atLeast(req, '3.7')) view.cluster = null;
    view.disabled_reason = row.disabled_reason;
    if (row.binary === VOLUME_BINARY) {
      view.replication_status = 'not-capable';
      view.active_backend_id = null;
      view.frozen = Number(row.frozen) === 1;
    }
    return view;
  });
  return { services };
}

const CINDER_HOST = /^[a-zA-Z0-9-._#@:/+[\]]*$/;

/** The `enable_and_disable` schema (with `disabled_reason` for disable-log-reason). */
function parseEnableBody(body: Obj, withReason: boolean): { host: string; service: string; binary: string; reason: string | undefined } {
  checkKeys(body, null, ['binary', 'host', 'cluster', 'service', ...(withReason ? ['disabled_reason'] : [])]);
  for (const key of ['binary', 'service'] as const) {
    const v = body[key];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw invalidField(key, v, notOfType(v, 'string'));
    if (v.length < 1) throw invalidField(key, v, `'' is too short`);
    if (v.length > 255) throw invalidField(key, v, `${pyRepr(v)} is too long`);
  }
  const host = body.host;
  if (host !== undefined && host !== null) {
    if (typeof host !== 'string') throw invalidField('host', host, notOfType(host, 'string', 'null'));
    if (host.length < 1) throw invalidField('host', host, `'' is too short`);
    if (host.length > 255) throw invalidField('host', host, `${pyRepr(host)} is too long`);
    if (!CINDER_HOST.test(host)) throw invalidField('host', host, `${pyRepr(host)} does not match '${CINDER_HOST.source}'`);
  }
  if (body.binary === undefined && body.service === undefined) throw badRequest(`${pyRepr(body)} is not valid under any of the given schemas`);
  let reason: string | undefined;
  if (withReason && body.disabled_reason !== undefined) {
    const r = body.disabled_reason;
    if (typeof r !== 'string') throw invalidField('disabled_reason', r, notOfType(r, 'string'));
    if (r.trim().length < 1) throw badRequest('Invalid input received: disabled_reason has a length outside 1-255 after removing whitespaces.');
    if (r.length > 255) throw invalidField('disabled_reason', r, `${pyRepr(r)} is too long`);
    reason = r.trim();
  }
  if (!host) throw badRequest('Invalid input received: Host field is missing.');
  return { host, service: (body.service as string | undefined) ?? '', binary: (body.binary as string | undefined) ?? '', reason };
}

async function setEnabled(volume: VolumeService, body: Obj, action: 'enable' | 'disable' | 'disable-log-reason'): Promise<unknown> {
  const { host, service, binary, reason } = parseEnableBody(body, action === 'disable-log-reason');
  const binaryKey = binary || service;
  const row = await volume.db.selectFrom('service').select('id').where('host', '=', host).where('binary', '=', binaryKey).executeTakeFirst();
  if (!row) throw notFound(`Service ${binaryKey} could not be found on host ${host}.`);
  const disabled = action !== 'enable';
  await volume.db
    .updateTable('service')
    .set({ disabled: disabled ? 1 : 0, ...(action === 'enable' ? { disabled_reason: null } : {}), ...(action === 'disable-log-reason' ? { disabled_reason: reason ?? null } : {}) })
    .where('id', '=', row.id)
    .execute();
  const out: Record<string, unknown> = { disabled, status: disabled ? 'disabled' : 'enabled', host, service, binary };
  if (action === 'enable') out.disabled_reason = null;
  if (action === 'disable-log-reason') out.disabled_reason = reason ?? null;
  return out;
}

/** The host of freeze, thaw and failover (`cluster` is accepted from 3.26 but Stratus has no clusters). */
function replicationHost(req: FastifyRequest, body: Obj, allowed: string[]): string {
  checkKeys(body, null, allowed);
  for (const key of ['cluster', 'backend_id']) {
    const v = body[key];
    if (v !== undefined && v !== null && typeof v !== 'string') throw invalidField(key, v, notOfType(v, 'string', 'null'));
  }
  const host = body.host;
  if (host !== undefined && host !== null && (typeof host !== 'string' || !CINDER_HOST.test(host) || host.length < 1 || host.length > 255)) {
    throw invalidField('host', host, typeof host === 'string' ? `${pyRepr(host)} does not match '${CINDER_HOST.source}'` : notOfType(host, 'string', 'null'));
  }
  const clustered = atLeast(req, '3.26');
  const cluster = clustered ? body.cluster : undefined;
  if (Boolean(cluster) === Boolean(host)) throw badRequest(`Invalid input received: ${clustered ? 'One and only one of cluster and host must be set.' : 'Host field is missing.'}`);
  if (cluster) throw badRequest(`Invalid input received: No service found with cluster=${String(cluster)}`);
  return host as string;
}

/** Freeze (or thaw) the volume services of `host`: frozen and disabled (`frozen`), or back. */
async function freezeOrThaw(volume: VolumeService, host: string, freeze: boolean): Promise<void> {
  const rows = (await listServices(volume, { binary: VOLUME_BINARY })).filter((r) => matchesHost(r, host));
  if (rows.length === 0) throw badRequest(`Invalid input received: No service found with host=${host}`);
  const changed = await volume.db
    .updateTable('service')
    .set(freeze ? { frozen: 1, disabled: 1, disabled_reason: 'frozen', updated_at: now() } : { frozen: 0, disabled: 0, disabled_reason: '', updated_at: now() })
    .where('id', 'in', rows.map((r) => r.id))
    .where('frozen', '=', freeze ? 0 : 1)
    .executeTakeFirst();
  if (Number(changed.numUpdatedRows) === 0) {
    throw badRequest(`Invalid input received: No service could be changed: frozen in [${rows.map((r) => `'${r.host}'`).join(', ')}] must be ${freeze ? 'False' : 'True'} to failover.`);
  }
}

async function update(volume: VolumeService, req: FastifyRequest<{ Params: { action: string } }>, reply: FastifyReply): Promise<unknown> {
  authorize(volume, contextOf(req), 'volume_extension:services:update');
  const action = req.params.action;
  const body = bodyOf(req.body ?? {});
  switch (action) {
    case 'enable':
    case 'disable':
    case 'disable-log-reason':
      return setEnabled(volume, body, action);
    case 'freeze':
    case 'thaw': {
      authorize(volume, contextOf(req), action === 'freeze' ? 'volume:freeze_host' : 'volume:thaw_host');
      await freezeOrThaw(volume, replicationHost(req, body, ['cluster', 'host']), action === 'freeze');
      return reply.code(200).send();
    }
    case 'failover_host':
    case 'failover': {
      if (action === 'failover' && !atLeast(req, '3.26')) break;
      authorize(volume, contextOf(req), 'volume:failover_host');
      const host = replicationHost(req, body, ['cluster', 'host', 'backend_id']);
      const rows = (await listServices(volume, { binary: VOLUME_BINARY })).filter((r) => matchesHost(r, host));
      if (rows.length === 0) throw badRequest(`Invalid input received: No service found with host=${host}`);
      throw badRequest(`Invalid input received: No service could be changed: replication_status in [${rows.map((r) => `'${r.host}'`).join(', ')}] must be enabled or failed-over and must be up to failover.`);
    }
    case 'set-log':
    case 'get-log':
      if (!atLeast(req, '3.32')) break;
      throw new VolumeError(501, 'Changing log levels through the API is not supported: set log.level in the Stratus configuration.');
    default:
      break;
  }
  throw badRequest('Invalid input received: Unknown action');
}

/** Registers `os-services`. */
export function registerServices(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/os-services', async (req) => listView(volume, req));
  app.put<{ Params: { action: string } }>('/v3/os-services/:action', async (req, reply) => update(volume, req, reply));
}
