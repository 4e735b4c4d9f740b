import { randomUUID } from 'node:crypto';
import type { Consumer } from '../../core/bus/index.js';
import type { VolumeRow, SnapshotRow } from '../db/schema.js';
import { MessageAction, MessageDetail, MessageResource, messageEventId } from '../message-fields.js';
import { CONDUCTOR_TOPIC, SCHEDULER_TOPIC, type AgentSnapshot, type BackendReport, type CreateRequest, type HostWork, type SnapshotValues, type VolumeValues } from '../rpc.js';
import { settleGroup, settleGroupOfVolume, settleGroupSnapshot, settleGroupSnapshotOf } from '../groups.js';
import { now, type VolumeService } from '../volume.js';
import type { CapacityClaims } from './scheduler.js';
import { recordHeartbeat } from './services.js';
import { migrationFailed, migrationFinished } from '../volume-migration.js';
import { notifyVolume, volumeUsage } from '../volumes.js';
import { backupConductorHandlers } from '../backup/conductor.js';
import { updateBackupIf } from '../backups.js';

/** Volume statuses an agent resolves when it starts. */
const TRANSIENT_VOLUME = ['creating', 'deleting', 'extending', 'uploading', 'downloading', 'reverting'];
const TRANSIENT_SNAPSHOT = ['creating', 'deleting', 'restoring'];
/** How long user messages are kept (Cinder's `message_ttl`). */
const MESSAGE_TTL_MS = 2_592_000 * 1000;

/**
 * The volume conductor: the agents' only way to the volume database
 * (served by the volume-scheduler role on `volume-conductor`). It records
 * heartbeats and capacity, the outcome of each agent operation with its
 * `.end` notification, reschedules failed creates, and keeps user messages.
 */
export class Conductor {
  constructor(
    private readonly volume: VolumeService,
    private readonly claims: CapacityClaims,
  ) {}

  serve(server: string): Promise<Consumer> {
    return this.volume.bus.serve(CONDUCTOR_TOPIC, server, {
      service_report: (report: BackendReport) => this.serviceReport(report),
      host_work: (args: { host: string }) => this.hostWork(args.host),
      volume_update: (args: { volume_id: string; values: VolumeValues; event?: string }) => this.volumeUpdate(args.volume_id, args.values, args.event),
      create_failed: (args: { request: CreateRequest & { host: string }; reason: string; reschedule: boolean }) => this.createFailed(args.request, args.reason, args.reschedule),
      volume_deleted: (args: { volume_id: string }) => this.volumeDeleted(args.volume_id),
      snapshot_update: (args: { snapshot_id: string; values: SnapshotValues; event?: string }) => this.snapshotUpdate(args.snapshot_id, args.values, args.event),
      snapshot_deleted: (args: { snapshot_id: string }) => this.snapshotDeleted(args.snapshot_id),
      add_message: (args: UserMessage) => this.addMessage(args),
      attached_instances: (args: { volume_id: string }) => this.attachedInstances(args.volume_id),
      migration_finished: (args: { volume_id: string; host: string; provider_location: string | null; new_type_id: string | null }) => migrationFinished(this.volume, args),
      migration_failed: (args: { volume_id: string; reason: string }) => migrationFailed(this.volume, args.volume_id, args.reason),
      ...backupConductorHandlers(this.volume, this),
    });
  }

  /** A backend's heartbeat with its capacity: the service row (created on first report) and what the scheduler reads. */
  async serviceReport(report: BackendReport): Promise<void> {
    await recordHeartbeat(this.volume.db, { host: report.host, binary: 'cinder-volume', availability_zone: report.availability_zone, capabilities: JSON.stringify({ ...report, timestamp: now() }) });
    this.claims.reported(report.host);
  }

