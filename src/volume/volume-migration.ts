import type { RequestContext } from '../core/auth/context.js';
import type { VolumeRow } from './db/schema.js';
import { badRequest, invalidVolume } from './errors.js';
import { AgentRpc, SchedulerRpc } from './rpc.js';
import { isMultiattachType } from './volume-type-rules.js';
import { loadTypes, type VolumeType } from './volume-types.js';
import { agentVolume, backendOf, NOT_MIGRATING, notifyVolume, updateVolumeIf, volumeTarget } from './volumes.js';
import { authorize, now, type VolumeService } from './volume.js';

/**
 * Volume migration on the API and conductor side (Cinder's
 * `migrate_volume`, retype with `migration_policy: on-demand`,
 * `migrate_volume_completion`). The API checks, places the volume (the
 * scheduler's `find_backend`), marks it `starting` and casts the work to
 * the agent that holds it (see agent/migration.ts); the conductor records
 * the end: `success` with the volume on its new backend, or `error` with
 * the volume where it was. Only available volumes move: an attached one
 * needs compute to copy its data while the guest runs (Nova's swap), which
 * is not done.
 */

/** Migration statuses of a migration under way. */
const UNDER_WAY = ['starting', 'migrating'];
/** Statuses a migration puts a volume in, which its end gives back (`previous_status`). */
const HELD = ['retyping', 'maintenance'];

/** What `os-migrate_volume` asks. */
export interface MigrateRequest {
  /** `host@backend[#pool]`, or null with a cluster (3.16). */
  host: string | null;
  cluster: string | null;
  forceHostCopy: boolean;
  lockVolume: boolean;
  /** The request's microversion takes `cluster` (3.16). */
  clusterAllowed: boolean;
}

/** The text of Cinder's refusal of a migration of a volume in the wrong state. */
function notMigratable(id: string): string {
  return `Volume ${id} status must be available or in-use, must not be migrating, have snapshots, be replicated, be part of a group and destination host/cluster must be different than the current one`;
}

function attachedRefusal(id: string): ReturnType<typeof invalidVolume> {
  return invalidVolume(`Volume ${id} is attached: migrating an attached volume (which needs compute to copy its data while the guest runs) is not supported; detach it first.`);
}

/** The service of an up and enabled backend named by `host` (`host@backend[#pool]`), or null. */
async function upBackend(volume: VolumeService, host: string): Promise<string | null> {
  const backend = backendOf(host);
  if (!backend) return null;
  const row = await volume.db.selectFrom('service').select(['host', 'disabled', 'last_seen_up']).where('binary', '=', 'cinder-volume').where('host', '=', backend).executeTakeFirst();
  if (!row || row.disabled || !row.last_seen_up) return null;
  if (Date.now() - Date.parse(row.last_seen_up) > volume.config.volume.service_down_time * 1000) return null;
  return row.host;
}

/** The volume's type with its extra specs, as the scheduler takes it. */
async function schedulingType(volume: VolumeService, typeId: string): Promise<{ id: string; name: string; extra_specs: Record<string, string> }> {
  const [type] = await loadTypes(volume, [typeId]);
  return { id: typeId, name: type?.name ?? '', extra_specs: type?.extra_specs ?? {} };
}

/**
 * `os-migrate_volume` (administrators): moves an available volume to
 * another backend that is up and passes the scheduler's filters for the
 * volume's type. The volume goes `migration_status: starting` (and
 * `maintenance` with `lock_volume`), then `migrating`, then `success` on
 * its new host, or `error` where it was. Refused (400) for a volume that is
 * attached, has snapshots, is in a group or already migrating, for the
 * backend it is on, and for a backend that is unknown, down, or does not
 * fit it; nothing changes then.
 */
