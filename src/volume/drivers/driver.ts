/**
 * The volume driver interface: what a volume agent asks of its storage
 * backend (Cinder's `VolumeDriver`, small). The agent owns the state machine
 * and reports to the conductor; a driver only acts on storage and never
 * touches the volume database (agents have none).
 *
 * Contracts shared by every method:
 * - a create either completes or leaves nothing that looks finished (a
 *   partial result is named so that `cleanup` removes it);
 * - deletes succeed when the thing is already gone;
 * - errors are thrown as `Error`s whose message is fit for a user message;
 *   {@link DriverUserError} marks a failure that is the request's own fault
 *   (no other backend would do better, so the create is not rescheduled).
 */
import type { Readable } from 'node:stream';
import type { Connector, ConnectionInfo } from '../rpc.js';

export type { Connector, ConnectionInfo } from '../rpc.js';

/** A volume as a driver sees it. */
export interface DriverVolume {
  id: string;
  /** GiB. */
  size: number;
  /** What the driver returned when it created the volume (the file's path for `file`); null for a volume being created. */
  provider_location: string | null;
}

/** A snapshot as a driver sees it. */
export interface DriverSnapshot {
  id: string;
  volume_id: string;
  /** The size of the volume when the snapshot was taken, GiB. */
  volume_size: number;
  provider_location: string | null;
}

/** An image a volume is created from, as the image API shows it. */
export interface DriverImage {
  id: string;
  name: string | null;
  disk_format: string | null;
  container_format: string | null;
  /** Bytes of the image data. */
  size: number | null;
  /** Bytes of the disk the image holds, when the image service knows it. */
  virtual_size: number | null;
  min_disk: number;
  min_ram: number;
  checksum: string | null;
  /** The image's other (user) properties, as strings. */
  properties: Record<string, string>;
}

/** Opens the image's data (`GET /v2/images/<id>/file`) as a stream; called at most once per create. */
export type OpenImageStream = () => Promise<Readable>;

/** What a create or snapshot hands back for the database to keep. */
export interface DriverUpdate {
  provider_location?: string | null;
}

/** Capacity and capabilities of the backend's one pool (Cinder's `get_volume_stats`; the agent names the pool after the backend). */
export interface DriverStats {
  total_capacity_gb: number;
  free_capacity_gb: number;
  /** GiB of the volumes this backend holds. */
  allocated_capacity_gb: number;
  /** GiB promised to volumes (equal to allocated for full copies). */
  provisioned_capacity_gb: number;
  thin_provisioning_support: boolean;
  thick_provisioning_support: boolean;
  max_over_subscription_ratio: number;
  reserved_percentage: number;
  multiattach: boolean;
  online_extend_support: boolean;
  storage_protocol: string;
  vendor_name: string;
  driver_version: string;
  /** Further capabilities that volume types can match (`capabilities:<name>`). */
  capabilities?: Record<string, unknown>;
}

/**
 * A backend. One instance per backend per agent process; methods may run
 * concurrently for different volumes.
 */
