import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileRange, mergeExtents, writeAt, zeroAt } from './byte-ranges.js';
import {
  DriverUserError,
  GiB,
  type BackupSource,
  type Connector,
  type ConnectionInfo,
  type DriverImage,
  type DriverSnapshot,
  type DriverStats,
  type DriverUpdate,
  type DriverVolume,
  type Extent,
  type OpenImageStream,
  type VolumeDriver,
  type VolumeReader,
  type VolumeWriter,
} from './driver.js';
import { NbdExports } from './nbd-export.js';
import { QemuImg, qemuFormatOf } from './qemu-img.js';

export { qemuImgWorks } from './qemu-img.js';

export interface FileDriverOptions {
  /** The directory of the backend's files (created if missing). */
  path: string;
  format: 'qcow2' | 'raw';
  /** Reported capacity in GiB; 0: the file system's. */
  capacityGb: number;
  qemuImg: string;
  /** `qemu-nbd` (default: beside `qemuImg`, or on the PATH). */
  qemuNbd?: string;
  /** Where NBD exports listen. */
  nbdHost: string;
  /** This agent's host name: a connector from this host (or from this machine's hostname) gets the file itself (`local`), any other an NBD export. */
  host: string;
}

/** Image formats qemu-img may read from an image (never one with a backing or data file). */
const READABLE_FORMATS = new Set(['raw', 'qcow2', 'vmdk', 'vdi', 'vpc', 'vhdx']);
/** Ids become file names: nothing but a UUID's characters. */
const SAFE_ID = /^[A-Za-z0-9-]{1,64}$/;
/** Cinder's default `max_over_subscription_ratio` (files are sparse: thin provisioning). */
const OVER_SUBSCRIPTION = 20;

/**
 * A backend of files, one per volume (`<path>/volume-<id>.qcow2` or `.raw`)
 * and per snapshot (`snapshot-<id>.<format>`, a full copy), made with
 * qemu-img. Every create writes a `.part` file and renames it when complete,
 * so a crash never leaves something that looks finished, and `cleanup`
 * removes every `.part` and every file no volume or snapshot owns. Attached
 * locally (the file's path) when the connector is this host, otherwise
 * through an NBD export (qemu-nbd).
 */
export class FileVolumeDriver implements VolumeDriver {
  readonly type = 'file';
  readonly dir: string;
  readonly format: 'qcow2' | 'raw';
  private readonly qemu: QemuImg;
  readonly exports: NbdExports;
  /** GiB of each volume and snapshot file (learned at cleanup, kept by each operation). */
  private readonly volumeSizes = new Map<string, number>();
  private readonly snapshotSizes = new Map<string, number>();

  constructor(private readonly options: FileDriverOptions) {
    this.dir = path.resolve(options.path);
    this.format = options.format;
    fs.mkdirSync(this.dir, { recursive: true });
    this.qemu = new QemuImg(options.qemuImg);
    const qemuNbd = options.qemuNbd ?? (options.qemuImg.includes('/') ? path.join(path.dirname(options.qemuImg), 'qemu-nbd') : 'qemu-nbd');
    this.exports = new NbdExports(this.dir, qemuNbd, options.nbdHost);
  }

  /** The file of a volume. */
  volumePath(id: string): string {
    return path.join(this.dir, `volume-${checkId(id)}.${this.format}`);
  }

  /** The file of a snapshot. */
  snapshotPath(id: string): string {
    return path.join(this.dir, `snapshot-${checkId(id)}.${this.format}`);
  }