export async function migrateVolume(volume: VolumeService, ctx: RequestContext, row: VolumeRow, req: MigrateRequest): Promise<void> {
  authorize(volume, ctx, 'volume_extension:volume_admin_actions:migrate_volume', volumeTarget(row));
  if (Boolean(req.host) === Boolean(req.cluster)) throw badRequest(`Invalid input received: ${req.clusterAllowed ? 'One and only one of cluster and host must be set.' : 'Host field is missing.'}`);
  const wanted = req.cluster ?? req.host ?? '';
  // There are no clusters: a cluster name never names a service.
  const backend = req.cluster === null ? await upBackend(volume, wanted) : null;
  if (!backend) throw badRequest(`Invalid host: No available service named '${wanted}'`);
  if (row.status === 'in-use') throw attachedRefusal(row.id);
  // Neither changes while the volume is not migrating, which the update below checks.
  if (row.group_id || backendOf(row.host) === backend) throw invalidVolume(notMigratable(row.id));
  const previousMigration = row.migration_status;
  const changed = await updateVolumeIf(
    volume.db,
    row.id,
    { migration_status: 'starting', previous_status: row.status, ...(req.lockVolume && row.status === 'available' ? { status: 'maintenance' } : {}) },
    { status: ['available'], migration_status: NOT_MIGRATING, noSnapshots: true },
  );
  if (!changed) throw invalidVolume(notMigratable(row.id));
  const restore = (): Promise<boolean> => updateVolumeIf(volume.db, row.id, { migration_status: previousMigration, status: row.status, previous_status: row.previous_status }, { migration_status: ['starting'] });
  let destination: string | null;
  try {
    destination = await new SchedulerRpc(volume.bus).findBackend({
      size: row.size,
      availability_zone: row.availability_zone,
      volume_type: await schedulingType(volume, row.volume_type_id),
      ignore_backends: [],
      backend: wanted,
    });
  } catch (err) {
    await restore();
    throw err;
  }
  if (!destination) {
    await restore();
    throw badRequest(`Invalid host: ${wanted} cannot hold volume ${row.id}: it does not pass the scheduler's filters for the volume's type, size and availability zone.`);
  }
  volume.log.info({ volume_id: row.id, destination, force_host_copy: req.forceHostCopy }, 'volume migration requested');
  await cast(volume, { ...row, migration_status: 'starting' }, destination, null);
}

/**
 * The migration half of `os-retype` with `migration_policy: on-demand`,
 * for a volume the API has put in `retyping` (with its `previous_status`)
 * whose backend does not satisfy `type`: the scheduler picks another
 * backend for the type and the volume migrates there, taking the type when
 * it arrives. Refused (400, the volume back to its status) for an attached
 * volume, one with snapshots, and when no backend fits.
 */
export async function retypeWithMigration(volume: VolumeService, row: VolumeRow, type: VolumeType): Promise<void> {
  const giveBack = (): Promise<boolean> => updateVolumeIf(volume.db, row.id, { status: row.status, previous_status: null, migration_status: row.migration_status }, { status: ['retyping'] });
  if (row.status !== 'available') {
    await giveBack();
    throw attachedRefusal(row.id);
  }
  const started = await updateVolumeIf(volume.db, row.id, { migration_status: 'starting' }, { status: ['retyping'], noSnapshots: true });
  if (!started) {
    await giveBack();
    throw invalidVolume('Volume must not have snapshots.');
  }
  let destination: string | null;
  try {
    destination = await new SchedulerRpc(volume.bus).findBackend({
      size: row.size,
      availability_zone: row.availability_zone,
      volume_type: { id: type.id, name: type.name, extra_specs: type.extra_specs },
      ignore_backends: [backendOf(row.host) ?? ''],
    });
  } catch (err) {
    await giveBack();
    throw err;
  }
  if (!destination) {
    await giveBack();
    throw badRequest(`No valid backend was found. No backend satisfies volume type ${type.name} for volume ${row.id}.`);
  }
  volume.log.info({ volume_id: row.id, destination, new_type: type.id }, 'volume retype with migration requested');
  await cast(volume, { ...row, status: 'retyping', migration_status: 'starting' }, destination, type.id);
}