  /** What a starting agent of `host` (`host@backend`) must finish or clean up. */
  async hostWork(host: string): Promise<HostWork> {
    const db = this.volume.db;
    const rows = (
      await db
        .selectFrom('volume')
        .select(['id', 'size', 'host', 'provider_location', 'project_id', 'status', 'previous_status', 'attach_status', 'migration_status'])
        .where((eb) => eb.or([eb('host', '=', host), eb('host', 'like', `${host}#%`)]))
        .execute()
    ).filter((r) => r.host === host || r.host?.startsWith(`${host}#`));
    const snapshots: (AgentSnapshot & { status: string })[] = [];
    const ids = rows.map((r) => r.id);
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const found = await db.selectFrom('snapshot').select(['id', 'volume_id', 'volume_size', 'provider_location', 'status']).where('volume_id', 'in', chunk).execute();
      snapshots.push(...found);
    }
    return {
      volumes: rows
        .filter((r) => TRANSIENT_VOLUME.includes(r.status))
        .map((r) => ({ id: r.id, size: r.size, host: r.host ?? host, provider_location: r.provider_location, project_id: r.project_id, status: r.status, previous_status: r.previous_status, attach_status: r.attach_status })),
      snapshots: snapshots.filter((s) => TRANSIENT_SNAPSHOT.includes(s.status)),
      known_volume_ids: ids,
      known_snapshot_ids: snapshots.map((s) => s.id),
      migrating: rows.filter((r) => r.migration_status === 'starting' || r.migration_status === 'migrating').map((r) => r.id),
    };
  }

  /**
   * Records an agent's changes on a volume, and sends `event` when given.
   * The end of a create applies only to a volume still `creating` (not one
   * a restart already failed, nor a deleted one): `updated` says whether it
   * applied. A finished create also takes its source's image metadata.
   */
  async volumeUpdate(volumeId: string, values: VolumeValues, event?: string): Promise<{ updated: boolean }> {
    const set: Partial<VolumeRow> = { updated_at: now() };
    if (values.status !== undefined) set.status = values.status;
    if (values.host !== undefined) set.host = values.host;
    if (values.provider_location !== undefined) set.provider_location = values.provider_location;
    if (values.size !== undefined) set.size = values.size;
    if (values.bootable !== undefined) set.bootable = values.bootable ? 1 : 0;
    if (values.launched_at !== undefined) set.launched_at = values.launched_at;
    if (values.migration_status !== undefined) set.migration_status = values.migration_status;
    if (values.previous_status !== undefined) set.previous_status = values.previous_status;
    if (values.attach_status !== undefined) set.attach_status = values.attach_status;
    const createEnd = event === 'volume.create.end';
    const updated = await this.volume.db.transaction().execute(async (trx) => {
      let q = trx.updateTable('volume').set(set).where('id', '=', volumeId);
      if (createEnd) q = q.where('status', '=', 'creating');
      const res = await q.executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      if (values.image_metadata) {
        await trx.deleteFrom('volume_glance_metadata').where('volume_id', '=', volumeId).where('snapshot_id', '=', '').execute();
        const entries = Object.entries(values.image_metadata);
        if (entries.length > 0) await trx.insertInto('volume_glance_metadata').values(entries.map(([key, value]) => ({ volume_id: volumeId, snapshot_id: '', key, value: String(value) }))).execute();
      } else if (createEnd) {
        await inheritImageMetadata(trx, volumeId);
      }
      return true;
    });
    if (values.status !== undefined && values.status !== 'creating') this.claims.finish(volumeId);
    if (updated && event) await this.notifyVolume(volumeId, event);
    if (updated && values.status !== undefined) await settleGroupOfVolume(this.volume, volumeId);
    return { updated };
  }

  /** A create failed on an agent: back to the scheduler without that backend, or `error`. */
  async createFailed(req: CreateRequest & { host?: string }, reason: string, reschedule: boolean): Promise<void> {
    this.claims.drop(req.volume_id);
    const max = this.volume.config.volume.max_attempts;
    this.volume.log.warn({ volume_id: req.volume_id, host: req.host, reason, attempts: req.attempts }, 'volume create failed on its backend');
    const { host: _host, ...request } = req;
    if (reschedule && req.attempts.length < max) {
      const res = await this.volume.db.updateTable('volume').set({ host: null, updated_at: now() }).where('id', '=', req.volume_id).where('status', '=', 'creating').executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return;
      await this.volume.bus.cast({ topic: SCHEDULER_TOPIC }, 'create_volume', request);
      return;
    }
    if (reschedule) await this.failCreate(request, `${reason} (after ${req.attempts.length} attempts)`, MessageDetail.NO_BACKEND_AVAILABLE);
    else await this.failCreate(request, reason, null);
  }

  /** Puts a volume that is still `creating` in `error`; with `detailId`, records the scheduling user message. */
  async failCreate(req: CreateRequest, reason: string, detailId: string | null): Promise<void> {
    this.claims.drop(req.volume_id);
    // The status and the message in one transaction: whoever sees `error` finds the message.
    const failed = await this.volume.db.transaction().execute(async (trx) => {
      const res = await trx.updateTable('volume').set({ status: 'error', updated_at: now() }).where('id', '=', req.volume_id).where('status', '=', 'creating').executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      if (detailId) {
        await insertMessage(trx, { project_id: req.project_id, resource_type: MessageResource.VOLUME, resource_uuid: req.volume_id, action_id: MessageAction.SCHEDULE_ALLOCATE_VOLUME, detail_id: detailId, ...(req.request_id ? { request_id: req.request_id } : {}) });
      }
      return true;
    });
    if (!failed) return;
    if (req.source.kind === 'backup') await updateBackupIf(this.volume.db, req.source.backup.id, { status: 'available', restore_volume_id: null }, ['restoring']);
    await settleGroupOfVolume(this.volume, req.volume_id);
    this.volume.log.warn({ volume_id: req.volume_id, reason }, 'volume create failed');
    await this.notifyVolume(req.volume_id, 'volume.create.error');
  }

  /** The volume is gone from its backend: its rows go (metadata, image metadata, attachments), then `volume.delete.end`. */
  async volumeDeleted(volumeId: string): Promise<void> {
    const row = await this.volume.db.selectFrom('volume').selectAll().where('id', '=', volumeId).executeTakeFirst();
    if (!row) return;
    const metadata = await this.volumeMetadata(volumeId);
    await this.volume.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('volume_metadata').where('volume_id', '=', volumeId).execute();
      await trx.deleteFrom('volume_admin_metadata').where('volume_id', '=', volumeId).execute();
      await trx.deleteFrom('volume_glance_metadata').where('volume_id', '=', volumeId).execute();
      await trx.deleteFrom('attachment').where('volume_id', '=', volumeId).execute();
      await trx.deleteFrom('volume').where('id', '=', volumeId).execute();
    });
    this.claims.drop(volumeId);
    this.volume.notify('volume.delete.end', volumeUsage({ ...row, status: 'deleted' }, { metadata }));
    if (row.group_id) await settleGroup(this.volume, row.group_id);
  }

  async snapshotUpdate(snapshotId: string, values: SnapshotValues, event?: string): Promise<{ updated: boolean }> {
    const set: Partial<SnapshotRow> = { updated_at: now() };
    if (values.status !== undefined) set.status = values.status;
    if (values.progress !== undefined) set.progress = values.progress;
    if (values.provider_location !== undefined) set.provider_location = values.provider_location;
    const createEnd = event === 'snapshot.create.end';
    const updated = await this.volume.db.transaction().execute(async (trx) => {
      let q = trx.updateTable('snapshot').set(set).where('id', '=', snapshotId);
      if (createEnd) q = q.where('status', '=', 'creating');
      const res = await q.executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      if (createEnd) {
        // The snapshot keeps its volume's image metadata (a volume made from it gets it back).
        const snap = await trx.selectFrom('snapshot').select('volume_id').where('id', '=', snapshotId).executeTakeFirst();
        const rows = snap ? await trx.selectFrom('volume_glance_metadata').select(['key', 'value']).where('volume_id', '=', snap.volume_id).where('snapshot_id', '=', '').execute() : [];
        await trx.deleteFrom('volume_glance_metadata').where('snapshot_id', '=', snapshotId).execute();
        if (rows.length > 0) await trx.insertInto('volume_glance_metadata').values(rows.map((r) => ({ volume_id: '', snapshot_id: snapshotId, key: r.key, value: r.value }))).execute();
      }
      return true;
    });
    if (updated && event) {
      const row = await this.volume.db.selectFrom('snapshot').selectAll().where('id', '=', snapshotId).executeTakeFirst();
      if (row) this.volume.notify(event, await this.snapshotUsage(row));
    }
    if (updated && values.status !== undefined) await settleGroupSnapshotOf(this.volume, snapshotId);
    return { updated };
  }

  /** The snapshot is gone from its backend: its rows go, then `snapshot.delete.end`. */
  async snapshotDeleted(snapshotId: string): Promise<void> {
    const row = await this.volume.db.selectFrom('snapshot').selectAll().where('id', '=', snapshotId).executeTakeFirst();
    if (!row) return;
    const usage = await this.snapshotUsage({ ...row, status: 'deleted' });
    await this.volume.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('snapshot_metadata').where('snapshot_id', '=', snapshotId).execute();
      await trx.deleteFrom('volume_glance_metadata').where('snapshot_id', '=', snapshotId).execute();
      await trx.deleteFrom('snapshot').where('id', '=', snapshotId).execute();
    });
    this.volume.notify('snapshot.delete.end', usage);
    if (row.group_snapshot_id) await settleGroupSnapshot(this.volume, row.group_snapshot_id);
  }

  /** Records a user message (`/messages`), kept for 30 days as Cinder's default `message_ttl`. */
  async addMessage(message: UserMessage): Promise<void> {
    await insertMessage(this.volume.db, message);
  }

  /** The servers a volume is attached to (or being attached to). */
  async attachedInstances(volumeId: string): Promise<string[]> {
    const rows = await this.volume.db.selectFrom('attachment').select(['instance_uuid', 'attach_status']).where('volume_id', '=', volumeId).execute();
    return [...new Set(rows.filter((r) => r.instance_uuid && r.attach_status !== 'detached').map((r) => r.instance_uuid as string))];
  }

  private async volumeMetadata(volumeId: string): Promise<Record<string, string>> {
    const rows = await this.volume.db.selectFrom('volume_metadata').select(['key', 'value']).where('volume_id', '=', volumeId).execute();
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  private async notifyVolume(volumeId: string, event: string): Promise<void> {
    await notifyVolume(this.volume, volumeId, event.replace(/^volume\./, ''));
  }

  private async snapshotUsage(row: SnapshotRow): Promise<Record<string, unknown>> {
    const volume = await this.volume.db.selectFrom('volume').select(['availability_zone']).where('id', '=', row.volume_id).executeTakeFirst();
    const metadata = await this.volume.db.selectFrom('snapshot_metadata').select(['key', 'value']).where('snapshot_id', '=', row.id).execute();
    return {
      tenant_id: row.project_id,
      user_id: row.user_id,
      availability_zone: volume?.availability_zone ?? null,
      volume_id: row.volume_id,
      volume_size: row.volume_size,
      snapshot_id: row.id,
      display_name: row.display_name,
      created_at: row.created_at,
      status: row.status,
      deleted: row.status === 'deleted' ? 'True' : '',
      metadata: Object.fromEntries(metadata.map((m) => [m.key, m.value])),
    };
  }
}

