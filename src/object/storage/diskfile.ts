import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CorruptFileError, encodeTrailer, loadHashDir, mergeMetadata, objectDir, readMetadataFile, readTail, removeObsolete, type FileTail, type HashDirState, type ObjectMetadata } from './diskfile-format.js';
import { BodyMd5 } from './md5-hasher.js';
import { invalidateSuffix } from './suffix-hashes.js';

export * from './diskfile-format.js';
export * from './suffix-hashes.js';

/**
 * Writing and reading objects on a device (the layout and file format are in
 * `diskfile-format.ts`, replication's listings and hashes in
 * `suffix-hashes.ts`; this module re-exports both).
 */

/** Bytes gathered before a write while a body streams in. */
const WRITE_BATCH = 256 * 1024;
/** O_DSYNC where the platform has it (0 elsewhere: then an fdatasync follows the writes). */
const DSYNC = fs.constants.O_DSYNC ?? 0;

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
  // The directory is durable once synced: its close need not delay the reply.
  void handle.close().catch(() => undefined);
}

const knownDirs = new Set<string>();

/**
 * Creates a new temporary file in `<device>/tmp` (the directory is made once
 * per process, and again if it went away).
 */
async function openTemp(devicePath: string, flags: string | number): Promise<{ path: string; handle: FileHandle }> {
  const dir = path.join(devicePath, 'tmp');
  if (!knownDirs.has(dir)) {
    await fs.promises.mkdir(dir, { recursive: true });
    knownDirs.add(dir);
  }
  const file = path.join(dir, randomBytes(12).toString('hex'));
  try {
    return { path: file, handle: await fs.promises.open(file, flags, 0o644) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // The tmp directory was removed under us; the device itself must still be there.
    await fs.promises.mkdir(dir);
    return { path: file, handle: await fs.promises.open(file, flags, 0o644) };
  }
}

/**
 * Creates a directory and its missing parents. Their entries are made
 * durable by the fsync of the new directory after the rename (`install`):
 * ext4 and XFS commit metadata through one journal, so that fsync commits
 * the creation of the parents with it (Swift fsyncs each parent; two fsyncs
 * less per new object here).
 */
async function makeDir(dir: string): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true });
}

/** Moves a finished temporary file into a hash directory and makes the move durable. */
async function install(tempPath: string, dir: string, name: string, dirExists: boolean): Promise<void> {
  await moveInto(tempPath, dir, name, dirExists);
  await fsyncDir(dir);
}

/** Renames a finished temporary file into a hash directory (made when missing); the caller fsyncs the directory. */
async function moveInto(tempPath: string, dir: string, name: string, dirExists: boolean): Promise<void> {
  if (!dirExists) await makeDir(dir);
  try {
    await fs.promises.rename(tempPath, path.join(dir, name));
  } catch (err) {
    // The directory went away between the listing and the rename (a concurrent cleanup or quarantine).
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !dirExists) throw err;
    await makeDir(dir);
    await fs.promises.rename(tempPath, path.join(dir, name));
  }
}

/**
 * Streams an object body into a temporary file of the device, computing its
 * MD5; `commit` appends the metadata and makes it the object's data file;
 * `abort` removes the temporary file. Writes are batched (a small body is
 * written in one call together with its metadata).
 */
