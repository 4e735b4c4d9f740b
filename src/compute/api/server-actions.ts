import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { authorize, contextOf, isAdmin, type ComputeService } from '../compute.js';
import { isoNow, isUuid, newUuid, nextId, parseJson } from '../common.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, ComputeError, conflict } from '../errors.js';
import { embeddedFlavor, loadFlavorFor } from '../flavors.js';
import { checkActionState, loadInstanceFor, recordAction } from '../instances.js';
import type { ComputePlacement } from '../placement.js';
import { AgentRpc, type AgentAction, type EmbeddedFlavor } from '../rpc.js';
import type { ServerAction, TaskState } from '../vm-states.js';
import { deleteServer } from './servers.js';
import { isObject } from './nova-input.js';

/**
 * Moves a server into a task state, but only from the vm and task states the
 * action allows, in one conditional update: a concurrent action that got
 * there first makes this one a 409, never a lost update.
 */
async function beginTask(compute: ComputeService, ctx: RequestContext, instance: InstanceRow, action: ServerAction, task: TaskState, extra: Partial<InstanceRow> = {}): Promise<void> {
  if (instance.locked && !isAdmin(compute, ctx) && action !== 'delete') throw conflict(`Instance ${instance.uuid} is locked`);
  checkActionState(instance, action);
  const result = await compute.db
    .updateTable('instance')
    .set({ task_state: task, updated_at: isoNow(), ...extra })
    .where('uuid', '=', instance.uuid)
    .where('vm_state', '=', instance.vm_state)
    .where((eb) => (instance.task_state === null ? eb('task_state', 'is', null) : eb('task_state', '=', instance.task_state)))
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) throw conflict(`Cannot '${action}' instance ${instance.uuid} while it is in task_state ${instance.task_state ?? 'None'}`);
}

/** Sends an action to the server's host agent. */
async function toAgent(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, name: string, action: AgentAction): Promise<void> {
  if (!instance.host) throw conflict(`Instance ${instance.uuid} is not ready: it has no host.`);
  const actionId = await recordAction(compute.db, instance, name, { requestId: req.requestId, userId: ctx.userId, projectId: ctx.projectId });
  await new AgentRpc(compute.bus).runAction(instance.host, { instance_uuid: instance.uuid, action, action_id: actionId });
}

type Handler = (compute: ComputeService, placement: ComputePlacement, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, arg: unknown) => Promise<{ status: number; body?: unknown; headers?: Record<string, string> }>;

/** A power action: policy, state check, task state, then the agent. */
function power(rule: string, action: ServerAction, task: TaskState, agentAction: AgentAction): Handler {
  return async (compute, _placement, req, ctx, instance) => {
    authorize(compute, ctx, rule, { project_id: instance.project_id });
    await beginTask(compute, ctx, instance, action, task);
    await toAgent(compute, req, ctx, instance, action === 'reboot_soft' || action === 'reboot_hard' ? 'reboot' : action, agentAction);
    return { status: 202 };
  };
}

async function loadImageId(compute: ComputeService, ctx: RequestContext, ref: unknown): Promise<{ id: string; properties: Record<string, unknown> }> {
  const id = typeof ref === 'string' ? (ref.split('/').pop() ?? '') : '';
  if (!isUuid(id)) throw badRequest('Invalid imageRef provided.');
  const res = await compute.client.request<Record<string, unknown>>('image', 'GET', `/v2/images/${id}`, { userToken: ctx.authToken });
  if (res.status >= 400) throw badRequest(`Image ${id} could not be found.`);
  if (res.body.status !== 'active') throw badRequest(`Image ${id} is not active.`);
  return { id, properties: { disk_format: res.body.disk_format, container_format: res.body.container_format } };
}

