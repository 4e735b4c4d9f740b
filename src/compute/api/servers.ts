import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { atLeast, authorize, contextOf, isAdmin, type ComputeService } from '../compute.js';
import { isoNow, parseJson } from '../common.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, ComputeError, conflict } from '../errors.js';
import { loadInstanceFor, recordAction } from '../instances.js';
import type { ComputePlacement } from '../placement.js';
import { AgentRpc, type NetworkInfo } from '../rpc.js';
import { createServers } from '../server-create.js';
import { removeServerVolumes, VolumeApi } from '../volume-api.js';
import { addresses, canonicalIpv6, changedServerView, checkAccessIps, diskConfigOf, links, loadServerExtras, serverView, withServerGroups } from '../server-views.js';
import { statesForStatus } from '../vm-states.js';
import { invalidField, isObject, notOfType, timeParam, unexpected } from './nova-input.js';

function query(req: FastifyRequest): Record<string, string> {
  const q = req.query as Record<string, string | string[]>;
  return Object.fromEntries(Object.entries(q).map(([k, v]) => [k, Array.isArray(v) ? (v[v.length - 1] ?? '') : v]));
}

/** The servers of a list request, filtered, sorted and paged in SQL. */
async function listServers(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, detail: boolean): Promise<{ rows: InstanceRow[]; limit: number }> {
  const q = query(req);
  const admin = isAdmin(compute, ctx);
  const allTenants = q.all_tenants !== undefined && !['0', 'false', 'False'].includes(q.all_tenants);
  authorize(compute, ctx, detail ? 'servers:detail' : 'servers:index', { project_id: ctx.projectId });
  if (allTenants) authorize(compute, ctx, detail ? 'servers:detail:get_all_tenants' : 'servers:index:get_all_tenants', { project_id: ctx.projectId });
  let sql = compute.db.selectFrom('instance').selectAll();
  // As in Nova, a project filter counts only with all_tenants: without it an admin lists its own project.
  const project = admin && allTenants ? (q.project_id ?? q.tenant_id) : undefined;
  if (project) sql = sql.where('project_id', '=', project);
  else if (!allTenants) sql = sql.where('project_id', '=', ctx.projectId ?? '');
  const since = q['changes-since'];
  if (since !== undefined) {
    sql = sql.where('updated_at', '>=', timeParam('changes-since', since));
  }
  const before = q['changes-before'];
  if (before !== undefined && atLeast(req, '2.66')) sql = sql.where('updated_at', '<=', timeParam('changes-before', before));
  const showDeleted = since !== undefined || (admin && ['true', 'True', '1'].includes(q.deleted ?? ''));
  if (!showDeleted) sql = sql.where('deleted', '=', 0);
  if (q.status !== undefined) {
    const states = statesForStatus(q.status);
    if (!states) return { rows: [], limit: 0 };
    sql = sql.where('vm_state', 'in', states.vmStates);
    if (states.taskStates) sql = sql.where('task_state', 'in', states.taskStates);
  }
  if (q.image !== undefined) sql = sql.where('image_ref', '=', q.image.split('/').pop() ?? '');
  if (q.reservation_id !== undefined) sql = sql.where('reservation_id', '=', q.reservation_id);
  if (q.availability_zone !== undefined) sql = sql.where('availability_zone', '=', q.availability_zone);
  if (q.key_name !== undefined) sql = sql.where('key_name', '=', q.key_name);
  if (admin && q.host !== undefined) sql = sql.where('host', '=', q.host);
  if (admin && q.node !== undefined) sql = sql.where('node', '=', q.node);
  if (admin && q.user_id !== undefined) sql = sql.where('user_id', '=', q.user_id);
  if (q.locked !== undefined && atLeast(req, '2.73')) sql = sql.where('locked', '=', ['true', 'True', '1'].includes(q.locked) ? 1 : 0);
  const sortKey = q.sort_key && ['created_at', 'display_name', 'updated_at', 'uuid', 'vm_state', 'task_state', 'power_state', 'host', 'launched_at', 'hostname'].includes(q.sort_key) ? (q.sort_key as 'created_at') : 'created_at';
  const sortDir = q.sort_dir === 'asc' ? 'asc' : 'desc';
  sql = sql.orderBy(sortKey, sortDir).orderBy('uuid', sortDir);
  let rows = await sql.execute();
  if (q.name !== undefined) {
    let re: RegExp;
    try {
      re = new RegExp(q.name);
    } catch {
      re = new RegExp(q.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    }
    rows = rows.filter((r) => re.test(r.display_name));
  }
  if (q.flavor !== undefined) rows = rows.filter((r) => parseJson<{ flavorid?: string }>(r.flavor, {}).flavorid === q.flavor);
  if (q.ip !== undefined || q.ip6 !== undefined) {
    const pattern = new RegExp((q.ip ?? q.ip6 ?? '').replace(/\./g, '\\.'));
    rows = rows.filter((r) => parseJson<NetworkInfo>(r.network_info, []).some((v) => v.fixed_ips.some((ip) => pattern.test(ip.ip_address))));
  }
  if (q.tags !== undefined && atLeast(req, '2.26')) {
    const wanted = q.tags.split(',');
    const tagged = await compute.db.selectFrom('instance_tag').selectAll().where('tag', 'in', wanted).execute();
    rows = rows.filter((r) => wanted.every((t) => tagged.some((x) => x.instance_uuid === r.uuid && x.tag === t)));
  }
  if (q.marker !== undefined) {
    const at = rows.findIndex((r) => r.uuid === q.marker);
    if (at < 0) throw badRequest(`marker [${q.marker}] not found`);
    rows = rows.slice(at + 1);
  }
  const max = compute.config.compute.max_limit;
  let limit = max;
  if (q.limit !== undefined) {
    const n = Number(q.limit);
    if (!Number.isInteger(n) || n < 0) throw badRequest(`Invalid input for query parameters limit. Value: ${q.limit}. '${q.limit}' does not match '^[0-9]*$'`);
    limit = Math.min(n, max);
  }
  return { rows: rows.slice(0, limit), limit: rows.length > limit ? limit : -1 };
}

function nextLink(compute: ComputeService, req: FastifyRequest, path: string, rows: InstanceRow[], limit: number): Record<string, unknown> {
  if (limit < 0 || rows.length === 0) return {};
  const params = new URLSearchParams(query(req));
  params.set('limit', String(limit));
  params.set('marker', rows[rows.length - 1]?.uuid ?? '');
  return { servers_links: [{ rel: 'next', href: `${compute.publicUrl}/v2.1/${path}?${params.toString()}` }] };
}

/** Checks a server update body (`name`, `description`, `accessIPv4/6`, `hostname`). */
function updateValues(req: FastifyRequest, body: unknown): Partial<InstanceRow> {
  if (!isObject(body) || !isObject(body.server)) throw invalidField('server', isObject(body) ? body.server : body, "'server' is a required property");
  const server = body.server;
  const allowed = ['name', 'accessIPv4', 'accessIPv6', 'OS-DCF:diskConfig', ...(atLeast(req, '2.19') ? ['description'] : []), ...(atLeast(req, '2.90') ? ['hostname'] : [])];
  const extra = Object.keys(server).filter((k) => !allowed.includes(k));
  if (extra.length) throw invalidField('server', server, unexpected(extra));
  const values: Partial<InstanceRow> = {};
  if (server.name !== undefined) {
    if (typeof server.name !== 'string') throw invalidField('name', server.name, notOfType(server.name, 'string'));
    if (server.name.length > 255 || server.name.trim() === '' || server.name !== server.name.trim()) throw invalidField('name', server.name, `'${server.name}' does not match the name pattern`);
    values.display_name = server.name;
  }
  if (server.description !== undefined) {
    if (server.description !== null && (typeof server.description !== 'string' || server.description.length > 255)) throw invalidField('description', server.description, notOfType(server.description, 'string'));
    values.display_description = server.description as string | null;
  }
  checkAccessIps(server);
  if (typeof server.accessIPv4 === 'string') values.access_ip_v4 = server.accessIPv4;
  if (typeof server.accessIPv6 === 'string') values.access_ip_v6 = canonicalIpv6(server.accessIPv6);
  if (typeof server.hostname === 'string') values.hostname = server.hostname;
  const diskConfig = diskConfigOf(server);
  if (diskConfig) values.disk_config = diskConfig;
  return values;
}

/**
 * Deletes a server: on its host through the agent, or here when it never
 * got a host or its host is down (Nova's local delete): the claim, ports
 * and records go at once. Locked servers are 409 for non-admins.
 */
export async function deleteServer(compute: ComputeService, placement: ComputePlacement, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, force: boolean): Promise<void> {
  if (instance.locked && !isAdmin(compute, ctx)) throw conflict(`Instance ${instance.uuid} is locked`);
  const actionId = await recordAction(compute.db, instance, force ? 'forceDelete' : 'delete', { requestId: req.requestId, userId: ctx.userId, projectId: ctx.projectId });
  await compute.db.updateTable('instance').set({ task_state: 'deleting', updated_at: isoNow() }).where('uuid', '=', instance.uuid).execute();
  compute.notify('compute.instance.delete.start', { instance_id: instance.uuid });
  // The host as it is now that the delete is marked: the conductor gives no host to a server being deleted, so this is final.
  const current = await compute.db.selectFrom('instance').select(['host', 'node']).where('uuid', '=', instance.uuid).executeTakeFirst();
  if (current) instance = { ...instance, host: current.host, node: current.node };
  const service = instance.host ? await compute.db.selectFrom('service').select(['last_seen_up', 'forced_down']).where('host', '=', instance.host).where('binary', '=', 'nova-compute').executeTakeFirst() : undefined;
  const up = service && !service.forced_down && service.last_seen_up !== null && Date.parse(service.last_seen_up) >= Date.now() - compute.config.compute.service_down_time * 1000;
  if (instance.host && up) {
    await new AgentRpc(compute.bus).terminate(instance.host, { instance_uuid: instance.uuid, action_id: actionId });
    return;
  }
  const vifs = parseJson<NetworkInfo>(instance.network_info, []);
  for (const vif of vifs) {
    const res = vif.preserve_on_delete
      ? await compute.client.request('network', 'PUT', `/v2.0/ports/${vif.port_id}`, { body: { port: { device_id: '', device_owner: '', 'binding:host_id': '' } } })
      : await compute.client.request('network', 'DELETE', `/v2.0/ports/${vif.port_id}`);
    if (res.status >= 400 && res.status !== 404) compute.log.warn({ instance_uuid: instance.uuid, port_id: vif.port_id, status: res.status }, 'could not release a port on local delete');
  }
  await placement.deleteAllocations(instance.uuid);
  // Its volumes are detached, and deleted when marked so (Nova's `_local_cleanup_bdm_volumes`).
  const bdms = await compute.db.selectFrom('block_device_mapping').selectAll().where('instance_uuid', '=', instance.uuid).execute();
  if (bdms.length > 0) await removeServerVolumes(new VolumeApi(compute.client), bdms, compute.log, ctx.authToken);
  // An offloaded server's shelve snapshot goes with it, as on an agent's delete.
  const shelved = await compute.db.selectFrom('instance_system_metadata').select('value').where('instance_uuid', '=', instance.uuid).where('key', '=', 'shelved_image_id').executeTakeFirst();
  if (shelved?.value) {
    const res = await compute.client.request('image', 'DELETE', `/v2/images/${shelved.value}`);
    if (res.status >= 400 && res.status !== 404) compute.log.warn({ instance_uuid: instance.uuid, image_id: shelved.value, status: res.status }, 'could not delete the shelved image on local delete');
  }
  const now = isoNow();
  await compute.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('instance_system_metadata').where('instance_uuid', '=', instance.uuid).execute();
    await trx.updateTable('instance').set({ deleted: 1, deleted_at: now, terminated_at: now, updated_at: now, vm_state: 'deleted', task_state: null, power_state: 0 }).where('uuid', '=', instance.uuid).execute();
    await trx.deleteFrom('virtual_interface').where('instance_uuid', '=', instance.uuid).execute();
    await trx.deleteFrom('instance_group_member').where('instance_uuid', '=', instance.uuid).execute();
    await trx.deleteFrom('instance_tag').where('instance_uuid', '=', instance.uuid).execute();
    await trx.deleteFrom('block_device_mapping').where('instance_uuid', '=', instance.uuid).execute();
  });
  compute.notify('compute.instance.delete.end', { instance_id: instance.uuid });
}

