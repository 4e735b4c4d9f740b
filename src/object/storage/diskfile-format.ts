import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Objects on disk, as Swift lays them out:
 * `<device>/objects/<partition>/<suffix>/<hash>/<timestamp>.data` (or `.ts`
 * for a tombstone, `.meta` for metadata POSTed later), suffix = the last
 * three hex digits of the hash.
 *
 * Each file carries its own metadata as a trailer: the body bytes, then the
 * metadata as JSON, then 8 bytes (`SWM1` and the JSON's length, uint32 BE).
 * Why a trailer in the same file rather than a sidecar file or a header:
 * - one file means one rename makes body and metadata visible together; a
 *   sidecar needs two renames and a crash between them leaves a data file
 *   without metadata (or the reverse), and costs a second fsync;
 * - the ETag and the length are known only once the body has been streamed,
 *   so a header would need a reserved area rewritten in place;
 * - a small object is read with one read of the file's tail (metadata and
 *   body together).
 * A PUT is: stream to `<device>/tmp/<random>`, append the trailer,
 * fdatasync, rename into the hash directory, fsync the hash directory: two
 * fsyncs. A crash before the rename leaves only a temporary file; after it
 * the object is complete. A file whose end is not a valid trailer (a torn
 * write on a filesystem that reorders) is quarantined when read, never served.
 *
 * Metadata keys are lower-case header names (`content-type`, `etag`,
 * `x-timestamp`, `x-object-meta-color`, ...) plus `name` (`/a/c/o`); values
 * are kept as received (one character per header byte).
 */

/** An object's metadata (lower-case header names, plus `name`). */
export type ObjectMetadata = Record<string, string>;

const MAGIC = 'SWM1';
const FOOTER = 8;
/** Bytes read from a file's tail at once: the metadata, and all of a small body. */
const TAIL_READ = 64 * 1024;

/** The directory of an object's files. */
export function objectDir(devicePath: string, partition: number, hash: string): string {
  return path.join(devicePath, 'objects', String(partition), hash.slice(-3), hash);
}

/** The trailer of a file: the metadata JSON and the footer. */
export function encodeTrailer(metadata: ObjectMetadata): Buffer {
  const json = Buffer.from(JSON.stringify(metadata), 'utf8');
  const footer = Buffer.alloc(FOOTER);
  footer.write(MAGIC, 0, 'latin1');
  footer.writeUInt32BE(json.length, 4);
  return Buffer.concat([json, footer]);
}

/** A file whose trailer cannot be read (truncated, not ours, bad JSON): quarantine it. */
export class CorruptFileError extends Error {}

/** What the tail of a file says. */
export interface FileTail {
  metadata: ObjectMetadata;
  /** Length of the body before the trailer. */
  dataLength: number;
  /** The bytes read from the end of the file, from `headOffset` on (hold all of a small body). */
  tail: Buffer;
  tailOffset: number;
  size: number;
}

/** Reads a file's metadata (and, for a small file, its body) with one read of its tail. */
export async function readTail(handle: FileHandle, size?: number): Promise<FileTail> {
  const fileSize = size ?? (await handle.stat()).size;
  if (fileSize < FOOTER) throw new CorruptFileError('file shorter than its footer');
  const length = Math.min(fileSize, TAIL_READ);
  const offset = fileSize - length;
  const tail = Buffer.allocUnsafe(length);
  const { bytesRead } = await handle.read(tail, 0, length, offset);
  if (bytesRead !== length) throw new CorruptFileError('short read');
  if (tail.toString('latin1', length - FOOTER, length - 4) !== MAGIC) throw new CorruptFileError('no metadata footer');
  const jsonLength = tail.readUInt32BE(length - 4);
  if (jsonLength + FOOTER > fileSize) throw new CorruptFileError('metadata length beyond the file');
  let json: Buffer;
  if (jsonLength + FOOTER <= length) json = tail.subarray(length - FOOTER - jsonLength, length - FOOTER);
  else {
    json = Buffer.allocUnsafe(jsonLength);
    const { bytesRead: got } = await handle.read(json, 0, jsonLength, fileSize - FOOTER - jsonLength);
    if (got !== jsonLength) throw new CorruptFileError('short read');
  }
  let metadata: ObjectMetadata;
  try {
    metadata = JSON.parse(json.toString('utf8')) as ObjectMetadata;
  } catch {
    throw new CorruptFileError('metadata is not JSON');
  }
  if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) throw new CorruptFileError('metadata is not an object');
  return { metadata, dataLength: fileSize - FOOTER - jsonLength, tail, tailOffset: offset, size: fileSize };
}