export class DiskFileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inflight: Promise<void> | null = null;
  /** Opened with O_DSYNC: every write is already on disk. */
  private dsync = false;
  private failure: Error | null = null;
  private done = false;
  /** Bytes received so far. */
  size = 0;

  private readonly md5: BodyMd5;

  private constructor(
    private readonly handle: FileHandle,
    readonly tempPath: string,
    expectedLength: number | null,
  ) {
    this.md5 = new BodyMd5(expectedLength);
  }

  /** Opens a temporary file on the device; `expectedLength` (when known) lets a small body be hashed inline from the start. */
  static async open(devicePath: string, expectedLength: number | null = null): Promise<DiskFileWriter> {
    // A small body is written in one call with its trailer: opened O_DSYNC, that call is also its fdatasync (one syscall less per object).
    const dsync = expectedLength !== null && expectedLength < WRITE_BATCH && DSYNC !== 0;
    const flags = dsync ? fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | DSYNC : 'wx';
    const { path: tempPath, handle } = await openTemp(devicePath, flags);
    const writer = new DiskFileWriter(handle, tempPath, expectedLength);
    writer.dsync = dsync;
    return writer;
  }

  /**
   * Adds body bytes. Batches are written while the next one gathers (one
   * write in flight at most), so the disk and the network overlap; resolves
   * when the caller may send more.
   */
  async write(chunk: Buffer): Promise<void> {
    const hashing = this.md5.update(chunk);
    if (hashing) await hashing;
    this.size += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < WRITE_BATCH) return;
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    const buffers = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.inflight = this.writeAll(buffers).then(
      () => {
        this.inflight = null;
      },
      (err: Error) => {
        this.failure = err;
        this.inflight = null;
      },
    );
  }

  private async flush(extra?: Buffer): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    const buffers = extra ? [...this.pending, extra] : this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await this.writeAll(buffers);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    if (buffers.length === 0) return;
    let total = 0;
    for (const b of buffers) total += b.length;
    let written = 0;
    let list = buffers;
    while (written < total) {
      const { bytesWritten } = await this.handle.writev(list);
      written += bytesWritten;
      if (written < total) list = skipBytes(list, bytesWritten);
    }
  }

  /** The MD5 (hex) of the body; call once, after the last `write`. */
  etag(): Promise<string> {
    return this.md5.digest();
  }

  /**
   * Appends the metadata, fdatasyncs, and renames the file to `<dir>/<name>`,
   * then fsyncs the directory. On failure the temporary file is removed.
   */
  async commit(dir: string, name: string, metadata: ObjectMetadata, dirExists: boolean): Promise<void> {
    const { durable } = await this.publish(dir, name, metadata, dirExists);
    await durable;
  }

  /**
   * Like `commit`, but resolves once the file is in place (complete and
   * fdatasynced, visible to readers) with `durable`: the fsync of the
   * directory that makes the rename survive a crash. The caller may do other
   * work (container updates) meanwhile and must await `durable` before it
   * answers.
   */
  async publish(dir: string, name: string, metadata: ObjectMetadata, dirExists: boolean): Promise<{ durable: Promise<void> }> {
    try {
      await this.flush(encodeTrailer(metadata));
      if (!this.dsync || this.size >= WRITE_BATCH) await this.handle.datasync();
      this.done = true;
      const closing = this.handle.close();
      try {
        await moveInto(this.tempPath, dir, name, dirExists);
      } finally {
        await closing;
      }
    } catch (err) {
      await this.abort();
      throw err;
    }
    const durable = fsyncDir(dir);
    durable.catch(() => undefined);
    return { durable };
  }

  /** Drops the upload. Safe to call more than once. */
  async abort(): Promise<void> {
    this.pending = [];
    this.md5.abort();
    if (this.inflight) await this.inflight;
    if (!this.done) {
      this.done = true;
      await this.handle.close().catch(() => undefined);
    }
    await fs.promises.unlink(this.tempPath).catch(() => undefined);
  }
}

