import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { OverLimit } from '../core/errors.js';
import { ParallelDigest } from './digests.js';
import type { ImageStore, StoredData } from './stores/index.js';

/** What was stored, and its digests, computed while the bytes streamed. */
export interface Ingested extends StoredData {
  /** MD5, hex (Glance's `checksum`). */
  md5: string;
  /** SHA-512, hex (`os_hash_value` with `os_hash_algo` sha512). */
  sha512: string;
}

/** Size of the batches in which data goes to the digest workers (1 MiB: memory stays small). */
const BATCH = 1024 * 1024;
/** Batches per stream: while all wait for the workers, the stream waits too. */
const POOL = 4;

/**
 * Counts the bytes that pass (on to the store, untouched) and copies them
 * into a small pool of shared 4 MiB batches that the digest workers hash
 * meanwhile; fails the stream with 413 as soon as more than `maxBytes` have
 * passed (the image size cap, or what the project's quota leaves). Memory
 * stays bounded by the pool, whatever the image size.
 */
export class Meter extends Transform {
  bytes = 0;
  private readonly digest = new ParallelDigest();
  private readonly free: SharedArrayBuffer[] = Array.from({ length: POOL }, () => new SharedArrayBuffer(BATCH));
  private readonly waiting: (() => void)[] = [];
  private batch: SharedArrayBuffer | null = null;
  private filled = 0;
  private readonly pending = new Set<Promise<void>>();
  private result: Promise<{ md5: string; sha512: string }> | null = null;

  constructor(
    private readonly maxBytes: number,
    private readonly overMessage: string,
  ) {
    super({ highWaterMark: 256 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(new OverLimit(this.overMessage));
      return;
    }
    this.copy(chunk).then(() => done(null, chunk), done);
  }

  override _flush(done: TransformCallback): void {
    if (this.batch && this.filled > 0) this.hash(this.batch, this.filled);
    this.batch = null;
    this.result = Promise.all(this.pending).then(() => this.digest.digest());
    this.result.then(() => done(), done);
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    if (!this.result) this.digest.abort();
    done(err);
  }

  /** Copies a chunk into batches, sending each full one to the workers; waits when no batch is free. */
  private async copy(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.batch) this.batch = await this.nextBatch();
      const take = Math.min(chunk.length - offset, BATCH - this.filled);
      new Uint8Array(this.batch, this.filled, take).set(chunk.subarray(offset, offset + take));
      this.filled += take;
      offset += take;
      if (this.filled === BATCH) {
        this.hash(this.batch, BATCH);
        this.batch = null;
        this.filled = 0;
      }
    }
  }

  private nextBatch(): Promise<SharedArrayBuffer> {
    const batch = this.free.pop();
    if (batch) return Promise.resolve(batch);
    return new Promise((resolve) => this.waiting.push(() => resolve(this.free.pop() as SharedArrayBuffer)));
  }

  private hash(batch: SharedArrayBuffer, length: number): void {
    const hashing = this.digest.update(batch, length).then(() => {
      this.pending.delete(hashing);
      this.free.push(batch);
      this.waiting.shift()?.();
    });
    this.pending.add(hashing);
  }

  /** The digests, once the stream has ended. */
  async digests(): Promise<{ md5: string; sha512: string }> {
    if (!this.result) throw new Error('the data has not all passed yet');
    return this.result;
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
  return { ...stored, ...(await meter.digests()) };
}
