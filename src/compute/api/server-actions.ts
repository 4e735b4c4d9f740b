import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { atLeast, authorize, contextOf, isAdmin, type ComputeService } from '../compute.js';
import { isoNow, isUuid, newUuid, parseJson } from '../common.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, ComputeError, conflict } from '../errors.js';
import { checkActionState, loadInstanceFor, recordAction } from '../instances.js';
import type { ComputePlacement } from '../placement.js';
import { AgentRpc, type AgentAction } from '../rpc.js';
import type { ServerAction, TaskState } from '../vm-states.js';
import { beginTask, toAgent, type ActionHandler, type ActionResult } from './action-common.js';
import { MOVE_ACTIONS } from './server-moves.js';
import { CONSOLE_ACTIONS } from './remote-consoles.js';
import { deleteServer } from './servers.js';
import { isObject } from './nova-input.js';
import { addFloatingIp, removeFloatingIp } from './floating-ips.js';
import { validateMetadata } from './server-metadata.js';
import { rebuildChanges, replaceMetadata, restoreServer } from './rebuild-values.js';

type Handler = ActionHandler;

/** A power action: policy, state check, task state, then the agent. */
function power(rule: string, action: ServerAction, task: TaskState, agentAction: AgentAction): Handler {
  return async (compute, _placement, req, ctx, instance) => {
    authorize(compute, ctx, rule, { project_id: instance.project_id });
    await beginTask(compute, ctx, instance, action, task);
    await toAgent(compute, req, ctx, instance, action === 'reboot_soft' || action === 'reboot_hard' ? 'reboot' : action, agentAction);
    return { status: 202 };
  };
}

async function loadImageId(compute: ComputeService, ctx: RequestContext, ref: unknown): Promise<{ id: string; properties: Record<string, unknown>; stableRescue: boolean }> {
  const id = typeof ref === 'string' ? (ref.split('/').pop() ?? '') : '';
  if (!isUuid(id)) throw badRequest('Invalid imageRef provided.');
  const res = await compute.client.request<Record<string, unknown>>('image', 'GET', `/v2/images/${id}`, { userToken: ctx.authToken });
  if (res.status >= 400) throw badRequest(`Image ${id} could not be found.`);
  if (res.body.status !== 'active') throw badRequest(`Image ${id} is not active.`);
  const stableRescue = res.body.hw_rescue_device !== undefined || res.body.hw_rescue_bus !== undefined;
  return { id, properties: { disk_format: res.body.disk_format, container_format: res.body.container_format }, stableRescue };
}