const ACTIONS: Record<string, Handler> = {
  'os-stop': power('servers:stop', 'stop', 'powering-off', { kind: 'stop' }),
  'os-start': power('servers:start', 'start', 'powering-on', { kind: 'start' }),
  pause: power('os-pause-server:pause', 'pause', 'pausing', { kind: 'pause' }),
  unpause: power('os-pause-server:unpause', 'unpause', 'unpausing', { kind: 'unpause' }),
  suspend: power('os-suspend-server:suspend', 'suspend', 'suspending', { kind: 'suspend' }),
  resume: power('os-suspend-server:resume', 'resume', 'resuming', { kind: 'resume' }),
  unrescue: power('os-unrescue', 'unrescue', 'unrescuing', { kind: 'unrescue' }),

  async reboot(compute, placement, req, ctx, instance, arg) {
    const type = isObject(arg) ? arg.type : undefined;
    if (type !== 'HARD' && type !== 'SOFT' && type !== 'hard' && type !== 'soft') throw badRequest(`Invalid input for field/attribute type. Value: ${String(type)}. '${String(type)}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']`);
    const hard = String(type).toUpperCase() === 'HARD';
    return power('servers:reboot', hard ? 'reboot_hard' : 'reboot_soft', hard ? 'rebooting_hard' : 'rebooting', { kind: 'reboot', hard })(compute, placement, req, ctx, instance, arg);
  },

  async lock(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'os-lock-server:lock', { project_id: instance.project_id });
    const reason = isObject(arg) && typeof arg.locked_reason === 'string' ? arg.locked_reason : null;
    await compute.db.updateTable('instance').set({ locked: 1, locked_by: isAdmin(compute, ctx) && ctx.projectId !== instance.project_id ? 'admin' : 'owner', locked_reason: reason, updated_at: isoNow() }).where('uuid', '=', instance.uuid).execute();
    await recordAction(compute.db, instance, 'lock', { requestId: req.requestId, userId: ctx.userId, projectId: ctx.projectId });
    return { status: 202 };
  },

  async unlock(compute, _p, req, ctx, instance) {
    authorize(compute, ctx, 'os-lock-server:unlock', { project_id: instance.project_id });
    if (instance.locked_by === 'admin' && !isAdmin(compute, ctx)) authorize(compute, ctx, 'os-lock-server:unlock:unlock_override', { project_id: instance.project_id });
    await compute.db.updateTable('instance').set({ locked: 0, locked_by: null, locked_reason: null, updated_at: isoNow() }).where('uuid', '=', instance.uuid).execute();
    await recordAction(compute.db, instance, 'unlock', { requestId: req.requestId, userId: ctx.userId, projectId: ctx.projectId });
    return { status: 202 };
  },

  async rescue(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'os-rescue', { project_id: instance.project_id });
    const ref = isObject(arg) && arg.rescue_image_ref !== undefined ? (await loadImageId(compute, ctx, arg.rescue_image_ref)).id : instance.image_ref;
    const pass = isObject(arg) && typeof arg.adminPass === 'string' ? arg.adminPass : newUuid().slice(0, 12);
    await beginTask(compute, ctx, instance, 'rescue', 'rescuing');
    await toAgent(compute, req, ctx, instance, 'rescue', { kind: 'rescue', image_ref: ref });
    return { status: 200, body: { adminPass: pass } };
  },

  async createImage(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'servers:create_image', { project_id: instance.project_id });
    if (!isObject(arg) || typeof arg.name !== 'string' || arg.name.trim() === '') throw badRequest("Invalid input for field/attribute createImage. Value: None. 'name' is a required property");
    const metadata = isObject(arg.metadata) ? arg.metadata : {};
    checkActionState(instance, 'createImage');
    const source = parseJson<Record<string, unknown>>(instance.image, {});
    const props: Record<string, unknown> = { image_type: 'snapshot', instance_uuid: instance.uuid, base_image_ref: instance.image_ref, user_id: ctx.userId };
    for (const [k, v] of Object.entries(metadata)) props[k] = String(v);
    const created = await compute.client.request<{ id: string }>('image', 'POST', '/v2/images', {
      userToken: ctx.authToken,
      body: { name: arg.name, disk_format: source.disk_format ?? 'qcow2', container_format: source.container_format ?? 'bare', visibility: 'private', ...props },
    });
    if (created.status >= 400) throw new ComputeError(created.status === 413 || created.status === 403 ? 403 : 400, `Could not create the image: ${JSON.stringify(created.body)}`);
    const imageId = created.body.id;
    await beginTask(compute, ctx, instance, 'createImage', 'image_snapshot');
    await toAgent(compute, req, ctx, instance, 'createImage', { kind: 'snapshot', image_id: imageId });
    const location = `${compute.publicUrl}/v2.1/images/${imageId}`;
    return { status: 202, body: { image_id: imageId }, headers: { Location: location } };
  },

  async rebuild(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'servers:rebuild', { project_id: instance.project_id });
    if (!isObject(arg) || arg.imageRef === undefined) throw badRequest("Invalid input for field/attribute rebuild. Value: None. 'imageRef' is a required property");
    const image = await loadImageId(compute, ctx, arg.imageRef);
    const extra: Partial<InstanceRow> = {};
    if (typeof arg.name === 'string') extra.display_name = arg.name;
    await beginTask(compute, ctx, instance, 'rebuild', 'rebuilding', extra);
    await toAgent(compute, req, ctx, instance, 'rebuild', { kind: 'rebuild', image_ref: image.id, image_properties: image.properties, preserve_ephemeral: arg.preserve_ephemeral === true });
    const fresh = await compute.db.selectFrom('instance').selectAll().where('uuid', '=', instance.uuid).executeTakeFirstOrThrow();
    const { loadServerExtras, serverView } = await import('../server-views.js');
    const view = serverView(compute, req, ctx, fresh, await loadServerExtras(compute, [fresh]));
    return { status: 202, body: { server: { ...view, adminPass: typeof arg.adminPass === 'string' ? arg.adminPass : newUuid().slice(0, 12) } } };
  },

  async resize(compute, placement, req, ctx, instance, arg) {
    authorize(compute, ctx, 'servers:resize', { project_id: instance.project_id });
    if (!isObject(arg) || arg.flavorRef === undefined) throw badRequest("Invalid input for field/attribute resize. Value: None. 'flavorRef' is a required property");
    const row = await loadFlavorFor(compute, ctx, arg.flavorRef as string).catch((err: unknown) => {
      throw err instanceof ComputeError && err.status === 404 ? badRequest(err.message) : err;
    });
    const current = parseJson<EmbeddedFlavor>(instance.flavor, {} as EmbeddedFlavor);
    if (row.flavorid === current.flavorid) throw badRequest('When resizing, instances must change flavor!');
    const next = embeddedFlavor(row, row.extra_specs);
    if (next.root_gb < current.root_gb && next.root_gb !== 0) throw badRequest('Resize error: Unable to resize disk down.');
    checkActionState(instance, 'resize');
    if (!instance.host || !instance.node) throw conflict(`Instance ${instance.uuid} has no host.`);
    // Same-host resize: the server's claim grows to the new flavor, the old usage is kept by the migration until confirmed.
    const migrationUuid = newUuid();
    const source = await placement.allocations(instance.uuid);
    const nodeUuid = Object.keys(source)[0];
    if (!nodeUuid) throw conflict(`Instance ${instance.uuid} has no allocation to resize.`);
    await placement.moveAllocations(instance.uuid, migrationUuid, instance.project_id, instance.user_id);
    const resources: Record<string, number> = { VCPU: next.vcpus, MEMORY_MB: next.memory_mb };
    const disk = next.root_gb + next.ephemeral_gb + Math.ceil(next.swap / 1024);
    if (disk > 0) resources.DISK_GB = disk;
    if (!(await placement.claim(instance.uuid, { [nodeUuid]: resources }, instance.project_id, instance.user_id))) {
      await placement.moveAllocations(migrationUuid, instance.uuid, instance.project_id, instance.user_id);
      throw badRequest('No valid host was found. There are not enough hosts available.');
    }
    const now = isoNow();
    await compute.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('migration')
        .values({ id: await nextId(trx, 'migration'), uuid: migrationUuid, instance_uuid: instance.uuid, migration_type: 'resize', status: 'pre-migrating', source_compute: instance.host, source_node: instance.node, dest_compute: instance.host, dest_node: instance.node, dest_host: null, old_flavorid: current.flavorid, new_flavorid: next.flavorid, project_id: instance.project_id, user_id: instance.user_id, created_at: now, updated_at: now })
        .execute();
    });
    await beginTask(compute, ctx, instance, 'resize', 'resize_prep');
    await compute.db.updateTable('migration').set({ status: 'finished', updated_at: isoNow() }).where('uuid', '=', migrationUuid).execute();
    await toAgent(compute, req, ctx, instance, 'resize', { kind: 'resize', migration_uuid: migrationUuid, new_flavor: next, destination: { host: instance.host, node: instance.node, node_uuid: nodeUuid, allocation: { [nodeUuid]: resources } }, same_host: true });
    return { status: 202 };
  },

  async confirmResize(compute, placement, req, ctx, instance) {
    authorize(compute, ctx, 'servers:confirm_resize', { project_id: instance.project_id });
    const migration = await compute.db.selectFrom('migration').selectAll().where('instance_uuid', '=', instance.uuid).where('status', '=', 'finished').orderBy('id', 'desc').executeTakeFirst();
    if (instance.vm_state !== 'resized' || !migration) throw badRequest(`Instance has not been resized.`);
    await beginTask(compute, ctx, instance, 'confirmResize', 'resize_confirming' as TaskState);
    await placement.deleteAllocations(migration.uuid);
    await compute.db.updateTable('migration').set({ status: 'confirmed', updated_at: isoNow() }).where('uuid', '=', migration.uuid).execute();
    await toAgent(compute, req, ctx, instance, 'confirmResize', { kind: 'confirm_resize', migration_uuid: migration.uuid });
    return { status: 204 };
  },

  async revertResize(compute, placement, req, ctx, instance) {
    authorize(compute, ctx, 'servers:revert_resize', { project_id: instance.project_id });
    const migration = await compute.db.selectFrom('migration').selectAll().where('instance_uuid', '=', instance.uuid).where('status', '=', 'finished').orderBy('id', 'desc').executeTakeFirst();
    if (instance.vm_state !== 'resized' || !migration) throw badRequest(`Instance has not been resized.`);
    await beginTask(compute, ctx, instance, 'revertResize', 'resize_reverting');
    await placement.deleteAllocations(instance.uuid);
    await placement.moveAllocations(migration.uuid, instance.uuid, instance.project_id, instance.user_id);
    await compute.db.updateTable('migration').set({ status: 'reverted', updated_at: isoNow() }).where('uuid', '=', migration.uuid).execute();
    await toAgent(compute, req, ctx, instance, 'revertResize', { kind: 'revert_resize', migration_uuid: migration.uuid });
    return { status: 202 };
  },

  async 'os-getConsoleOutput'(compute, _p, _req, ctx, instance, arg) {
    authorize(compute, ctx, 'os-console-output', { project_id: instance.project_id });
    const length = isObject(arg) && arg.length !== undefined && arg.length !== null ? Number(arg.length) : null;
    if (length !== null && (!Number.isInteger(length) || length < -1)) throw badRequest(`Invalid input for field/attribute length. Value: ${String(arg && (arg as Record<string, unknown>).length)}.`);
    if (!instance.host || instance.vm_state === 'building') throw conflict(`Instance ${instance.uuid} is not ready`);
    const output = await new AgentRpc(compute.bus).consoleOutput(instance.host, instance.uuid, length === -1 ? null : length);
    return { status: 200, body: { output } };
  },

  async 'os-resetState'(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'os-admin-actions:reset_state', { project_id: instance.project_id });
    const state = isObject(arg) ? arg.state : undefined;
    if (state !== 'active' && state !== 'error') throw badRequest(`Invalid input for field/attribute state. Value: ${String(state)}. '${String(state)}' is not one of ['active', 'error']`);
    await compute.db.updateTable('instance').set({ vm_state: state, task_state: null, updated_at: isoNow() }).where('uuid', '=', instance.uuid).execute();
    await recordAction(compute.db, instance, 'resetState', { requestId: req.requestId, userId: ctx.userId, projectId: ctx.projectId });
    return { status: 202 };
  },

  async forceDelete(compute, placement, req, ctx, instance) {
    authorize(compute, ctx, 'os-deferred-delete:force', { project_id: instance.project_id });
    await deleteServer(compute, placement, req, ctx, instance, true);
    return { status: 202 };
  },

  async addSecurityGroup(compute, _p, _req, ctx, instance, arg) {
    return changeSecurityGroups(compute, ctx, instance, arg, 'add');
  },

  async removeSecurityGroup(compute, _p, _req, ctx, instance, arg) {
    return changeSecurityGroups(compute, ctx, instance, arg, 'remove');
  },
};

