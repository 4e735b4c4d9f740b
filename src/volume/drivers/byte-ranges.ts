import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { Extent } from './driver.js';

/**
 * Byte ranges of volume content, as the backup readers and restore writers
 * of the drivers stream them: from a file or a buffer, padded with zeros
 * past the data, in pieces of at most 1 MiB (never a whole range in memory).
 */

const PIECE = 1024 * 1024;
const ZEROS = Buffer.alloc(PIECE);

/** `length` zero bytes. */
export function zeroStream(length: number): Readable {
  return Readable.from(zeroPieces(length), { objectMode: false });
}

function* zeroPieces(length: number): Generator<Buffer> {
  for (let left = length; left > 0; left -= PIECE) yield ZEROS.subarray(0, Math.min(PIECE, left));
}

/** Bytes `[offset, offset + length)` of `data`, zeros past its end. */
export function bufferRange(data: Buffer | null, offset: number, length: number): Readable {
  return Readable.from(bufferPieces(data, offset, length), { objectMode: false });
}

function* bufferPieces(data: Buffer | null, offset: number, length: number): Generator<Buffer> {
  const end = offset + length;
  let at = offset;
  while (at < end) {
    const n = Math.min(PIECE, end - at);
    if (data && at < data.length) {
      const piece = data.subarray(at, Math.min(at + n, data.length));
      yield piece;
      at += piece.length;
    } else {
      yield ZEROS.subarray(0, n);
      at += n;
    }
  }
}

/** Bytes `[offset, offset + length)` of the file, zeros past its end. */
export function fileRange(file: string, offset: number, length: number): Readable {
  return Readable.from(filePieces(file, offset, length), { objectMode: false });
}

async function* filePieces(file: string, offset: number, length: number): AsyncGenerator<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const end = offset + length;
    let at = offset;
    while (at < end) {
      const buffer = Buffer.allocUnsafe(Math.min(PIECE, end - at));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
      if (bytesRead === 0) break;
      yield buffer.subarray(0, bytesRead);
      at += bytesRead;
    }
    if (at < end) yield* zeroPieces(end - at);
  } finally {
    await handle.close();
  }
}

/** Writes the stream's bytes into the open file from `offset`; returns how many. */
export async function writeAt(handle: fs.promises.FileHandle, offset: number, data: Readable): Promise<number> {
  let at = offset;
  for await (const chunk of data) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, at + done);
      done += bytesWritten;
    }
    at += bytes.length;
  }
  return at - offset;
}

/** Writes `length` zeros into the open file from `offset`. */
export async function zeroAt(handle: fs.promises.FileHandle, offset: number, length: number): Promise<void> {
  await writeAt(handle, offset, zeroStream(length));
}

/** The extents sorted, with overlapping and touching ones merged. */
export function mergeExtents(extents: Extent[]): Extent[] {
  const sorted = extents.filter((e) => e.length > 0).sort((a, b) => a.offset - b.offset);
  const out: Extent[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && e.offset <= last.offset + last.length) last.length = Math.max(last.length, e.offset + e.length - last.offset);
    else out.push({ ...e });
  }
  return out;
}

/** True when `[offset, offset + length)` meets one of the (sorted) extents. */
export function overlaps(extents: readonly Extent[], offset: number, length: number): boolean {
  const end = offset + length;
  return extents.some((e) => e.offset < end && offset < e.offset + e.length);
}
