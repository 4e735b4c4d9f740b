import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { RemoteError } from '../../core/bus/index.js';
import { atLeast, authorize, type ComputeService } from '../compute.js';
import { isoNow, newUuid, nextId, parseJson } from '../common.js';
import { zoneOfHost } from '../aggregates.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, ComputeError, conflict, invalidState } from '../errors.js';
import { embeddedFlavor, loadFlavorFor } from '../flavors.js';
import { checkActionState } from '../instances.js';
import { checkResizeQuota } from '../quotas.js';
import { diskConfigOf } from '../server-views.js';
import { ConductorRpc, type EmbeddedFlavor, type MoveRequest, type RequestSpec } from '../rpc.js';
import type { ServerAction } from '../vm-states.js';
import { beginTask, checkLock, computeHostExists, endTask, recordFor, setSystemMetadata, toAgent, type ActionHandler } from './action-common.js';
import { checkName, booleanLike } from './request-checks.js';
import { checkObject, invalidField, isObject, notOfType } from './nova-input.js';

/**
 * The actions that move a server or take it off its host: resize (with
 * confirm and revert), cold and live migration, shelve, shelve offload and
 * unshelve. compute-api checks the request and the state, records the
 * migration and the action, sets the task state, and hands the move to the
 * conductor (which schedules) or to the server's host.
 */

/** Checks the state for `action`, answering Nova's 409 with `method` as the API names it. */
function checkState(instance: InstanceRow, action: ServerAction, method: string): void {
  try {
    checkActionState(instance, action);
  } catch (err) {
    if (err instanceof ComputeError && err.status === 409) {
      const attr = err.message.includes('task_state') ? 'task_state' : 'vm_state';
      throw invalidState(attr, attr === 'task_state' ? instance.task_state : instance.vm_state, method, instance.uuid);
    }
    throw err;
  }
}

/**
 * Starts a resize or cold migration: the migration record (`pre-migrating`),
 * the task `resize_prep`, the state to return to on confirm, then the
 * conductor picks the destination.
 */
async function startColdMove(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, kind: 'resize' | 'migrate', next: EmbeddedFlavor, host: string | null): Promise<void> {
  if (!instance.host || !instance.node) throw conflict(`Instance ${instance.uuid} is not ready: it has no host.`);
  const current = parseJson<EmbeddedFlavor>(instance.flavor, {} as EmbeddedFlavor);
  await beginTask(compute, ctx, instance, kind, 'resize_prep');
  const migrationUuid = newUuid();
  const now = isoNow();
  try {
    await compute.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('migration')
        .values({ id: await nextId(trx, 'migration'), uuid: migrationUuid, instance_uuid: instance.uuid, migration_type: kind === 'resize' ? 'resize' : 'migration', status: 'pre-migrating', source_compute: instance.host, source_node: instance.node, dest_compute: null, dest_node: null, dest_host: null, old_flavorid: current.flavorid, new_flavorid: next.flavorid, project_id: instance.project_id, user_id: instance.user_id, created_at: now, updated_at: now })
        .execute();
    });
    await setSystemMetadata(compute, instance.uuid, { old_vm_state: instance.vm_state });
  } catch (err) {
    await endTask(compute, instance, 'resize_prep');
    throw err;
  }
  const actionId = await recordFor(compute, req, ctx, instance, kind);
  compute.notify(`compute.instance.${kind === 'resize' ? 'resize' : 'migrate'}.prep.start`, { instance_id: instance.uuid });
  await new ConductorRpc(compute.bus).moveInstance({ instance_uuid: instance.uuid, kind, new_flavor: next, host, action_id: actionId, migration_uuid: migrationUuid }, { request_id: req.requestId, user_id: ctx.userId, project_id: ctx.projectId ?? '' });
}

/** The newest migration of the server in `status` (the one a confirm or revert acts on). */
async function migrationIn(compute: ComputeService, instance: InstanceRow, status: string): Promise<{ uuid: string; source_compute: string | null; dest_compute: string | null } | undefined> {
  return compute.db.selectFrom('migration').select(['uuid', 'source_compute', 'dest_compute']).where('instance_uuid', '=', instance.uuid).where('status', '=', status).orderBy('id', 'desc').executeTakeFirst();
}