/** Adds or removes a security group on every port of the server (the network service enforces it). */
async function changeSecurityGroups(compute: ComputeService, ctx: RequestContext, instance: InstanceRow, arg: unknown, op: 'add' | 'remove'): ReturnType<Handler> {
  authorize(compute, ctx, op === 'add' ? 'os-security-groups:add' : 'os-security-groups:remove', { project_id: instance.project_id });
  const name = isObject(arg) && typeof arg.name === 'string' ? arg.name.trim() : '';
  if (!name) throw badRequest("Security group name cannot be empty");
  const groups = await compute.client.request<{ security_groups: { id: string; name: string }[] }>('network', 'GET', `/v2.0/security-groups?project_id=${instance.project_id}`, { userToken: ctx.authToken });
  const group = (groups.body.security_groups ?? []).find((g) => g.name === name || g.id === name);
  if (!group) throw new ComputeError(404, `Security group ${name} not found for project ${instance.project_id}.`);
  const ports = await compute.client.request<{ ports: { id: string; security_groups: string[] }[] }>('network', 'GET', `/v2.0/ports?device_id=${instance.uuid}`);
  if ((ports.body.ports ?? []).length === 0) throw badRequest(`Instance ${instance.uuid} has no network ports.`);
  for (const port of ports.body.ports) {
    const has = port.security_groups.includes(group.id);
    if (op === 'add' && has) throw badRequest(`Security group ${name} is already associated with the instance ${instance.uuid}`);
    if (op === 'remove' && !has) throw badRequest(`Security group ${name} not associated with the instance ${instance.uuid}`);
    const next = op === 'add' ? [...port.security_groups, group.id] : port.security_groups.filter((g) => g !== group.id);
    const res = await compute.client.request('network', 'PUT', `/v2.0/ports/${port.id}`, { body: { port: { security_groups: next } } });
    if (res.status >= 400) throw badRequest(`Could not update port ${port.id}: ${res.status}`);
  }
  const names = parseJson<string[]>(instance.security_groups, []);
  const updated = op === 'add' ? [...new Set([...names, group.name])] : names.filter((n) => n !== group.name);
  await compute.db.updateTable('instance').set({ security_groups: JSON.stringify(updated), updated_at: isoNow() }).where('uuid', '=', instance.uuid).execute();
  return { status: 202 };
}

/** `POST /servers/{id}/action`: the body names one action. */
export function registerServerActions(app: FastifyInstance, compute: ComputeService, placement: ComputePlacement): void {
  app.post<{ Params: { id: string } }>('/v2.1/servers/:id/action', async (req, reply) => {
    const ctx = contextOf(req);
    const body = req.body;
    if (!isObject(body) || Object.keys(body).length !== 1) throw badRequest('There is either no action or more than one action in the request body.');
    const [name] = Object.keys(body) as [string];
    const handler = ACTIONS[name];
    if (!handler) throw badRequest(`There is no such action: ${name}`);
    const instance = await loadInstanceFor(compute, ctx, req.params.id, 'servers:show');
    const result = await handler(compute, placement, req, ctx, instance, body[name]);
    for (const [k, v] of Object.entries(result.headers ?? {})) reply.header(k, v);
    return result.body === undefined ? reply.code(result.status).send() : reply.code(result.status).send(result.body);
  });
}
