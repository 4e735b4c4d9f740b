import type { Bus, Consumer } from '../../core/bus/index.js';
import type { VolumeConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import { toDriverSnapshot, toDriverVolume } from '../agent/operations.js';
import type { VolumeDriver, VolumeReader, VolumeWriter } from '../drivers/driver.js';
import { MessageDetail } from '../message-fields.js';
import type { BackupAccess, BackupDriver } from './driver.js';
import { BACKUP_TOPIC, BackupConductorRpc, type AgentBackup, type BackupCaller, type CreateBackupRequest, type DeleteBackupRequest, type RestoreBackupRequest } from './rpc.js';

/** What a backup manager runs with. */
export interface BackupManagerOptions {
  /** The backup service's host (the volume agents' host name, without a backend). */
  host: string;
  availabilityZone: string;
  /** The drivers of this host's volume agents, by backend name: they read and write the volumes. */
  drivers: ReadonlyMap<string, VolumeDriver>;
  /** Where backups are kept. */
  driver: BackupDriver;
  bus: Bus;
  config: VolumeConfig;
  log: Logger;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The backup service of one host (cinder-backup, `volume-backup.<host>`).
 * It runs beside the host's volume agents and uses their drivers to read a
 * volume (or snapshot) and to write one back, and its backup driver to keep
 * the data. It has no database: it reports through the conductor, keeps a
 * `cinder-backup` service row alive with heartbeats, and on start settles
 * what a previous run left (the conductor fails interrupted creates and
 * restores; deletes are finished here).
 */
export class BackupManager {
  private readonly conductor: BackupConductorRpc;
  private consumer: Consumer | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Work in progress (for tests that wait for quiet). */
  private readonly running = new Set<Promise<unknown>>();
  /** Backups being made, to cancel on a forced delete. */
  private readonly creating = new Map<string, { abort: AbortController; done: Promise<void> }>();

  constructor(readonly options: BackupManagerOptions) {
    this.conductor = new BackupConductorRpc(options.bus);
  }

  get host(): string {
    return this.options.host;
  }

  /** Settles a previous run's work, serves `volume-backup.<host>`, reports, and starts the heartbeat. */
  async start(): Promise<void> {
    const work = await this.conductor.hostWork(this.host);
    this.consumer = await this.options.bus.serve(BACKUP_TOPIC, this.host, {
      create_backup: (req: CreateBackupRequest) => void this.track(this.createBackup(req)),
      restore_backup: (req: RestoreBackupRequest) => void this.track(this.restoreBackup(req)),
      delete_backup: (req: DeleteBackupRequest) => void this.track(this.deleteBackup(req)),
      verify_backup: (req: DeleteBackupRequest) => this.verifyBackup(req),
    });
    await this.report();
    for (const backup of work.deleting) void this.track(this.deleteBackup({ backup, user_token: null }));
    const every = this.options.config.report_interval;
    if (every > 0) this.timer = setInterval(() => void this.report().catch((err: unknown) => this.warn(err, 'backup service heartbeat failed')), every * 1000);
  }

  /** Stops as a crash would: no more work taken or reported (the next start settles what ran). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const { abort } of this.creating.values()) abort.abort();
    await this.consumer?.stop();
    this.consumer = null;
  }

  /** Resolves once the work started so far has ended (tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private report(): Promise<void> {
    return this.conductor.report(this.host, this.options.availabilityZone);
  }

  private track(work: Promise<void>): Promise<void> {
    const tracked = work.catch((err: unknown) => this.warn(err, 'backup work failed'));
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
    return tracked;
  }

  private warn(err: unknown, message: string, fields: Record<string, unknown> = {}): void {
    if (this.stopped) return;
    this.options.log.warn({ err, host: this.host, ...fields }, message);
  }

  /** The driver of the backend that holds a volume (`host@backend#pool`). */
  private volumeDriver(volumeHost: string): VolumeDriver {
    const at = volumeHost.indexOf('@');
    const host = at < 0 ? volumeHost : volumeHost.slice(0, at);
    const backend = (at < 0 ? '' : volumeHost.slice(at + 1)).split('#')[0] ?? '';
    const driver = host === this.host ? this.options.drivers.get(backend) : undefined;
    if (!driver) throw new Error(`The backup service of ${this.host} has no access to backend ${volumeHost}.`);
    return driver;
  }

  private access(req: BackupCaller): BackupAccess {
    return { userToken: req.user_token, ...(req.request_id ? { requestId: req.request_id } : {}) };
  }

  /** Backs up the volume or snapshot; `available` or `error` through the conductor. */
  async createBackup(req: CreateBackupRequest): Promise<void> {
    const id = req.backup.id;
    const abort = new AbortController();
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    this.creating.set(id, { abort, done });
    const location = this.options.driver.locate(req.backup);
    let reader: VolumeReader | null = null;
    try {
      const driver = this.volumeDriver(req.volume.host);
      reader = await driver.openBackupSource(req.snapshot ? { snapshot: toDriverSnapshot(req.snapshot) } : { volume: toDriverVolume(req.volume) });
      const outcome = await this.options.driver.backup(req.backup, reader, { parent: req.parent, volumeMeta: req.volume_meta, access: this.access(req), signal: abort.signal });
      if (this.stopped) return;
      await this.conductor.created(id, { ...outcome, service: this.options.driver.service, availability_zone: this.options.availabilityZone });
    } catch (err) {
      if (this.stopped) return;
      this.warn(err, 'backup create failed', { backup_id: id, volume_id: req.volume.id });
      const detail = reader ? MessageDetail.BACKUP_CREATE_DRIVER_ERROR : MessageDetail.BACKUP_CREATE_DEVICE_ERROR;
      await this.conductor.createFailed(id, errorText(err), detail, { ...location, service: this.options.driver.service, availability_zone: this.options.availabilityZone });
    } finally {
      await reader?.close().catch((err: unknown) => this.warn(err, 'could not release a backup source', { backup_id: id }));
      this.creating.delete(id);
      finish();
    }
  }

  /** Writes the backup into the volume; the volume `available` (or `error_restoring`) through the conductor. */
  async restoreBackup(req: RestoreBackupRequest): Promise<void> {
    let writer: VolumeWriter | null = null;
    try {
      const driver = this.volumeDriver(req.volume.host);
      writer = await driver.openRestoreTarget(toDriverVolume(req.volume), { isNew: req.volume_is_new });
      if (req.backup.service && req.backup.service !== this.options.driver.service) {
        throw new Error(`Restore backup aborted, the backup service currently configured [${this.options.driver.service}] is not the backup service that was used to create this backup [${req.backup.service}].`);
      }
      const { volumeMeta } = await this.options.driver.restore(req.backup, writer, { isNew: req.volume_is_new, access: this.access(req) });
      await writer.commit();
      writer = null;
      if (this.stopped) return;
      await this.conductor.restored(req.backup.id, req.volume.id, volumeMeta);
    } catch (err) {
      await writer?.close().catch(() => undefined);
      if (this.stopped) return;
      this.warn(err, 'backup restore failed', { backup_id: req.backup.id, volume_id: req.volume.id });
      const detail = writer ? MessageDetail.BACKUP_RESTORE_ERROR : MessageDetail.ATTACH_ERROR;
      await this.conductor.restoreFailed(req.backup.id, req.volume.id, errorText(err), detail);
    }
  }

  /** Removes the backup's objects (cancelling its create first, for a forced delete), then its record. */
  async deleteBackup(req: DeleteBackupRequest): Promise<void> {
    const id = req.backup.id;
    const making = this.creating.get(id);
    if (making) {
      making.abort.abort();
      await making.done;
    }
    const backup: AgentBackup = req.backup.service_metadata ? req.backup : { ...req.backup, ...this.options.driver.locate(req.backup) };
    try {
      if (req.backup.service && req.backup.service !== this.options.driver.service) {
        throw new Error(`Delete backup aborted, the backup service currently configured [${this.options.driver.service}] is not the backup service that was used to create this backup [${req.backup.service}].`);
      }
      await this.options.driver.delete(backup, { access: this.access(req) });
    } catch (err) {
      if (this.stopped) return;
      this.warn(err, 'backup delete failed', { backup_id: id });
      await this.conductor.deleteFailed(id, errorText(err));
      return;
    }
    if (this.stopped) return;
    await this.conductor.deleted(id);
  }

  /** Checks an imported record: the driver is the one that made it and its data is there. */
  async verifyBackup(req: DeleteBackupRequest): Promise<{ service: string }> {
    const service = this.options.driver.service;
    if (req.backup.service && req.backup.service !== service) {
      throw new Error(`Import record failed, cannot find backup service to perform the import. Request service ${req.backup.service}.`);
    }
    await this.options.driver.verify(req.backup, { access: this.access(req) });
    return { service };
  }
}
