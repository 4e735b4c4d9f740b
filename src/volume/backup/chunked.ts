import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';
import { overlaps } from '../drivers/byte-ranges.js';
import type { VolumeReader, VolumeWriter } from '../drivers/driver.js';
import { ObjectMissing, type ChunkStore, type ChunkStoreOpener } from './chunk-store.js';
import type { BackupAccess, BackupDriver, BackupOptions, BackupOutcome, BackupRecord } from './driver.js';

/**
 * The chunked backup driver (Cinder's `ChunkedBackupDriver`), over any
 * {@link ChunkStore}. A backup of volume V with id B is, in its container:
 *
 * - `V/backup_B/<n>`: chunk n of the volume (bytes `n * chunk_size` on,
 *   `chunk_size` of them or what is left), compressed (`gzip`, `zlib` or
 *   `none`); chunks that hold no data (never written, or zeros the volume
 *   driver knows of) are not stored;
 * - `V/backup_B/metadata`: JSON (see {@link BackupMetadata}): the chunk
 *   list with each chunk's offset, length, compression, MD5 and SHA-256,
 *   and the volume's metadata.
 *
 * An incremental backup reads its parent's metadata and stores only the
 * chunks whose SHA-256 differs; its list names the parent's objects for the
 * others, so a restore reads one list, whatever the chain. Every object is
 * streamed (at most a few pieces of a chunk in memory), its MD5 checked
 * against the store's ETag on upload and against the list on restore.
 */

/** The format of the metadata object. */
export const METADATA_VERSION = '1.0.0';

/** One stored chunk. */
export interface ChunkEntry {
  /** Chunk number: it covers bytes `[offset, offset + length)`, `offset = index * chunk_size`. */
  index: number;
  offset: number;
  length: number;
  /** Where the object is (an incremental backup names its parent's for unchanged chunks) and which backup wrote it. */
  container: string;
  name: string;
  backup_id: string;
  compression: Compression;
  /** Of the chunk's bytes (uncompressed). */
  md5: string;
  sha256: string;
  /** Bytes stored (compressed). */
  stored_length: number;
}

/** The metadata object of a backup. */
export interface BackupMetadata {
  version: string;
  backup_id: string;
  volume_id: string;
  snapshot_id: string | null;
  parent_id: string | null;
  backup_name: string | null;
  backup_description: string | null;
  created_at: string;
  /** Bytes of the volume. */
  size: number;
  chunk_size: number;
  /** The chunks that hold data, by index; the others are zeros. */
  objects: ChunkEntry[];
  volume_meta: Record<string, unknown> | null;
}

/** What `service_metadata` keeps: the object prefix, and whose account (null: the service's). */
export interface ChunkedServiceMetadata {
  prefix: string;
  project: string | null;
}

/** How each object is compressed: gzip or zlib (deflate) streams, or not at all. */
export type Compression = 'gzip' | 'zlib' | 'none';

/** The compressions `volume.backup_compression` accepts. */
export const COMPRESSIONS: readonly Compression[] = ['gzip', 'zlib', 'none'];

/** What a chunked driver is made of. */
export interface ChunkedDriverOptions {
  /** Cinder's name of the driver. */
  service: string;
  stores: ChunkStoreOpener;
  /** The container of backups made without one. */
  defaultContainer: string;
  chunkSize: number;
  compression: Compression;
  /** Keep backups in the account of the volume's project (true) or in the service's own. */
  perProject: boolean;
  /** Attempts per object upload (default 3). */
  attempts?: number;
}

/** The chunked driver over a store. */
export class ChunkedBackupDriver implements BackupDriver {
  readonly service: string;

  constructor(private readonly options: ChunkedDriverOptions) {
    if (!Number.isInteger(options.chunkSize) || options.chunkSize < 1) throw new Error(`invalid backup chunk size ${options.chunkSize}`);
    this.service = options.service;
  }

  locate(backup: BackupRecord): { container: string; service_metadata: string } {
    const where: ChunkedServiceMetadata = { prefix: `${backup.volume_id}/backup_${backup.id}`, project: this.options.perProject ? backup.project_id : null };
    return { container: backup.container || this.options.defaultContainer, service_metadata: JSON.stringify(where) };
  }

