import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { OverLimit } from '../core/errors.js';
import type { ImageStore, StoredData } from './stores/index.js';

/** What was stored, and its digests, computed while the bytes streamed. */
export interface Ingested extends StoredData {
  /** MD5, hex (Glance's `checksum`). */
  md5: string;
  /** SHA-512, hex (`os_hash_value` with `os_hash_algo` sha512). */
  sha512: string;
}

/**
 * Counts and hashes the bytes that pass, and fails the stream with 413 as
 * soon as more than `maxBytes` have passed (the image size cap, or what the
 * project's quota leaves).
 */
export class Meter extends Transform {
  bytes = 0;
  private readonly md5: Hash = createHash('md5');
  private readonly sha512: Hash = createHash('sha512');

  constructor(
    private readonly maxBytes: number,
    private readonly overMessage: string,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(new OverLimit(this.overMessage));
      return;
    }
    this.md5.update(chunk);
    this.sha512.update(chunk);
    done(null, chunk);
  }

  digests(): { md5: string; sha512: string } {
    return { md5: this.md5.digest('hex'), sha512: this.sha512.digest('hex') };
  }
}

/**
 * Streams data into a store, hashing it on the way, never holding more than
 * a few buffers in memory. Nothing is left in the store when this rejects.
 */
export async function ingest(store: ImageStore, imageId: string, source: Readable, maxBytes: number, overMessage: string): Promise<Ingested> {
  const meter = new Meter(maxBytes, overMessage);
  source.on('error', (err) => meter.destroy(err));
  const stored = await store.add(imageId, source.pipe(meter));
  return { ...stored, ...meter.digests() };
}