/** Moves a migration from one status to another, only from that one; false when someone else did first. */
async function claimMigration(compute: ComputeService, uuid: string, from: string, to: string): Promise<boolean> {
  const res = await compute.db.updateTable('migration').set({ status: to, updated_at: isoNow() }).where('uuid', '=', uuid).where('status', '=', from).executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

const resize: ActionHandler = async (compute, _placement, req, ctx, instance, arg) => {
  authorize(compute, ctx, 'servers:resize', { project_id: instance.project_id });
  if (!isObject(arg) || arg.flavorRef === undefined) throw badRequest("Invalid input for field/attribute resize. Value: None. 'flavorRef' is a required property");
  const row = await loadFlavorFor(compute, ctx, arg.flavorRef as string).catch((err: unknown) => {
    throw err instanceof ComputeError && err.status === 404 ? badRequest(err.message) : err;
  });
  const current = parseJson<EmbeddedFlavor>(instance.flavor, {} as EmbeddedFlavor);
  checkLock(compute, ctx, instance);
  checkState(instance, 'resize', 'resize');
  if (row.flavorid === current.flavorid) throw badRequest('When resizing, instances must change flavor!');
  const next = embeddedFlavor(row, row.extra_specs);
  if (next.root_gb < current.root_gb && next.root_gb !== 0) throw badRequest('Resize error: Unable to resize disk down.');
  const diskConfig = diskConfigOf(arg);
  await checkResizeQuota(compute.db, compute.config.compute, instance.project_id, instance.user_id, current, next);
  await startColdMove(compute, req, ctx, instance, 'resize', next, null);
  if (diskConfig) await compute.db.updateTable('instance').set({ disk_config: diskConfig }).where('uuid', '=', instance.uuid).execute();
  return { status: 202 };
};

const migrate: ActionHandler = async (compute, _placement, req, ctx, instance, arg) => {
  let host: string | null = null;
  if (atLeast(req, '2.56') && arg !== null) {
    const body = checkObject(arg, 'migrate', [], ['host']);
    if (body.host !== undefined && body.host !== null) host = checkName(body.host, 'host');
  }
  authorize(compute, ctx, host ? 'os-migrate-server:migrate:host' : 'os-migrate-server:migrate', { project_id: instance.project_id });
  checkLock(compute, ctx, instance);
  checkState(instance, 'migrate', 'migrate');
  if (host !== null) {
    if (host === instance.host) throw badRequest('Cannot migrate to the host where the server exists.');
    if (!(await computeHostExists(compute, host))) throw badRequest(`Compute host ${host} could not be found.`);
  }
  const flavor = parseJson<EmbeddedFlavor>(instance.flavor, {} as EmbeddedFlavor);
  await startColdMove(compute, req, ctx, instance, 'migrate', flavor, host);
  return { status: 202 };
};

const confirmResize: ActionHandler = async (compute, _placement, req, ctx, instance) => {
  authorize(compute, ctx, 'servers:confirm_resize', { project_id: instance.project_id });
  checkLock(compute, ctx, instance);
  checkState(instance, 'confirmResize', 'confirmResize');
  const migration = await migrationIn(compute, instance, 'finished');
  if (!migration || !(await claimMigration(compute, migration.uuid, 'finished', 'confirming'))) throw badRequest('Instance has not been resized.');
  // Nova leaves no task state here; one is kept so that the server shows it is busy until its source host confirms.
  await beginTask(compute, ctx, instance, 'confirmResize', 'resize_confirming');
  await toAgent(compute, req, ctx, instance, 'confirmResize', { kind: 'confirm_resize', migration_uuid: migration.uuid }, migration.source_compute);
  return { status: 204 };
};

const revertResize: ActionHandler = async (compute, _placement, req, ctx, instance) => {
  authorize(compute, ctx, 'servers:revert_resize', { project_id: instance.project_id });
  checkLock(compute, ctx, instance);
  checkState(instance, 'revertResize', 'revertResize');
  const migration = await migrationIn(compute, instance, 'finished');
  if (!migration || !(await claimMigration(compute, migration.uuid, 'finished', 'reverting'))) throw badRequest('Instance has not been resized.');
  await beginTask(compute, ctx, instance, 'revertResize', 'resize_reverting');
  await toAgent(compute, req, ctx, instance, 'revertResize', { kind: 'revert_resize', migration_uuid: migration.uuid }, migration.dest_compute ?? instance.host);
  return { status: 202 };
};

/** Reads `os-migrateLive` as its microversion's schema says; returns the host and whether it is forced. */
function readLiveMigration(req: FastifyRequest, arg: unknown): { host: string | null; force: boolean } {
  const v225 = atLeast(req, '2.25');
  const withForce = atLeast(req, '2.30') && !atLeast(req, '2.68');
  const required = v225 ? ['block_migration', 'host'] : ['block_migration', 'disk_over_commit', 'host'];
  const body = checkObject(arg, 'os-migrateLive', required, [...required, ...(withForce ? ['force'] : [])]);
  if (!(v225 && body.block_migration === 'auto')) booleanLike(body.block_migration, 'block_migration');
  if (!v225) booleanLike(body.disk_over_commit, 'disk_over_commit');
  const host = body.host === null ? null : checkName(body.host, 'host');
  if (!atLeast(req, '2.30')) return { host, force: host !== null };
  const force = withForce && body.force !== undefined ? booleanLike(body.force, 'force') : false;
  if (force && !host) throw badRequest("Can't force to a non-provided destination");
  return { host, force };
}

const liveMigrate: ActionHandler = async (compute, _placement, req, ctx, instance, arg) => {
  const { host, force } = readLiveMigration(req, arg);
  authorize(compute, ctx, 'os-migrate-server:migrate_live', { project_id: instance.project_id });
  checkLock(compute, ctx, instance);
  checkState(instance, 'live-migration', 'os-migrateLive');
  if (host !== null && !(await computeHostExists(compute, host))) throw badRequest(`Compute host ${host} could not be found.`);
  if (!instance.host) throw conflict(`Instance ${instance.uuid} is not ready: it has no host.`);
  await beginTask(compute, ctx, instance, 'live-migration', 'migrating');
  const migrationUuid = newUuid();
  const now = isoNow();
  const flavor = parseJson<EmbeddedFlavor>(instance.flavor, {} as EmbeddedFlavor);
  await compute.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('migration')
      .values({ id: await nextId(trx, 'migration'), uuid: migrationUuid, instance_uuid: instance.uuid, migration_type: 'live-migration', status: 'accepted', source_compute: instance.host, source_node: instance.node, dest_compute: host, dest_node: null, dest_host: null, old_flavorid: flavor.flavorid, new_flavorid: flavor.flavorid, project_id: instance.project_id, user_id: instance.user_id, created_at: now, updated_at: now })
      .execute();
  });
  const actionId = await recordFor(compute, req, ctx, instance, 'live-migration');
  const move: MoveRequest = { instance_uuid: instance.uuid, kind: 'live_migrate', host, force, action_id: actionId, migration_uuid: migrationUuid };
  const conductor = new ConductorRpc(compute.bus);
  if (atLeast(req, '2.34')) {
    await conductor.moveInstance(move, { request_id: req.requestId, user_id: ctx.userId, project_id: ctx.projectId ?? '' });
    return { status: 202 };
  }
  // Before 2.34 the pre-checks answer the request: a refusal is a 400 (the conductor has put the server back).
  try {
    await conductor.moveInstanceAndWait(move);
  } catch (err) {
    if (err instanceof RemoteError) throw badRequest(err.message);
    throw err;
  }
  return { status: 202 };
};