function skipBytes(list: Buffer[], count: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = count;
  for (const b of list) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/** Writes a file that is only metadata (`<ts>.meta` or `<ts>.ts`) into a hash directory, durably. */
export async function writeMetadataOnlyFile(devicePath: string, dir: string, name: string, metadata: ObjectMetadata, dirExists: boolean): Promise<void> {
  const { path: temp, handle } = await openTemp(devicePath, DSYNC ? fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | DSYNC : 'wx');
  try {
    await handle.write(encodeTrailer(metadata));
    if (!DSYNC) await handle.datasync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.promises.unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await install(temp, dir, name, dirExists);
  } catch (err) {
    await fs.promises.unlink(temp).catch(() => undefined);
    throw err;
  }
}

/**
 * Writes a whole object (body from a stream or a Buffer) with the given
 * metadata as `<timestamp>.data`, and removes what it makes obsolete. For
 * replication: the metadata is taken as it is.
 */
export async function writeObject(devicePath: string, partition: number, hash: string, metadata: ObjectMetadata, body: Readable | Buffer): Promise<void> {
  const timestamp = metadata['x-timestamp'];
  if (!timestamp) throw new Error('metadata without x-timestamp');
  const dir = objectDir(devicePath, partition, hash);
  const state = await loadHashDir(dir);
  const writer = await DiskFileWriter.open(devicePath);
  try {
    if (Buffer.isBuffer(body)) await writer.write(body);
    else for await (const chunk of body as AsyncIterable<Buffer>) await writer.write(chunk);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.commit(dir, `${timestamp}.data`, metadata, state.exists);
  await removeObsolete(await loadHashDir(dir));
  invalidateSuffix(devicePath, partition, hash.slice(-3));
}

/** An opened data file: its merged metadata and how to read its body. */
export interface OpenedObject {
  state: HashDirState;
  handle: FileHandle;
  /** Metadata of the data file alone. */
  dataMetadata: ObjectMetadata;
  /** Metadata of the `.meta` file, if any. */
  metaMetadata: ObjectMetadata | null;
  /** What a GET/HEAD shows: the data file's, with the `.meta`'s user metadata (and content type) instead. */
  metadata: ObjectMetadata;
  tail: FileTail;
  /** The body's length. */
  length: number;
}

/**
 * Opens the current data file of a hash directory, or returns null with the
 * state when there is none (missing or deleted). Throws `CorruptFileError`
 * for an unreadable file (the caller quarantines). The caller closes `handle`.
 */
export async function openObject(dir: string): Promise<{ opened: OpenedObject | null; state: HashDirState }> {
  const state = await loadHashDir(dir);
  if (!state.data) return { opened: null, state };
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(path.join(dir, state.data), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return openObject(dir);
    throw err;
  }
  try {
    const tail = await readTail(handle);
    const declared = tail.metadata['content-length'];
    if (declared !== undefined && Number(declared) !== tail.dataLength) throw new CorruptFileError('body length differs from Content-Length');
    const metaMetadata = state.meta ? await readMetadataFile(path.join(dir, state.meta)).catch(() => null) : null;
    return {
      opened: { state, handle, dataMetadata: tail.metadata, metaMetadata, metadata: mergeMetadata(tail.metadata, metaMetadata), tail, length: tail.dataLength },
      state,
    };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Streams bytes [start, end) of an opened object's body (closes the handle at the end unless `keepOpen`). */
export function bodyStream(opened: OpenedObject, start = 0, end = opened.length, keepOpen = false): Readable {
  return opened.handle.createReadStream({ start, end: end - 1, autoClose: !keepOpen, highWaterMark: 256 * 1024 });
}

/** The body bytes in [start, end) when they were already read with the tail (small objects); else null. */
export function bodyFromTail(opened: OpenedObject, start = 0, end = opened.length): Buffer | null {
  const { tail, tailOffset } = opened.tail;
  if (start < tailOffset) return null;
  return tail.subarray(start - tailOffset, end - tailOffset);
}

/** What a replicator sends for one object: the current files with their metadata. */
export interface ReplicaFiles {
  state: HashDirState;
  /** The data file's metadata and a way to stream its body. */
  data: { name: string; metadata: ObjectMetadata; length: number; open(): Promise<Readable> } | null;
  meta: { name: string; metadata: ObjectMetadata } | null;
  tombstone: { name: string; metadata: ObjectMetadata } | null;
}

/** Reads the current files of an object for replication (throws `CorruptFileError` for a broken file). */
export async function readReplicaFiles(devicePath: string, partition: number, hash: string): Promise<ReplicaFiles> {
  const dir = objectDir(devicePath, partition, hash);
  const state = await loadHashDir(dir);
  const out: ReplicaFiles = { state, data: null, meta: null, tombstone: null };
  if (state.data) {
    const file = path.join(dir, state.data);
    const handle = await fs.promises.open(file, 'r');
    let tail: FileTail;
    try {
      tail = await readTail(handle);
    } finally {
      await handle.close();
    }
    const length = tail.dataLength;
    out.data = {
      name: state.data,
      metadata: tail.metadata,
      length,
      async open() {
        if (length === 0) return Readable.from([]);
        const h = await fs.promises.open(file, 'r');
        return h.createReadStream({ start: 0, end: length - 1, autoClose: true, highWaterMark: 256 * 1024 });
      },
    };
  }
  if (state.meta) out.meta = { name: state.meta, metadata: await readMetadataFile(path.join(dir, state.meta)) };
  if (state.tombstone) out.tombstone = { name: state.tombstone, metadata: await readMetadataFile(path.join(dir, state.tombstone)) };
  return out;
}