  async backup(backup: BackupRecord, reader: VolumeReader, options: BackupOptions): Promise<BackupOutcome> {
    const location = this.locate(backup);
    const container = location.container;
    const where = JSON.parse(location.service_metadata) as ChunkedServiceMetadata;
    const store = this.options.stores(where.project, options.access);
    await store.ensureContainer(container);
    const parent = options.parent ? await this.readMetadata(options.parent, options.access) : null;
    // An incremental backup compares chunk by chunk: it keeps its parent's chunk size.
    const chunkSize = parent?.metadata.chunk_size ?? this.options.chunkSize;
    const parentChunks = new Map((parent?.metadata.objects ?? []).map((o) => [o.index, o]));
    const objects: ChunkEntry[] = [];
    let written = 0;
    const count = Math.ceil(reader.size / chunkSize);
    for (let index = 0; index < count; index++) {
      if (options.signal?.aborted) throw new Error('The backup was cancelled.');
      const offset = index * chunkSize;
      const length = Math.min(chunkSize, reader.size - offset);
      if (!overlaps(reader.extents, offset, length)) continue;
      const before = parentChunks.get(index);
      if (before && before.length === length && (await sha256Of(reader.read(offset, length))) === before.sha256) {
        objects.push(before);
        continue;
      }
      const name = `${where.prefix}/${String(index).padStart(5, '0')}`;
      objects.push(await this.upload(store, { index, offset, length, container, name, backup_id: backup.id }, reader));
      written++;
    }
    const metadata: BackupMetadata = {
      version: METADATA_VERSION,
      backup_id: backup.id,
      volume_id: backup.volume_id,
      snapshot_id: backup.snapshot_id,
      parent_id: options.parent?.id ?? null,
      backup_name: backup.display_name,
      backup_description: backup.display_description,
      created_at: backup.created_at,
      size: reader.size,
      chunk_size: chunkSize,
      objects,
      volume_meta: options.volumeMeta,
    };
    const json = Buffer.from(JSON.stringify(metadata, null, 2));
    await retry(this.options.attempts ?? 3, () => store.put(container, `${where.prefix}/metadata`, streamOf(json)));
    return { container, service_metadata: location.service_metadata, object_count: written };
  }

  async restore(backup: BackupRecord, writer: VolumeWriter, options: { isNew: boolean; access: BackupAccess }): Promise<{ volumeMeta: Record<string, unknown> | null }> {
    const { metadata, project } = await this.readMetadata(backup, options.access);
    if (metadata.size > writer.size) throw new Error(`The volume (${writer.size} bytes) is smaller than the backup (${metadata.size} bytes).`);
    const store = this.options.stores(project, options.access);
    const chunks = new Map(metadata.objects.map((o) => [o.index, o]));
    const count = Math.ceil(metadata.size / metadata.chunk_size);
    for (let index = 0; index < count; index++) {
      const entry = chunks.get(index);
      if (entry) {
        await restoreChunk(store, entry, writer);
        continue;
      }
      const offset = index * metadata.chunk_size;
      if (!options.isNew) await writer.zero(offset, Math.min(metadata.chunk_size, metadata.size - offset));
    }
    return { volumeMeta: metadata.volume_meta };
  }

  async delete(backup: BackupRecord, options: { access: BackupAccess }): Promise<void> {
    const where = parseServiceMetadata(backup);
    if (!where || !backup.container) return;
    const store = this.options.stores(where.project, options.access);
    // The backup's own objects only: an incremental one's list also names its parent's.
    for (const name of await store.list(backup.container, `${where.prefix}/`)) await store.delete(backup.container, name);
  }

  async verify(backup: BackupRecord, options: { access: BackupAccess }): Promise<void> {
    await this.readMetadata(backup, options.access);
  }

  /** The backup's metadata object and whose account holds it. */
  private async readMetadata(backup: BackupRecord, access: BackupAccess): Promise<{ metadata: BackupMetadata; project: string | null }> {
    const where = parseServiceMetadata(backup);
    if (!where || !backup.container) throw new Error(`Backup ${backup.id} has no data in the backup store.`);
    const store = this.options.stores(where.project, access);
    let text: string;
    try {
      text = await readAll(await store.get(backup.container, `${where.prefix}/metadata`));
    } catch (err) {
      if (err instanceof ObjectMissing) throw new Error(`The metadata of backup ${backup.id} is missing from container ${backup.container}.`);
      throw err;
    }
    const metadata = JSON.parse(text) as BackupMetadata;
    if (metadata.version !== METADATA_VERSION || !Array.isArray(metadata.objects) || !Number.isInteger(metadata.chunk_size) || metadata.chunk_size < 1) {
      throw new Error(`The metadata of backup ${backup.id} has an unsupported format (version ${String(metadata.version)}).`);
    }
    return { metadata, project: where.project };
  }