const shelve: ActionHandler = async (compute, _placement, req, ctx, instance) => {
  authorize(compute, ctx, 'os-shelve:shelve', { project_id: instance.project_id, user_id: instance.user_id });
  checkLock(compute, ctx, instance);
  checkState(instance, 'shelve', 'shelve');
  await beginTask(compute, ctx, instance, 'shelve', 'shelving');
  const volumeBacked = instance.image_ref === '';
  let imageId: string | null = null;
  try {
    await setSystemMetadata(compute, instance.uuid, { image_base_image_ref: instance.image_ref });
    if (!volumeBacked) imageId = await createShelvedImage(compute, ctx, instance);
  } catch (err) {
    await endTask(compute, instance, 'shelving');
    throw err;
  }
  const offload = compute.config.compute.shelved_offload_time === 0;
  await toAgent(compute, req, ctx, instance, 'shelve', volumeBacked ? { kind: 'shelve_offload' } : { kind: 'shelve', image_id: imageId, offload });
  return { status: 202 };
};

/** The snapshot image a shelve keeps (`<name>-shelved`), made `queued` in the image service with the caller's token. */
async function createShelvedImage(compute: ComputeService, ctx: RequestContext, instance: InstanceRow): Promise<string> {
  const source = parseJson<Record<string, unknown>>(instance.image, {});
  const created = await compute.client.request<{ id: string }>('image', 'POST', '/v2/images', {
    userToken: ctx.authToken,
    body: {
      name: `${instance.display_name}-shelved`,
      disk_format: source.disk_format ?? 'qcow2',
      container_format: source.container_format ?? 'bare',
      visibility: 'private',
      image_type: 'snapshot',
      instance_uuid: instance.uuid,
      base_image_ref: instance.image_ref,
      user_id: ctx.userId,
    },
  });
  if (created.status >= 400) throw new ComputeError(created.status === 413 || created.status === 403 ? 403 : 400, `Could not create the shelved image: ${JSON.stringify(created.body)}`);
  return created.body.id;
}