/** Reads the metadata of a file (`.data`, `.meta` or `.ts`). */
export async function readMetadataFile(file: string): Promise<ObjectMetadata> {
  const handle = await fs.promises.open(file, 'r');
  try {
    return (await readTail(handle)).metadata;
  } finally {
    await handle.close();
  }
}

/** The timestamp part of a file name (`1700000000.12345.data` → `1700000000.12345`). */
export function fileTimestamp(name: string): string {
  return name.slice(0, name.lastIndexOf('.'));
}

/** What a hash directory holds, resolved as Swift does: the newest `.data` or `.ts` wins, a newer `.meta` applies to the data. */
export interface HashDirState {
  dir: string;
  /** Every file name found (empty when the directory does not exist). */
  files: string[];
  exists: boolean;
  /** The current data file name, when the newest data/tombstone is data. */
  data: string | null;
  /** The current tombstone name, when the newest data/tombstone is a tombstone. */
  tombstone: string | null;
  /** The newest `.meta` newer than the data. */
  meta: string | null;
  /** Timestamp (internal form) of the current data or tombstone; null when there is neither. */
  timestamp: string | null;
  /** Files made obsolete by newer ones. */
  obsolete: string[];
}

/** Resolves a listing of a hash directory. */
export function resolveFiles(dir: string, files: string[], exists = true): HashDirState {
  let newest: string | null = null;
  let newestTs = '';
  let meta: string | null = null;
  let metaTs = '';
  for (const name of files) {
    const ts = fileTimestamp(name);
    if (name.endsWith('.data') || name.endsWith('.ts')) {
      if (newest === null || ts > newestTs || (ts === newestTs && name.endsWith('.ts'))) {
        newest = name;
        newestTs = ts;
      }
    } else if (name.endsWith('.meta')) {
      if (meta === null || ts > metaTs) {
        meta = name;
        metaTs = ts;
      }
    }
  }
  const data = newest !== null && newest.endsWith('.data') ? newest : null;
  const tombstone = newest !== null && newest.endsWith('.ts') ? newest : null;
  if (meta !== null && (data === null || metaTs <= newestTs)) meta = null;
  const keep = new Set([newest, meta]);
  const obsolete = files.filter((name) => !keep.has(name) && (name.endsWith('.data') || name.endsWith('.ts') || name.endsWith('.meta')));
  return { dir, files, exists, data, tombstone, meta, timestamp: newest === null ? null : newestTs, obsolete };
}

/** Lists and resolves a hash directory (a missing one is empty). */
export async function loadHashDir(dir: string): Promise<HashDirState> {
  try {
    return resolveFiles(dir, await fs.promises.readdir(dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return resolveFiles(dir, [], false);
    throw err;
  }
}

/** Removes obsolete files (best effort: a file left behind is older and never wins). */
export async function removeObsolete(state: HashDirState): Promise<void> {
  await Promise.all(state.obsolete.map((name) => fs.promises.unlink(path.join(state.dir, name)).catch(() => undefined)));
}

/** Headers an object POST stores with the user metadata, as Swift's `allowed_headers`. */
export const POST_HEADERS = new Set(['content-disposition', 'content-encoding', 'x-delete-at', 'x-object-manifest', 'x-static-large-object', 'cache-control', 'content-language', 'expires', 'x-robots-tag']);

/** Keys of a data file that stay when a `.meta` file applies (Swift's reserved and data-file system metadata). */
function keptFromData(key: string): boolean {
  return key === 'content-length' || key === 'etag' || key === 'deleted' || key === 'name' || key === 'x-static-large-object' || key.startsWith('x-object-sysmeta-');
}

/**
 * Merges a data file's metadata with a newer `.meta` file's, as Swift does:
 * the `.meta` (timestamp, user metadata, POSTed headers) plus the data
 * file's length, ETag and system metadata; the content type is the data
 * file's unless the `.meta` carries a newer one.
 */
export function mergeMetadata(data: ObjectMetadata, meta: ObjectMetadata | null): ObjectMetadata {
  if (!meta) return data;
  const out: ObjectMetadata = { ...meta };
  for (const [k, v] of Object.entries(data)) if (keptFromData(k)) out[k] = v;
  const ctypeTs = meta['content-type-timestamp'];
  if (!(meta['content-type'] !== undefined && ctypeTs !== undefined && ctypeTs > (data['x-timestamp'] ?? ''))) {
    if (data['content-type'] !== undefined) out['content-type'] = data['content-type'];
    delete out['content-type-timestamp'];
  }
  return out;
}