  async stats(): Promise<DriverStats> {
    let allocated = 0;
    for (const size of this.volumeSizes.values()) allocated += size;
    for (const size of this.snapshotSizes.values()) allocated += size;
    const fsStats = await fs.promises.statfs(this.dir);
    const fsTotal = Math.floor((fsStats.blocks * fsStats.bsize) / GiB);
    const fsFree = Math.floor((fsStats.bavail * fsStats.bsize) / GiB);
    const total = this.options.capacityGb > 0 ? this.options.capacityGb : fsTotal;
    const free = this.options.capacityGb > 0 ? Math.max(0, Math.min(fsFree, this.options.capacityGb - allocated)) : fsFree;
    return {
      total_capacity_gb: total,
      free_capacity_gb: free,
      allocated_capacity_gb: allocated,
      provisioned_capacity_gb: allocated,
      thin_provisioning_support: true,
      thick_provisioning_support: false,
      max_over_subscription_ratio: OVER_SUBSCRIPTION,
      reserved_percentage: 0,
      multiattach: true,
      // A raw file grows with truncate under a running reader; a qcow2 header cannot change under its writer.
      online_extend_support: this.format === 'raw',
      storage_protocol: 'NBD',
      vendor_name: 'Open Source',
      driver_version: '1.0.0',
      capabilities: { volume_format: this.format },
    };
  }

  /** Sets the virtual size of `file` (grow only). */
  private async grow(file: string, gib: number): Promise<void> {
    if (this.format === 'raw') {
      const { size } = await fs.promises.stat(file);
      if (size < gib * GiB) await fs.promises.truncate(file, gib * GiB);
    } else {
      const info = await this.qemu.info(file, this.format);
      if (info['virtual-size'] < gib * GiB) await this.qemu.resize(file, this.format, gib * GiB);
    }
  }

  /** Makes `final` from the `.part` beside it, written by `fill`; the `.part` is removed on failure. */
  private async build(final: string, fill: (part: string) => Promise<void>): Promise<void> {
    const part = `${final}.part`;
    try {
      await fill(part);
      await fsyncFile(part);
      await fs.promises.rename(part, final);
      await fsyncFile(this.dir);
    } catch (err) {
      await fs.promises.rm(part, { force: true });
      throw err;
    }
  }

  private done(volume: DriverVolume): DriverUpdate {
    this.volumeSizes.set(volume.id, volume.size);
    return { provider_location: this.volumePath(volume.id) };
  }

  async createVolume(volume: DriverVolume): Promise<DriverUpdate> {
    await this.build(this.volumePath(volume.id), (part) => this.qemu.create(part, this.format, volume.size * GiB));
    return this.done(volume);
  }

  async createFromImage(volume: DriverVolume, image: DriverImage, openImageStream: OpenImageStream): Promise<DriverUpdate> {
    const final = this.volumePath(volume.id);
    const download = path.join(this.dir, `volume-${checkId(volume.id)}.image.part`);
    // The image service's virtual size, when it knows one, spares the download of an image that cannot fit; the data's own is checked after.
    const claimedGb = image.virtual_size ? Math.ceil(image.virtual_size / GiB) : 0;
    if (claimedGb > volume.size) throw DriverUserError.imageTooBig(claimedGb, volume.size);
    try {
      await pipeline(await openImageStream(), fs.createWriteStream(download, { flags: 'w' }));
      const info = await this.qemu.info(download);
      checkImage(image, info.format, info);
      const virtualGb = Math.ceil(info['virtual-size'] / GiB);
      if (virtualGb > volume.size) throw DriverUserError.imageTooBig(virtualGb, volume.size);
      await this.build(final, async (part) => {
        if (info.format === this.format) await fs.promises.rename(download, part);
        else await this.qemu.convert(download, info.format, part, this.format);
        await this.grow(part, volume.size);
      });
    } finally {
      await fs.promises.rm(download, { force: true });
    }
    return this.done(volume);
  }

  async createFromSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<DriverUpdate> {
    const source = this.snapshotPath(snapshot.id);
    await this.build(this.volumePath(volume.id), async (part) => {
      await this.qemu.convert(source, this.format, part, this.format);
      await this.grow(part, volume.size);
    });
    return this.done(volume);
  }