const shelveOffload: ActionHandler = async (compute, _placement, req, ctx, instance) => {
  authorize(compute, ctx, 'os-shelve:shelve_offload', { project_id: instance.project_id, user_id: instance.user_id });
  checkLock(compute, ctx, instance);
  checkState(instance, 'shelveOffload', 'shelveOffload');
  await beginTask(compute, ctx, instance, 'shelveOffload', 'shelving_offloading');
  await toAgent(compute, req, ctx, instance, 'shelveOffload', { kind: 'shelve_offload' });
  return { status: 202 };
};

/** Reads `unshelve` as its microversion's schema says: the zone asked for (undefined: not given) and the host. */
function readUnshelve(req: FastifyRequest, arg: unknown): { zone: string | null | undefined; host: string | null } {
  if (!atLeast(req, '2.77') || arg === null) return { zone: undefined, host: null };
  if (!atLeast(req, '2.91')) {
    const body = checkObject(arg, 'unshelve', ['availability_zone'], ['availability_zone']);
    return { zone: checkName(body.availability_zone, 'availability_zone'), host: null };
  }
  const body = checkObject(arg, 'unshelve', [], ['availability_zone', 'host']);
  if (body.availability_zone !== undefined && body.availability_zone !== null && typeof body.availability_zone !== 'string') throw invalidField('availability_zone', body.availability_zone, notOfType(body.availability_zone, 'string, null'));
  if (body.host !== undefined && typeof body.host !== 'string') throw invalidField('host', body.host, notOfType(body.host, 'string'));
  return { zone: body.availability_zone as string | null | undefined, host: (body.host as string | undefined) ?? null };
}

const unshelve: ActionHandler = async (compute, _placement, req, ctx, instance, arg) => {
  const { zone, host } = readUnshelve(req, arg);
  authorize(compute, ctx, 'os-shelve:unshelve', { project_id: instance.project_id });
  checkLock(compute, ctx, instance);
  checkState(instance, 'unshelve', 'unshelve');
  const zonePassed = zone !== undefined;
  if ((zonePassed || host) && instance.vm_state !== 'shelved_offloaded') {
    throw conflict(`Specifying an availability zone or a host when unshelving server "${instance.uuid}" with status "${instance.vm_state}" is not supported. The server status must be SHELVED_OFFLOADED.`);
  }
  if (zonePassed && zone) {
    const zones = await compute.db.selectFrom('aggregate_metadata').select('value').where('key', '=', 'availability_zone').execute();
    if (zone !== compute.config.compute.default_availability_zone && !zones.some((z) => z.value === zone)) throw badRequest('The requested availability zone is not available');
  }
  const spec = parseJson<RequestSpec>(instance.request_spec, {} as RequestSpec);
  const expectedZone = zonePassed ? zone : spec.availability_zone;
  if (host) {
    authorize(compute, ctx, 'os-shelve:unshelve_to_host', { project_id: instance.project_id, user_id: instance.user_id });
    if (!(await computeHostExists(compute, host))) throw badRequest(`Compute host ${host} could not be found.`);
    if (expectedZone !== null && (await zoneOfHost(compute, host)) !== expectedZone) throw conflict(`Host "${host}" is not in the availability zone "${expectedZone}".`);
  }
  const nextSpec: RequestSpec = { ...spec, availability_zone: expectedZone ?? null, ...(host ? { requested_host: host, requested_node: null } : {}) };
  await beginTask(compute, ctx, instance, 'unshelve', 'unshelving', { request_spec: JSON.stringify(nextSpec) });
  const actionId = await recordFor(compute, req, ctx, instance, 'unshelve');
  await new ConductorRpc(compute.bus).moveInstance({ instance_uuid: instance.uuid, kind: 'unshelve', host, action_id: actionId }, { request_id: req.requestId, user_id: ctx.userId, project_id: ctx.projectId ?? '' });
  return { status: 202 };
};

/** The move actions of `POST /servers/{id}/action`, by body key. */
export const MOVE_ACTIONS: Record<string, ActionHandler> = {
  resize,
  confirmResize,
  revertResize,
  migrate,
  'os-migrateLive': liveMigrate,
  shelve,
  shelveOffload,
  unshelve,
};

