import type { Bus } from '../../core/bus/index.js';
import { CONDUCTOR_TOPIC, type AgentSnapshot, type AgentVolume } from '../rpc.js';
import type { BackupRecord } from './driver.js';

/**
 * The bus API of volume backups (Cinder's `backup/rpcapi.py`): the API
 * casts to the backup manager of a host (`volume-backup.<host>`, beside the
 * volume agents of that host, whose drivers read and write the volumes);
 * the manager reports through `volume-conductor`. Messages only gain
 * fields; a field never changes meaning.
 */
export const BACKUP_TOPIC = 'volume-backup';

/** A backup as the manager needs it (the driver's record, and its size). */
export interface AgentBackup extends BackupRecord {
  /** GiB. */
  size: number;
  /** The driver that made it (null: not made yet). */
  service: string | null;
}

/** Acting for whom: the caller's token and request id (the manager falls back to the service's own token). */
export interface BackupCaller {
  user_token: string | null;
  request_id?: string;
}

/** `create_backup`: back up the volume (or its snapshot) into the store. */
export interface CreateBackupRequest extends BackupCaller {
  backup: AgentBackup;
  volume: AgentVolume;
  snapshot: AgentSnapshot | null;
  /** The parent of an incremental backup. */
  parent: AgentBackup | null;
  /** The volume's metadata to keep with the backup (base, user and image metadata, as Cinder's backup metadata). */
  volume_meta: Record<string, unknown>;
}

/** `restore_backup`: write the backup into the volume (`restoring-backup`). */
export interface RestoreBackupRequest extends BackupCaller {
  backup: AgentBackup;
  volume: AgentVolume;
  /** The volume was made for the restore (it reads as zeros). */
  volume_is_new: boolean;
}

/** `delete_backup`: remove the backup's objects (`deleting`). */
export interface DeleteBackupRequest extends BackupCaller {
  backup: AgentBackup;
}

/** What the manager records of a finished backup. */
export interface BackupValues {
  container: string;
  service_metadata: string;
  object_count: number;
  service: string;
  availability_zone: string;
}

/** What a starting manager must finish: the backups it was deleting. */
export interface BackupHostWork {
  deleting: AgentBackup[];
}

/** Calls from the API to the backup managers. */
export class BackupRpc {
  constructor(private readonly bus: Bus) {}

  createBackup(host: string, req: CreateBackupRequest): Promise<void> {
    return this.bus.cast({ topic: BACKUP_TOPIC, server: host }, 'create_backup', req);
  }

  restoreBackup(host: string, req: RestoreBackupRequest): Promise<void> {
    return this.bus.cast({ topic: BACKUP_TOPIC, server: host }, 'restore_backup', req);
  }

  deleteBackup(host: string, req: DeleteBackupRequest): Promise<void> {
    return this.bus.cast({ topic: BACKUP_TOPIC, server: host }, 'delete_backup', req);
  }

  /** Checks that an imported backup's data is in the store: resolves, or rejects with why not. */
  verifyBackup(host: string, req: DeleteBackupRequest): Promise<{ service: string }> {
    return this.bus.call({ topic: BACKUP_TOPIC, server: host }, 'verify_backup', req, { timeoutMs: 120_000 });
  }
}

/** Calls from a backup manager to the conductor (it has no database). */
export class BackupConductorRpc {
  constructor(private readonly bus: Bus) {}

  /** A heartbeat of the `cinder-backup` service of `host` (the row is made on first report). */
  report(host: string, availabilityZone: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'backup_service_report', { host, availability_zone: availabilityZone }, { timeoutMs: 30_000 });
  }

  /** A starting manager: what a previous run left halfway is settled (creates fail, restores end), and the deletes to finish are answered. */
  hostWork(host: string): Promise<BackupHostWork> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'backup_host_work', { host }, { timeoutMs: 60_000 });
  }

  /** The backup is made: `available` (unless deleted meanwhile), its volume or snapshot back to what it was. */
  created(backupId: string, values: BackupValues): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'backup_created', { backup_id: backupId, values }, { timeoutMs: 60_000 });
  }

  /**
   * The backup failed: `error` with the reason (and where its objects went,
   * for the delete to find), its volume or snapshot back to what it was, a
   * user message.
   */
  createFailed(backupId: string, reason: string, detailId: string, values: Partial<BackupValues>): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'backup_create_failed', { backup_id: backupId, reason, detail_id: detailId, values }, { timeoutMs: 60_000 });
  }

  /** The backup is in the volume: the volume `available` with the backup's metadata, the backup `available`. */
  restored(backupId: string, volumeId: string, volumeMeta: Record<string, unknown> | null): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'backup_restored', { backup_id: backupId, volume_id: volumeId, volume_meta: volumeMeta }, { timeoutMs: 60_000 });
  }

  /** The restore failed: the volume `error_restoring`, the backup `available`, a user message. */
  restoreFailed(backupId: string, volumeId: string, reason: string, detailId: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'backup_restore_failed', { backup_id: backupId, volume_id: volumeId, reason, detail_id: detailId }, { timeoutMs: 60_000 });
  }

  /** The backup's objects are gone: its record goes. */
  deleted(backupId: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'backup_deleted', { backup_id: backupId }, { timeoutMs: 60_000 });
  }

  /** The delete failed: `error_deleting` with the reason, a user message. */
  deleteFailed(backupId: string, reason: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'backup_delete_failed', { backup_id: backupId, reason }, { timeoutMs: 60_000 });
  }
}