  async createClone(volume: DriverVolume, source: DriverVolume): Promise<DriverUpdate> {
    const from = this.volumePath(source.id);
    await this.build(this.volumePath(volume.id), async (part) => {
      await this.qemu.convert(from, this.format, part, this.format);
      await this.grow(part, volume.size);
    });
    return this.done(volume);
  }

  /**
   * Copies a volume of another backend: its file when the connection is
   * `local` (a backend of this host), its NBD export otherwise, converted to
   * this backend's format and grown to the volume's size.
   */
  async createFromExport(volume: DriverVolume, source: ConnectionInfo): Promise<DriverUpdate> {
    const from = exportSource(source);
    await this.build(this.volumePath(volume.id), async (part) => {
      await this.qemu.convert(from.path, from.format, part, this.format, { share: from.share });
      await this.grow(part, volume.size);
    });
    return this.done(volume);
  }

  async deleteVolume(volume: DriverVolume): Promise<void> {
    await this.exports.closeAll(checkId(volume.id));
    const file = this.volumePath(volume.id);
    await fs.promises.rm(`${file}.part`, { force: true });
    await fs.promises.rm(path.join(this.dir, `volume-${volume.id}.image.part`), { force: true });
    await fs.promises.rm(file, { force: true });
    this.volumeSizes.delete(volume.id);
  }

  async extendVolume(volume: DriverVolume, newSize: number): Promise<void> {
    const file = this.volumePath(volume.id);
    await fs.promises.access(file);
    await this.grow(file, newSize);
    this.volumeSizes.set(volume.id, newSize);
  }

  async createSnapshot(snapshot: DriverSnapshot, volume: DriverVolume): Promise<DriverUpdate> {
    const file = this.snapshotPath(snapshot.id);
    await this.build(file, (part) => this.qemu.convert(this.volumePath(volume.id), this.format, part, this.format));
    this.snapshotSizes.set(snapshot.id, volume.size);
    return { provider_location: file };
  }

  async deleteSnapshot(snapshot: DriverSnapshot): Promise<void> {
    const file = this.snapshotPath(snapshot.id);
    await fs.promises.rm(`${file}.part`, { force: true });
    await fs.promises.rm(file, { force: true });
    this.snapshotSizes.delete(snapshot.id);
  }

  async revertToSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<void> {
    const source = this.snapshotPath(snapshot.id);
    await fs.promises.access(source);
    await this.build(this.volumePath(volume.id), async (part) => {
      await this.qemu.convert(source, this.format, part, this.format);
      await this.grow(part, volume.size);
    });
  }

  async initializeConnection(volume: DriverVolume, connector: Connector, attachmentId: string): Promise<ConnectionInfo> {
    const file = this.volumePath(volume.id);
    await fs.promises.access(file);
    // The agent's host name, or this machine's (compute names its hosts by hostname): the file is right here.
    if (connector.host === this.options.host || connector.host === os.hostname()) {
      return { driver_volume_type: 'local', data: { device_path: file, format: this.format, access_mode: 'rw', volume_id: volume.id } };
    }
    const nbd = await this.exports.open(volume.id, file, this.format, checkId(attachmentId));
    return { driver_volume_type: 'nbd', data: { host: nbd.host, port: nbd.port, export_name: nbd.export_name, format: 'raw', access_mode: 'rw', volume_id: volume.id } };
  }

  async terminateConnection(volume: DriverVolume, _connector: Connector | null, attachmentId: string): Promise<void> {
    await this.exports.close(checkId(volume.id), checkId(attachmentId));
  }

