import type { FastifyInstance } from 'fastify';
import { badRequest, volumeNotFound } from '../errors.js';
import { deleteVolume } from '../volume-delete.js';
import { extendVolume, resetVolumeStatus, retypeVolume, revertVolume, setBootable, setReadonly } from '../volume-operations.js';
import { MIGRATION_STATUSES, RESET_ATTACH_STATUSES, VOLUME_STATUSES } from '../volume-states.js';
import { getVolume, volumeRow, volumeTarget } from '../volumes.js';
import { atLeast, authorize, contextOf, isAdmin, type VolumeService } from '../volume.js';
import { ACCEPTED, argsObject, type Action, type ActionHandler } from './volume-action-types.js';
import { attachActions } from './volume-attach-actions.js';
import { imageActions } from './volume-image-actions.js';
import { booleanField, enumField, invalidField, isObject, notOfType, pyRepr, sizeField, stringField, uuidField } from './volume-input.js';
import { completeMigration, migrateVolume } from '../volume-migration.js';

/**
 * `POST /volumes/{id}/action`: one action per request, named by the
 * body's only key. Each handler checks its member as Cinder's schema does,
 * loads the volume the caller may see (404 otherwise) and answers Cinder's
 * status (202 for most, 200 where Cinder answers a body).
 */