const ACTIONS: Record<string, Handler> = {
  ...MOVE_ACTIONS,
  ...CONSOLE_ACTIONS,
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
    const image = isObject(arg) && arg.rescue_image_ref !== undefined ? await loadImageId(compute, ctx, arg.rescue_image_ref) : null;
    // Nova rescues a volume-backed server only from 2.87, and only from a
    // rescue image that names its rescue device or bus (stable device rescue:
    // the root volume stays attached, the rescue disk is added).
    if (instance.image_ref === '' && (!atLeast(req, '2.87') || !image?.stableRescue)) throw badRequest(`Instance ${instance.uuid} cannot be rescued: Cannot rescue a volume-backed instance`);
    const ref = image ? image.id : instance.image_ref;
    const pass = isObject(arg) && typeof arg.adminPass === 'string' ? arg.adminPass : newUuid().slice(0, 12);
    await beginTask(compute, ctx, instance, 'rescue', 'rescuing');
    await toAgent(compute, req, ctx, instance, 'rescue', { kind: 'rescue', image_ref: ref });
    return { status: 200, body: { adminPass: pass } };
  },

  async createImage(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'servers:create_image', { project_id: instance.project_id });
    if (!isObject(arg) || typeof arg.name !== 'string' || arg.name.trim() === '') throw badRequest("Invalid input for field/attribute createImage. Value: None. 'name' is a required property");
    const metadata = arg.metadata === undefined ? {} : validateMetadata(arg.metadata, -1);
    checkActionState(instance, 'createImage');
    return snapshotTo(compute, req, ctx, instance, 'createImage', arg.name, { image_type: 'snapshot', ...metadata }, null);
  },

  async changePassword(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'os-admin-password', { project_id: instance.project_id });
    if (!isObject(arg) || arg.adminPass === undefined) throw badRequest("Invalid input for field/attribute changePassword. Value: None. 'adminPass' is a required property");
    if (typeof arg.adminPass !== 'string') throw badRequest(`Invalid input for field/attribute adminPass. Value: ${String(arg.adminPass)}. ${JSON.stringify(arg.adminPass)} is not of type 'string'`);
    await beginTask(compute, ctx, instance, 'changePassword', 'updating_password');
    await toAgent(compute, req, ctx, instance, 'changePassword', { kind: 'set_password', password: arg.adminPass });
    return { status: 202 };
  },

  async createBackup(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'os-create-backup', { project_id: instance.project_id });
    if (!isObject(arg)) throw badRequest("Invalid input for field/attribute createBackup. Value: None. 'name' is a required property");
    for (const field of ['name', 'backup_type', 'rotation']) {
      if (arg[field] === undefined) throw badRequest(`Invalid input for field/attribute createBackup. Value: ${JSON.stringify(arg)}. '${field}' is a required property`);
    }
    if (typeof arg.name !== 'string' || arg.name.trim() === '' || arg.name.length > 255) throw badRequest(`Invalid input for field/attribute name. Value: ${String(arg.name)}.`);
    if (typeof arg.backup_type !== 'string') throw badRequest(`Invalid input for field/attribute backup_type. Value: ${String(arg.backup_type)}. ${JSON.stringify(arg.backup_type)} is not of type 'string'`);
    const rotation = typeof arg.rotation === 'string' && /^\d+$/.test(arg.rotation) ? Number(arg.rotation) : arg.rotation;
    if (typeof rotation !== 'number' || !Number.isInteger(rotation) || rotation < 0) throw badRequest(`Invalid input for field/attribute rotation. Value: ${String(arg.rotation)}. ${JSON.stringify(arg.rotation)} is not a non-negative integer`);
    const metadata = arg.metadata === undefined ? {} : validateMetadata(arg.metadata, -1);
    checkActionState(instance, 'createBackup');
    return snapshotTo(compute, req, ctx, instance, 'createBackup', arg.name, { ...metadata, image_type: 'backup', backup_type: arg.backup_type }, { type: arg.backup_type, rotation });
  },

  async rebuild(compute, _p, req, ctx, instance, arg) {
    authorize(compute, ctx, 'servers:rebuild', { project_id: instance.project_id });
    if (!isObject(arg) || arg.imageRef === undefined) throw badRequest("Invalid input for field/attribute rebuild. Value: None. 'imageRef' is a required property");
    const image = await loadImageId(compute, ctx, arg.imageRef);
    await checkVolumeBackedRebuild(compute, instance, image.id);
    const changes = await rebuildChanges(compute, req, ctx, instance, arg, image.id);
    await beginTask(compute, ctx, instance, 'rebuild', 'rebuilding', changes.values);
    await replaceMetadata(compute, instance.uuid, changes.metadata);
    await toAgent(compute, req, ctx, instance, 'rebuild', { kind: 'rebuild', image_ref: image.id, image_properties: image.properties, preserve_ephemeral: arg.preserve_ephemeral === true });
    const fresh = await compute.db.selectFrom('instance').selectAll().where('uuid', '=', instance.uuid).executeTakeFirstOrThrow();
    const { loadServerExtras, changedServerView } = await import('../server-views.js');
    const view = changedServerView(compute, req, ctx, fresh, await loadServerExtras(compute, [fresh]), 'rebuild');
    return { status: 202, body: { server: { ...view, adminPass: typeof arg.adminPass === 'string' ? arg.adminPass : newUuid().slice(0, 12) } } };
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

  async restore(compute, _p, _req, ctx, instance) {
    return restoreServer(compute, ctx, instance);
  },

  async addFloatingIp(compute, _p, req, ctx, instance, arg) {
    await addFloatingIp(compute, req, ctx, instance, arg);
    return { status: 202 };
  },

  async removeFloatingIp(compute, _p, req, ctx, instance, arg) {
    await removeFloatingIp(compute, req, ctx, instance, arg);
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

/**
 * A server whose root is a volume is rebuilt only with the image it was
 * built from (the volume is not re-imaged; Nova before 2.93).
 */
async function checkVolumeBackedRebuild(compute: ComputeService, instance: InstanceRow, imageId: string): Promise<void> {
  const root = await compute.db.selectFrom('block_device_mapping').select('destination_type').where('instance_uuid', '=', instance.uuid).where('boot_index', '=', 0).executeTakeFirst();
  if (root?.destination_type !== 'volume') return;
  const original = instance.image_ref || parseJson<{ image?: { id?: string } }>(instance.request_spec, {}).image?.id || '';
  if (imageId !== original) throw badRequest(`Image ${imageId} is unacceptable: Unable to rebuild with a different image for a volume-backed server.`);
}

/**
 * createImage and createBackup: a `queued` private image in the server's
 * project with Nova's properties (and `extra`), filled by the host from the
 * server's disk (a backup then rotates the older ones of its type). 202 with
 * `Location`, and from 2.45 `{image_id}`.
 */
async function snapshotTo(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, action: 'createImage' | 'createBackup', name: string, extra: Record<string, unknown>, backup: { type: string; rotation: number } | null): Promise<ActionResult> {
  const source = parseJson<Record<string, unknown>>(instance.image, {});
  const props: Record<string, string> = { instance_uuid: instance.uuid, base_image_ref: instance.image_ref ?? '', user_id: ctx.userId };
  for (const [k, v] of Object.entries(extra)) props[k] = String(v);
  const created = await compute.client.request<{ id: string }>('image', 'POST', '/v2/images', {
    userToken: ctx.authToken,
    body: { name, disk_format: source.disk_format ?? 'qcow2', container_format: source.container_format ?? 'bare', visibility: 'private', ...props },
  });
  if (created.status >= 400) throw new ComputeError(created.status === 413 || created.status === 403 ? 403 : 400, `Could not create the image: ${JSON.stringify(created.body)}`);
  const imageId = created.body.id;
  await beginTask(compute, ctx, instance, action, action === 'createBackup' ? 'image_backup' : 'image_snapshot');
  await toAgent(compute, req, ctx, instance, action, { kind: 'snapshot', image_id: imageId, ...(backup ? { backup } : {}) });
  const location = `${compute.publicUrl}/v2.1/images/${imageId}`;
  // The body came with 2.45; before it, only the Location header names the image.
  return { status: 202, ...(atLeast(req, '2.45') ? { body: { image_id: imageId } } : {}), headers: { Location: location } };
}