  async copyToImage(volume: DriverVolume, diskFormat: string): Promise<Readable> {
    const target = qemuFormatOf(diskFormat);
    if (!target) throw new Error(`Volumes cannot be uploaded as disk format ${diskFormat}.`);
    const file = this.volumePath(volume.id);
    await fs.promises.access(file);
    if (target === 'raw' && this.format === 'raw') return fs.createReadStream(file);
    const temp = path.join(this.dir, `upload-${checkId(volume.id)}-${randomUUID()}.part`);
    try {
      await this.qemu.convert(file, this.format, temp, target);
    } catch (err) {
      await fs.promises.rm(temp, { force: true });
      throw err;
    }
    const stream = fs.createReadStream(temp);
    stream.once('close', () => void fs.promises.rm(temp, { force: true }));
    return stream;
  }

  /**
   * A raw file is read as it is; a qcow2 one through a raw copy
   * (`backup-<id>-<n>.part`, sparse, removed on close). The data ranges are
   * what `qemu-img map` finds allocated.
   */
  async openBackupSource(source: BackupSource): Promise<VolumeReader> {
    const id = 'volume' in source ? source.volume.id : source.snapshot.id;
    const file = 'volume' in source ? this.volumePath(id) : this.snapshotPath(id);
    await fs.promises.access(file);
    let raw = file;
    let temp: string | null = null;
    if (this.format !== 'raw') {
      temp = path.join(this.dir, `backup-${checkId(id)}-${randomUUID()}.part`);
      try {
        await this.qemu.convert(file, this.format, temp, 'raw');
      } catch (err) {
        await fs.promises.rm(temp, { force: true });
        throw err;
      }
      raw = temp;
    }
    try {
      const size = (await this.qemu.info(file, this.format))['virtual-size'];
      const extents = await this.dataExtents(file, this.format);
      return {
        size,
        extents,
        read: (offset, length) => fileRange(raw, offset, length),
        close: async () => {
          if (temp) await fs.promises.rm(temp, { force: true });
          temp = null;
          raw = file;
        },
      };
    } catch (err) {
      if (temp) await fs.promises.rm(temp, { force: true });
      throw err;
    }
  }

  /**
   * A raw volume file is written in place; a qcow2 one through a sparse
   * raw file (`restore-<id>-<n>.part`) that `commit` converts into it.
   */
  async openRestoreTarget(volume: DriverVolume, options: { isNew: boolean }): Promise<VolumeWriter> {
    const file = this.volumePath(volume.id);
    await fs.promises.access(file);
    const size = (await this.qemu.info(file, this.format))['virtual-size'];
    const temp = this.format === 'raw' ? null : path.join(this.dir, `restore-${checkId(volume.id)}-${randomUUID()}.part`);
    const handle = await fs.promises.open(temp ?? file, temp ? 'w+' : 'r+');
    let open = true;
    const release = async (): Promise<void> => {
      if (open) await handle.close();
      open = false;
      if (temp) await fs.promises.rm(temp, { force: true });
    };
    try {
      if (temp) await handle.truncate(size);
    } catch (err) {
      await release();
      throw err;
    }
    return {
      size,
      write: async (offset, data) => {
        await writeAt(handle, offset, data);
      },
      // The temporary copy starts as zeros; the volume file itself must be overwritten.
      zero: (offset, length) => (temp ? Promise.resolve() : zeroAt(handle, offset, length)),
      commit: async () => {
        try {
          await handle.sync();
          if (temp) {
            await handle.close();
            open = false;
            await this.qemu.run(['convert', '-n', ...(options.isNew ? ['--target-is-zero'] : []), '-W', '-f', 'raw', '-O', this.format, temp, file]);
            await fsyncFile(file);
          }
        } finally {
          await release();
        }
      },
      close: release,
    };
  }

  /** The ranges of an image that hold data (guest offsets), from `qemu-img map`: holes, unallocated and zero ranges left out. */
  private async dataExtents(file: string, format: string): Promise<Extent[]> {
    const out = await this.qemu.run(['map', '--output=json', '-U', '-f', format, file]);
    const entries = JSON.parse(out) as { start: number; length: number; data: boolean; zero: boolean }[];
    return mergeExtents(entries.filter((e) => e.data && !e.zero).map((e) => ({ offset: e.start, length: e.length })));
  }