const volumeActions: Record<string, ActionHandler> = {
  async 'os-extend'(volume, action) {
    const args = argsObject(action, 'os-extend', ['new_size'], ['new_size']);
    const size = sizeField('new_size', args.new_size) ?? 0;
    const row = await action.load();
    const attached = atLeast(action.req, '3.42') && row.status === 'in-use';
    await extendVolume(volume, action.ctx, row, size, attached);
    return ACCEPTED;
  },

  async 'os-retype'(volume, action) {
    const args = argsObject(action, 'os-retype', ['new_type', 'migration_policy'], ['new_type']);
    const newType = stringField('new_type', args.new_type) ?? '';
    const policy = args.migration_policy === undefined ? null : enumField('migration_policy', args.migration_policy, ['on-demand', 'never'] as const, true);
    await retypeVolume(volume, action.ctx, await action.load(), newType, policy);
    return ACCEPTED;
  },

  async 'os-migrate_volume'(volume, action) {
    const withCluster = atLeast(action.req, '3.16');
    const args = argsObject(action, 'os-migrate_volume', ['host', 'force_host_copy', 'lock_volume', ...(withCluster ? ['cluster'] : [])], withCluster ? [] : ['host']);
    const host = args.host === undefined ? null : stringField('host', args.host, { max: 255, nullable: withCluster });
    const cluster = args.cluster === undefined ? null : stringField('cluster', args.cluster, { max: 255 });
    const forceHostCopy = args.force_host_copy === undefined ? false : booleanField('force_host_copy', args.force_host_copy);
    const lockVolume = args.lock_volume === undefined ? false : booleanField('lock_volume', args.lock_volume);
    await migrateVolume(volume, action.ctx, await action.load(), { host: host || null, cluster: cluster || null, forceHostCopy, lockVolume, clusterAllowed: withCluster });
    return ACCEPTED;
  },

  async 'os-migrate_volume_completion'(volume, action) {
    const args = argsObject(action, 'os-migrate_volume_completion', ['new_volume', 'error'], ['new_volume']);
    const newId = uuidField('new_volume', args.new_volume) ?? '';
    const error = args.error;
    if (error !== undefined && error !== null && typeof error !== 'string' && typeof error !== 'boolean') throw invalidField('error', error, notOfType(error, ['string', 'null', 'boolean']));
    const row = await action.load();
    const next = await getVolume(volume, action.ctx, newId);
    // Cinder takes the value as Python's truth: any non-empty string is an error.
    const saved = await completeMigration(volume, action.ctx, row, next, Boolean(error));
    return { status: 200, body: { save_volume_id: saved } };
  },

  async 'os-reset_status'(volume, action) {
    const args = argsObject(action, 'os-reset_status', ['status', 'attach_status', 'migration_status']);
    const pick = (key: string, allowed: readonly string[], label: string): string | undefined => {
      const value = args[key];
      if (value === undefined || value === null) return undefined;
      if (typeof value !== 'string') throw invalidField(key, value, notOfType(value, ['string', 'null']));
      if (value === '') return undefined;
      if (!allowed.includes(value.toLowerCase())) throw badRequest(`${label}: ${value} is invalid, valid statuses are: ${pyRepr([...allowed])}.`);
      return value.toLowerCase();
    };
    const status = pick('status', VOLUME_STATUSES, 'Volume status');
    const attachStatus = pick('attach_status', RESET_ATTACH_STATUSES, 'Volume attach status');
    const migration = pick('migration_status', MIGRATION_STATUSES, 'Volume migration status');
    if (!status && !attachStatus && !migration) throw badRequest("Must specify 'status', 'attach_status' or 'migration_status' for update.");
    // Read as Cinder's admin actions read it: no `volume:get` check, another project's is 404 for a non-administrator.
    const row = await volumeRow(volume.db, action.volumeId);
    if (!row || (row.project_id !== action.ctx.projectId && !isAdmin(volume, action.ctx))) throw volumeNotFound(action.volumeId);
    authorize(volume, action.ctx, 'volume_extension:volume_admin_actions:reset_status', volumeTarget(row));
    await resetVolumeStatus(volume, row, {
      ...(status ? { status } : {}),
      ...(attachStatus ? { attach_status: attachStatus } : {}),
      ...(migration ? { migration_status: migration === 'none' ? null : migration } : {}),
    });
    return ACCEPTED;
  },

  async 'os-force_delete'(volume, action) {
    const row = await action.load();
    authorize(volume, action.ctx, 'volume_extension:volume_admin_actions:force_delete', volumeTarget(row));
    await deleteVolume(volume, action.ctx, row, { cascade: false, force: true });
    return ACCEPTED;
  },

  async 'os-set_bootable'(volume, action) {
    const args = argsObject(action, 'os-set_bootable', ['bootable'], ['bootable']);
    const bootable = booleanField('bootable', args.bootable);
    await setBootable(volume, action.ctx, await action.load(), bootable);
    return { status: 200 };
  },

  async 'os-update_readonly_flag'(volume, action) {
    const args = argsObject(action, 'os-update_readonly_flag', ['readonly'], ['readonly']);
    const readonly = booleanField('readonly', args.readonly);
    await setReadonly(volume, action.ctx, await action.load(), readonly);
    return ACCEPTED;
  },

  async revert(volume, action) {
    if (!atLeast(action.req, '3.40')) throw badRequest('There is no such action: revert');
    if (!isObject(action.args)) throw invalidField('revert', action.args, notOfType(action.args, 'object'));
    const snapshotId = action.args.snapshot_id;
    if (snapshotId !== undefined && snapshotId !== null && typeof snapshotId !== 'string') throw invalidField('snapshot_id', snapshotId, notOfType(snapshotId, ['string', 'null']));
    await revertVolume(volume, action.ctx, await action.load(), typeof snapshotId === 'string' ? snapshotId : null);
    return ACCEPTED;
  },

  ...attachActions,
  ...imageActions,
};

/** Registers `POST /volumes/{id}/action`. */
export function registerVolumeActions(app: FastifyInstance, volume: VolumeService): void {
  app.post<{ Params: { volume_id: string } }>('/v3/volumes/:volume_id/action', async (req, reply) => {
    const body = req.body === undefined ? null : req.body;
    if (!isObject(body)) throw badRequest('Malformed request body');
    const keys = Object.keys(body);
    if (keys.length !== 1) throw badRequest('Malformed message body: too many body keys');
    const name = keys[0] ?? '';
    const handler = Object.hasOwn(volumeActions, name) ? volumeActions[name] : undefined;
    if (!handler) throw badRequest(`There is no such action: ${name}`);
    const ctx = contextOf(req);
    const action: Action = {
      req,
      ctx,
      volumeId: req.params.volume_id,
      args: body[name],
      load: () => getVolume(volume, ctx, req.params.volume_id),
    };
    const result = await handler(volume, action);
    if (result.body === undefined) return reply.code(result.status).send();
    return reply.code(result.status).send(result.body);
  });
}