export interface VolumeDriver {
  /** `fake` or `file`. */
  readonly type: string;
  /** Capacity and capabilities, reported to the scheduler. */
  stats(): Promise<DriverStats>;
  /** Creates an empty volume of `volume.size` GiB. */
  createVolume(volume: DriverVolume): Promise<DriverUpdate>;
  /**
   * Creates a volume holding the image's disk, resized to the volume's size.
   * Throws a {@link DriverUserError} when the image's disk does not fit
   * ("Image virtual size is XGB and doesn't fit in a volume of size YGB.").
   */
  createFromImage(volume: DriverVolume, image: DriverImage, openImageStream: OpenImageStream): Promise<DriverUpdate>;
  /** Creates a volume holding the snapshot's content (grown to `volume.size`). */
  createFromSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<DriverUpdate>;
  /** Creates a volume holding `source`'s content (grown to `volume.size`). */
  createClone(volume: DriverVolume, source: DriverVolume): Promise<DriverUpdate>;
  /**
   * Creates the volume (same id, on this backend) holding the content of
   * its copy on another backend, read through `source`: what that backend's
   * `initializeConnection` answered for this host (a migration). Like every
   * create, a failure leaves nothing that looks finished.
   */
  createFromExport(volume: DriverVolume, source: ConnectionInfo): Promise<DriverUpdate>;
  /** Removes the volume's storage. Succeeds when absent; throws while a snapshot still depends on it only if the driver keeps such links. */
  deleteVolume(volume: DriverVolume): Promise<void>;
  /** Grows the volume to `newSize` GiB (attached or not). */
  extendVolume(volume: DriverVolume, newSize: number): Promise<void>;
  /** Takes a point-in-time copy of the volume. */
  createSnapshot(snapshot: DriverSnapshot, volume: DriverVolume): Promise<DriverUpdate>;
  /** Removes a snapshot; succeeds when absent. */
  deleteSnapshot(snapshot: DriverSnapshot): Promise<void>;
  /** Puts the snapshot's content back into the volume (the volume keeps its current size). */
  revertToSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<void>;
  /** Exports the volume to the connector's host; the answer tells that host how to attach it. Idempotent per attachment. */
  initializeConnection(volume: DriverVolume, connector: Connector, attachmentId: string): Promise<ConnectionInfo>;
  /** Ends the attachment's export; succeeds when there is none. */
  terminateConnection(volume: DriverVolume, connector: Connector | null, attachmentId: string): Promise<void>;
  /**
   * The volume's content as an image of `diskFormat` (`raw`, `qcow2`, ...),
   * as a stream; any temporary file is removed when the stream ends or is
   * destroyed.
   */
  copyToImage(volume: DriverVolume, diskFormat: string): Promise<Readable>;
  /**
   * Opens a volume's or a snapshot's content for a backup, as raw bytes
   * (whatever the backend's format), with the ranges that may hold data.
   * An attached volume is read as it is (a crash-consistent copy). Any
   * temporary copy is named so that `cleanup` removes it.
   */
  openBackupSource(source: BackupSource): Promise<VolumeReader>;
  /**
   * Opens a volume for a restore: raw bytes written at offsets, completed by
   * `commit`. The volume is not attached. `isNew`: the volume reads as zeros
   * already (nothing needs zeroing).
   */
  openRestoreTarget(volume: DriverVolume, options: { isNew: boolean }): Promise<VolumeWriter>;
  /**
   * Removes what belongs to no volume or snapshot of the lists (orphans) and
   * every partial result of an interrupted create. Called when an agent
   * starts, before it takes work.
   */
  cleanup(knownVolumeIds: string[], knownSnapshotIds: string[]): Promise<void>;
  /** Releases what the driver holds in this process (exports keep running: attached guests still use them). */
  stop(): Promise<void>;
}

/** What a backup reads: a volume, or a snapshot of one. */
export type BackupSource = { volume: DriverVolume } | { snapshot: DriverSnapshot };

/** A byte range of a volume. */
export interface Extent {
  offset: number;
  length: number;
}

/** A volume's (or snapshot's) content as raw bytes, read for a backup. */
export interface VolumeReader {
  /** Bytes of the volume. */
  readonly size: number;
  /** The ranges that may hold data, in order and apart; everything else reads as zeros. */
  readonly extents: readonly Extent[];
  /** Streams bytes `[offset, offset + length)`; may be called again for the same range. */
  read(offset: number, length: number): Readable;
  /** Releases what the reader holds (temporary copies). Idempotent. */
  close(): Promise<void>;
}

/** A volume's content written back as raw bytes (a restore). */
export interface VolumeWriter {
  /** Bytes of the volume. */
  readonly size: number;
  /** Writes the stream's bytes from `offset`. */
  write(offset: number, data: Readable): Promise<void>;
  /** Makes `[offset, offset + length)` read as zeros. */
  zero(offset: number, length: number): Promise<void>;
  /** Puts what was written into the volume and releases the writer; on failure the volume's content is undefined. */
  commit(): Promise<void>;
  /** Releases the writer without completing (after a failure). Idempotent. */
  close(): Promise<void>;
}

/** A failure that is the request's own fault (an image that does not fit): the create is not rescheduled. */
export class DriverUserError extends Error {
  constructor(
    message: string,
    /** `image_too_big` when the image's disk is larger than the volume; `image_invalid` for an image that cannot be used. */
    readonly reason: 'image_too_big' | 'image_invalid' = 'image_invalid',
  ) {
    super(message);
    this.name = 'DriverUserError';
  }

  /** Cinder's `ImageUnacceptable` for an image whose disk does not fit. */
  static imageTooBig(virtualGb: number, volumeGb: number): DriverUserError {
    return new DriverUserError(`Image virtual size is ${virtualGb}GB and doesn't fit in a volume of size ${volumeGb}GB.`, 'image_too_big');
  }
}

/** Bytes per GiB. */
export const GiB = 1024 ** 3;
