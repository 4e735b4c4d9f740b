import { createHash, type Hash } from 'node:crypto';
import os from 'node:os';
import { HashWorker, newHashJob } from '../../core/hash-worker.js';

/**
 * MD5 of object bodies. Small bodies are hashed on the event loop; past
 * `INLINE_LIMIT` bytes the hashing moves to a worker thread, because MD5
 * costs ~1.6 CPU-seconds per GiB and in `up` one process runs three object
 * servers (one per replica) and the proxy: on the event loop the hashing
 * alone would cap large uploads at a third of what one core can hash. Data
 * goes to the worker in SharedArrayBuffer batches (one copy, no clone); at
 * most `MAX_IN_FLIGHT` batches per body wait for the worker, which is the
 * back-pressure on the upload.
 */

/** Bodies up to this size are hashed inline (a worker round trip would cost more than it saves). */
export const INLINE_LIMIT = 1024 * 1024;
const BATCH = 1024 * 1024;
const MAX_IN_FLIGHT = 4;

const workers: HashWorker[] = [];

function pickWorker(job: number): HashWorker {
  // One worker per core (at most 4): the three replicas of a large PUT hash at once.
  const count = Math.max(1, Math.min(4, os.availableParallelism()));
  const index = job % count;
  let worker = workers[index];
  if (!worker) {
    worker = new HashWorker(['md5']);
    workers[index] = worker;
  }
  return worker;
}

/**
 * The MD5 of one body, streamed. `update` returns a promise only when the
 * caller must wait (the worker is behind); `digest` ends the stream.
 */
export class BodyMd5 {
  private inline: Hash | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private job = 0;
  private worker: HashWorker | null = null;
  private batch: SharedArrayBuffer | null = null;
  private batchLength = 0;
  private readonly free: SharedArrayBuffer[] = [];
  private readonly inFlight = new Set<Promise<void>>();

  /** `expectedLength`: the body's length when known (a small one is hashed inline at once). */
  constructor(expectedLength: number | null = null) {
    if (expectedLength !== null && expectedLength <= INLINE_LIMIT) this.inline = createHash('md5');
  }

  update(chunk: Buffer): Promise<void> | void {
    if (this.inline) {
      this.inline.update(chunk);
      return;
    }
    if (!this.worker) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes <= INLINE_LIMIT) return;
      this.job = newHashJob();
      this.worker = pickWorker(this.job);
      const held = this.held;
      this.held = [];
      this.heldBytes = 0;
      return this.feedAll(held);
    }
    return this.feed(chunk);
  }

  private async feedAll(chunks: Buffer[]): Promise<void> {
    for (const c of chunks) await this.feed(c);
  }

  private async feed(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.batch) {
        if (this.free.length === 0 && this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
        this.batch = this.free.pop() ?? new SharedArrayBuffer(BATCH);
        this.batchLength = 0;
      }
      const n = Math.min(chunk.length - offset, BATCH - this.batchLength);
      new Uint8Array(this.batch, this.batchLength, n).set(chunk.subarray(offset, offset + n));
      this.batchLength += n;
      offset += n;
      if (this.batchLength === BATCH) this.send();
    }
  }

  private send(): void {
    const { batch, worker } = this;
    if (!batch || !worker || this.batchLength === 0) return;
    const sent: Promise<void> = worker.update(this.job, batch, this.batchLength).then(() => {
      this.inFlight.delete(sent);
      this.free.push(batch);
    });
    this.inFlight.add(sent);
    this.batch = null;
    this.batchLength = 0;
  }

  /** The hex MD5 of everything given. Call once. */
  async digest(): Promise<string> {
    if (this.inline) return this.inline.digest('hex');
    if (!this.worker) {
      const hash = createHash('md5');
      for (const c of this.held) hash.update(c);
      this.held = [];
      return hash.digest('hex');
    }
    this.send();
    await Promise.all(this.inFlight);
    const [md5 = ''] = await this.worker.final(this.job);
    return md5;
  }

  /** Forgets the body (after a failed upload). */
  abort(): void {
    this.held = [];
    if (this.worker) this.worker.abort(this.job);
  }
}