  async cleanup(knownVolumeIds: string[], knownSnapshotIds: string[]): Promise<void> {
    const volumes = new Set(knownVolumeIds);
    const snapshots = new Set(knownSnapshotIds);
    this.volumeSizes.clear();
    this.snapshotSizes.clear();
    for (const volumeId of this.exports.recorded()) {
      if (!volumes.has(volumeId) || !this.exports.read(volumeId)) await this.exports.closeAll(volumeId);
    }
    for (const name of await fs.promises.readdir(this.dir)) {
      const file = path.join(this.dir, name);
      if (name.endsWith('.part') || name.endsWith('.json.tmp')) {
        await fs.promises.rm(file, { force: true });
        continue;
      }
      const m = /^(volume|snapshot)-([A-Za-z0-9-]+)\.(qcow2|raw)$/.exec(name);
      if (!m) continue;
      const [, kind, id, format] = m as unknown as [string, string, string, string];
      const known = kind === 'volume' ? volumes : snapshots;
      if (!known.has(id)) {
        await fs.promises.rm(file, { force: true });
        continue;
      }
      const info = await this.qemu.info(file, format).catch(() => null);
      const gib = info ? Math.ceil(info['virtual-size'] / GiB) : 0;
      (kind === 'volume' ? this.volumeSizes : this.snapshotSizes).set(id, gib);
    }
  }

  /** Ends running qemu-img processes (a crash of the agent: their `.part` files stay for `cleanup`). NBD exports keep running. */
  async stop(): Promise<void> {
    this.qemu.killAll();
  }
}

/** What qemu-img reads for a migration's source connection. */
function exportSource(source: ConnectionInfo): { path: string; format: string; share: boolean } {
  const data = source.data;
  switch (source.driver_volume_type) {
    case 'local': {
      const file = data.device_path;
      const format = data.format;
      if (typeof file !== 'string' || !path.isAbsolute(file) || (format !== 'raw' && format !== 'qcow2')) throw new Error('The source of the migration has an invalid local connection.');
      return { path: file, format, share: true };
    }
    case 'nbd': {
      const { host, port, export_name: name } = data;
      if (typeof host !== 'string' || !/^[A-Za-z0-9.:_-]+$/.test(host) || typeof port !== 'number' || !Number.isInteger(port) || typeof name !== 'string') {
        throw new Error('The source of the migration has an invalid NBD connection.');
      }
      checkId(name);
      const authority = host.includes(':') ? `[${host}]` : host;
      return { path: `nbd://${authority}:${port}/${name}`, format: 'raw', share: false };
    }
    default:
      throw new Error(`A file backend cannot read a volume through a ${source.driver_volume_type} connection.`);
  }
}

function checkId(id: string): string {
  if (!SAFE_ID.test(id)) throw new Error(`invalid resource id ${JSON.stringify(id)}`);
  return id;
}

/**
 * Refuses image data that qemu-img must not open for a volume: a format
 * other than the image claims (a "raw" image holding a qcow2 header could
 * point at any file of the host), or one with a backing or data file.
 */
function checkImage(image: DriverImage, detected: string, info: { 'backing-filename'?: string; 'format-specific'?: { data?: Record<string, unknown> } }): void {
  if (!READABLE_FORMATS.has(detected)) throw new DriverUserError(`Image ${image.id} has data of format ${detected}, which volumes cannot be made from.`);
  const claimed = image.disk_format ? qemuFormatOf(image.disk_format) : null;
  if (image.disk_format && claimed !== detected) throw new DriverUserError(`Image ${image.id} has disk_format ${image.disk_format} but its data is ${detected}.`);
  if (info['backing-filename'] || info['format-specific']?.data?.['data-file']) throw new DriverUserError(`Image ${image.id} refers to another file (a backing or data file): it cannot be used.`);
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