/** Hands the migration to the volume's agent; when the agent cannot be reached the migration fails at once. */
async function cast(volume: VolumeService, row: VolumeRow, destination: string, newTypeId: string | null): Promise<void> {
  try {
    await new AgentRpc(volume.bus).migrateVolume({ volume: agentVolume(row), destination, new_type_id: newTypeId });
  } catch (err) {
    await migrationFailed(volume, row.id, `could not reach the volume agent: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Conductor: the migration's copy is on `host`: the record moves there (a
 * retype takes its new type and multiattach flag), `migration_status`
 * becomes `success` and a held status (`retyping`, `maintenance`) goes
 * back to `previous_status`. Applies only to a volume still migrating.
 */
export async function migrationFinished(volume: VolumeService, args: { volume_id: string; host: string; provider_location: string | null; new_type_id: string | null }): Promise<{ updated: boolean }> {
  const type = args.new_type_id ? (await loadTypes(volume, [args.new_type_id]))[0] : undefined;
  const updated = await volume.db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('volume').selectAll().where('id', '=', args.volume_id).executeTakeFirst();
    if (!row || row.migration_status === null || !UNDER_WAY.includes(row.migration_status)) return false;
    const res = await trx
      .updateTable('volume')
      .set({
        host: args.host,
        provider_location: args.provider_location,
        migration_status: 'success',
        ...(HELD.includes(row.status) ? { status: row.previous_status ?? 'available', previous_status: null } : {}),
        ...(args.new_type_id ? { volume_type_id: args.new_type_id, multiattach: isMultiattachType(type ?? null) ? 1 : 0 } : {}),
        updated_at: now(),
      })
      .where('id', '=', args.volume_id)
      .where('migration_status', 'in', UNDER_WAY)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  });
  if (updated) {
    volume.log.info({ volume_id: args.volume_id, host: args.host }, 'volume migrated');
    if (args.new_type_id) await notifyVolume(volume, args.volume_id, 'retype');
  }
  return { updated };
}

/**
 * Conductor: a migration failed: the volume stays on its source with
 * `migration_status: error`, a held status back to `previous_status`.
 * Applies only to a volume still migrating.
 */
export async function migrationFailed(volume: VolumeService, volumeId: string, reason: string): Promise<void> {
  await volume.db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('volume').select(['status', 'previous_status', 'migration_status']).where('id', '=', volumeId).executeTakeFirst();
    if (!row || row.migration_status === null || !UNDER_WAY.includes(row.migration_status)) return;
    await trx
      .updateTable('volume')
      .set({ migration_status: 'error', ...(HELD.includes(row.status) ? { status: row.previous_status ?? 'available', previous_status: null } : {}), updated_at: now() })
      .where('id', '=', volumeId)
      .where('migration_status', 'in', UNDER_WAY)
      .execute();
  });
  volume.log.warn({ volume_id: volumeId, reason }, 'volume migration failed');
}

/**
 * `os-migrate_volume_completion` (administrators; compute calls it at the
 * end of a swap it did for a migration): Cinder's checks that both volumes
 * are mid-migration, the new one as `target:<volume id>`. Migrations here
 * never make such a target volume (attached volumes are not migrated), so
 * a completion with `error` fails the source's migration and one without
 * is refused.
 */
export async function completeMigration(volume: VolumeService, ctx: RequestContext, row: VolumeRow, next: VolumeRow, error: boolean): Promise<string> {
  authorize(volume, ctx, 'volume_extension:volume_admin_actions:migrate_volume_completion', volumeTarget(row));
  if (!row.migration_status && !next.migration_status) {
    // Cinder answers the new volume for two volumes that are not migrating (a swap between volumes).
    return next.id;
  }
  if (!row.migration_status) throw invalidVolume('Source volume not mid-migration.');
  if (!next.migration_status) throw invalidVolume('Destination volume not mid-migration.');
  const expected = `target:${row.id}`;
  if (next.migration_status !== expected) throw invalidVolume(`Destination has migration_status ${next.migration_status}, expected ${expected}.`);
  if (!error) throw invalidVolume(`Volume ${row.id} has no migration through compute to complete.`);
  await migrationFailed(volume, row.id, 'compute reported a failed swap');
  return row.id;
}
