/**
 * The backup driver interface: where the backup manager keeps volume
 * backups (Cinder's `BackupDriver`, small). A driver moves bytes between a
 * volume (through the volume driver's reader and writer) and its store;
 * it never touches the volume database (the manager reports through the
 * conductor).
 *
 * Contracts:
 * - `backup` either completes (every object and the metadata object
 *   written) or throws; what a failed backup wrote is removed by `delete`;
 * - `delete` succeeds when the objects are already gone;
 * - errors are `Error`s whose message is fit for the backup's `fail_reason`.
 */
import type { VolumeReader, VolumeWriter } from '../drivers/driver.js';

/** A backup as a driver sees it. */
export interface BackupRecord {
  id: string;
  volume_id: string;
  project_id: string;
  snapshot_id: string | null;
  parent_id: string | null;
  display_name: string | null;
  display_description: string | null;
  /** The container asked for (null: the driver's default). */
  container: string | null;
  /** What the driver returned when it made the backup (null before). */
  service_metadata: string | null;
  created_at: string;
}

/** With whose authority the store is reached. */
export interface BackupAccess {
  /** The caller's token, to act for the user; null: the service's own. */
  userToken: string | null;
  requestId?: string;
}

/** What a finished backup hands back for the database to keep. */
export interface BackupOutcome {
  container: string;
  service_metadata: string;
  /** Data objects written by this backup (an incremental one reuses its parent's for unchanged data). */
  object_count: number;
}

export interface BackupOptions {
  /** The backup an incremental backup builds on (available, made by this driver). */
  parent: BackupRecord | null;
  /** The volume's metadata, kept with the backup and given back by a restore (Cinder's backup metadata: base, user and image metadata). */
  volumeMeta: Record<string, unknown>;
  access: BackupAccess;
  /** Aborts the backup (a forced delete of a backup being made). */
  signal?: AbortSignal;
}

/** A place backups are kept. */
export interface BackupDriver {
  /** Cinder's name of the driver, recorded on each backup (`cinder.backup.drivers.swift.SwiftBackupDriver`, ...). */
  readonly service: string;
  /** Where the backup's objects go, known before any is written (so that a failed backup's can be found and removed). */
  locate(backup: BackupRecord): { container: string; service_metadata: string };
  /** Copies the reader's content into the store. */
  backup(backup: BackupRecord, reader: VolumeReader, options: BackupOptions): Promise<BackupOutcome>;
  /** Writes the backup's content through the writer (not committed); answers the volume metadata kept with it. */
  restore(backup: BackupRecord, writer: VolumeWriter, options: { isNew: boolean; access: BackupAccess }): Promise<{ volumeMeta: Record<string, unknown> | null }>;
  /** Removes the backup's objects (not those of its parent). Idempotent. */
  delete(backup: BackupRecord, options: { access: BackupAccess }): Promise<void>;
  /** Checks that an imported backup's data is in the store (throws when not). */
  verify(backup: BackupRecord, options: { access: BackupAccess }): Promise<void>;
}

/** Cinder's names of the drivers, as backups record them. */
export const BACKUP_SERVICES = {
  object: 'cinder.backup.drivers.swift.SwiftBackupDriver',
  fake: 'cinder.backup.drivers.fake.FakeBackupDriver',
} as const;

/** The backup driver names `volume.backup_driver` accepts. */
export type BackupDriverName = keyof typeof BACKUP_SERVICES;

/** True when `name` is a backup driver name. */
export function isBackupDriverName(name: string): name is BackupDriverName {
  return Object.hasOwn(BACKUP_SERVICES, name);
}