  /** Streams one chunk into the store (compressed, hashed on the way), with retries that read the chunk again. */
  private async upload(store: ChunkStore, at: Pick<ChunkEntry, 'index' | 'offset' | 'length' | 'container' | 'name' | 'backup_id'>, reader: VolumeReader): Promise<ChunkEntry> {
    const compression = this.options.compression;
    return retry(this.options.attempts ?? 3, async () => {
      const md5 = createHash('md5');
      const sha = createHash('sha256');
      const storedMd5 = createHash('md5');
      let length = 0;
      let stored = 0;
      const body = new PassThrough();
      const feeding = pipeline(
        reader.read(at.offset, at.length),
        tap((chunk) => {
          md5.update(chunk);
          sha.update(chunk);
          length += chunk.length;
        }),
        compressor(compression),
        tap((chunk) => {
          storedMd5.update(chunk);
          stored += chunk.length;
        }),
        body,
      );
      const [, { etag }] = await Promise.all([feeding, store.put(at.container, at.name, body)]).catch((err: unknown) => {
        body.destroy();
        throw err;
      });
      if (length !== at.length) throw new Error(`Chunk ${at.index} of the volume read ${length} bytes instead of ${at.length}.`);
      const storedHash = storedMd5.digest('hex');
      if (etag && etag.replace(/"/g, '') !== storedHash) throw new Error(`The object store's MD5 of ${at.name} (${etag}) is not that of the data sent (${storedHash}).`);
      return { ...at, compression, md5: md5.digest('hex'), sha256: sha.digest('hex'), stored_length: stored };
    });
  }
}

/** The backup's `service_metadata` as the chunked driver writes it, or null (not made yet, or not this driver's). */
export function parseServiceMetadata(backup: Pick<BackupRecord, 'service_metadata'>): ChunkedServiceMetadata | null {
  if (!backup.service_metadata) return null;
  try {
    const value = JSON.parse(backup.service_metadata) as Partial<ChunkedServiceMetadata>;
    if (typeof value.prefix !== 'string' || !(typeof value.project === 'string' || value.project === null)) return null;
    return { prefix: value.prefix, project: value.project };
  } catch {
    return null;
  }
}

/** Reads one chunk from the store, checks it against the list, and writes it at its offset. */
async function restoreChunk(store: ChunkStore, entry: ChunkEntry, writer: VolumeWriter): Promise<void> {
  const md5 = createHash('md5');
  let length = 0;
  const out = new PassThrough();
  const check = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      md5.update(chunk);
      length += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      if (length !== entry.length) done(new Error(`Object ${entry.name} holds ${length} bytes of data instead of ${entry.length}.`));
      else if (md5.digest('hex') !== entry.md5) done(new Error(`Object ${entry.name} does not match its MD5: the backup is damaged.`));
      else done();
    },
  });
  let source: Readable;
  try {
    source = await store.get(entry.container, entry.name);
  } catch (err) {
    if (err instanceof ObjectMissing) throw new Error(`Object ${entry.name} of the backup is missing from container ${entry.container}.`);
    throw err;
  }
  const feeding = pipeline(source, decompressor(entry.compression), check, out);
  try {
    await Promise.all([feeding, writer.write(entry.offset, out)]);
  } catch (err) {
    out.destroy();
    source.destroy();
    throw err;
  }
}

function compressor(compression: Compression): Transform {
  switch (compression) {
    case 'gzip':
      return zlib.createGzip({ level: 6 });
    case 'zlib':
      return zlib.createDeflate({ level: 6 });
    case 'none':
      return new PassThrough();
  }
}

function decompressor(compression: string): Transform {
  switch (compression) {
    case 'gzip':
      return zlib.createGunzip();
    case 'zlib':
      return zlib.createInflate();
    case 'none':
      return new PassThrough();
    default:
      throw new Error(`Unknown compression ${compression} in the backup's metadata.`);
  }
}

/** A pass-through that shows each chunk to `see`. */
function tap(see: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      see(chunk);
      done(null, chunk);
    },
  });
}

async function sha256Of(data: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of data) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function readAll(data: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of data) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts).toString('utf8');
}

function streamOf(bytes: Buffer): Readable {
  const s = new PassThrough();
  s.end(bytes);
  return s;
}

/** Runs `work` up to `attempts` times, waiting a little longer after each failure. */
async function retry<T>(attempts: number, work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= attempts) throw err;
      await sleep(100 * 4 ** (attempt - 1));
    }
  }
}