/** A user message as agents and the scheduler record it. */
export interface UserMessage {
  project_id: string;
  resource_type: string;
  resource_uuid: string;
  action_id: string;
  detail_id: string;
  request_id?: string;
}

/** Records a user message (kept for Cinder's default `message_ttl`). */
export async function insertMessage(db: VolumeService['db'], message: UserMessage): Promise<void> {
  const created = new Date();
  await db
    .insertInto('message')
    .values({
      id: randomUUID(),
      project_id: message.project_id,
      request_id: message.request_id ?? null,
      resource_type: message.resource_type,
      resource_uuid: message.resource_uuid,
      event_id: messageEventId(message.resource_type, message.action_id, message.detail_id),
      message_level: 'ERROR',
      action_id: message.action_id,
      detail_id: message.detail_id,
      created_at: created.toISOString(),
      expires_at: new Date(created.getTime() + MESSAGE_TTL_MS).toISOString(),
    })
    .execute();
}


/**
 * A volume made from a snapshot or cloned from a volume takes its source's
 * image metadata and bootable flag (Cinder copies `volume_glance_metadata`).
 */
async function inheritImageMetadata(db: VolumeService['db'], volumeId: string): Promise<void> {
  const row = await db.selectFrom('volume').select(['snapshot_id', 'source_volid']).where('id', '=', volumeId).executeTakeFirst();
  if (!row) return;
  let rows: { key: string; value: string }[] = [];
  let bootableFrom: string | null = null;
  if (row.source_volid) {
    rows = await db.selectFrom('volume_glance_metadata').select(['key', 'value']).where('volume_id', '=', row.source_volid).where('snapshot_id', '=', '').execute();
    bootableFrom = row.source_volid;
  } else if (row.snapshot_id) {
    rows = await db.selectFrom('volume_glance_metadata').select(['key', 'value']).where('snapshot_id', '=', row.snapshot_id).execute();
    const snap = await db.selectFrom('snapshot').select('volume_id').where('id', '=', row.snapshot_id).executeTakeFirst();
    bootableFrom = snap?.volume_id ?? null;
  }
  if (rows.length > 0) {
    await db.deleteFrom('volume_glance_metadata').where('volume_id', '=', volumeId).where('snapshot_id', '=', '').execute();
    await db.insertInto('volume_glance_metadata').values(rows.map((r) => ({ volume_id: volumeId, snapshot_id: '', key: r.key, value: r.value }))).execute();
  }
  const source = bootableFrom ? await db.selectFrom('volume').select('bootable').where('id', '=', bootableFrom).executeTakeFirst() : undefined;
  if (source?.bootable || rows.length > 0) await db.updateTable('volume').set({ bootable: 1 }).where('id', '=', volumeId).execute();
}