/** `/servers`: create, list, detail, show, update, delete, and `/servers/{id}/ips`. */
export function registerServers(app: FastifyInstance, compute: ComputeService, placement: ComputePlacement): void {
  app.post('/v2.1/servers', async (req, reply) => {
    const ctx = contextOf(req);
    const created = await createServers(compute, req, ctx, req.body);
    const body = isObject(req.body) && isObject(req.body.server) ? req.body.server : {};
    if (body.return_reservation_id === true || body.return_reservation_id === 'True') return reply.code(202).send({ reservation_id: created.reservationId });
    const id = created.uuids[0] ?? '';
    return reply.code(202).send({
      server: { id, links: links(compute, 'servers', id), 'OS-DCF:diskConfig': created.diskConfig, security_groups: created.securityGroups.map((name) => ({ name })), adminPass: created.adminPass },
    });
  });

  app.get('/v2.1/servers', async (req) => {
    const ctx = contextOf(req);
    const { rows, limit } = await listServers(compute, req, ctx, false);
    return { servers: rows.map((r) => ({ id: r.uuid, name: r.display_name, links: links(compute, 'servers', r.uuid) })), ...nextLink(compute, req, 'servers', rows, limit) };
  });

  app.get('/v2.1/servers/detail', async (req) => {
    const ctx = contextOf(req);
    const { rows, limit } = await listServers(compute, req, ctx, true);
    const extras = await loadServerExtras(compute, rows);
    return { servers: rows.map((r) => serverView(compute, req, ctx, r, extras)), ...nextLink(compute, req, 'servers/detail', rows, limit) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id', async (req) => {
    const ctx = contextOf(req);
    const row = await loadInstanceFor(compute, ctx, req.params.id, 'servers:show');
    const extras = await loadServerExtras(compute, [row]);
    return { server: withServerGroups(req, serverView(compute, req, ctx, row, extras), extras, row.uuid) };
  });

  app.put<{ Params: { id: string } }>('/v2.1/servers/:id', async (req) => {
    const ctx = contextOf(req);
    const values = updateValues(req, req.body);
    const row = await loadInstanceFor(compute, ctx, req.params.id, 'servers:update');
    await compute.db.updateTable('instance').set({ ...values, updated_at: isoNow() }).where('uuid', '=', row.uuid).execute();
    const fresh = await loadInstanceFor(compute, ctx, row.uuid, 'servers:show');
    const extras = await loadServerExtras(compute, [fresh]);
    return { server: changedServerView(compute, req, ctx, fresh, extras, 'update') };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id', async (req, reply) => {
    const ctx = contextOf(req);
    const row = await loadInstanceFor(compute, ctx, req.params.id, 'servers:delete');
    await deleteServer(compute, placement, req, ctx, row, false);
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/ips', async (req) => {
    const ctx = contextOf(req);
    const row = await loadInstanceFor(compute, ctx, req.params.id, 'ips:index');
    return { addresses: addresses(parseJson<NetworkInfo>(row.network_info, []), false) };
  });

  app.get<{ Params: { id: string; network: string } }>('/v2.1/servers/:id/ips/:network', async (req) => {
    const ctx = contextOf(req);
    const row = await loadInstanceFor(compute, ctx, req.params.id, 'ips:show');
    const all = addresses(parseJson<NetworkInfo>(row.network_info, []), false);
    const found = all[req.params.network];
    if (!found) throw new ComputeError(404, 'Instance is not a member of specified network');
    return { [req.params.network]: found };
  });
}

