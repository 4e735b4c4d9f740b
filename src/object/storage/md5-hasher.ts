import { createHash, type Hash } from 'node:crypto';
import os from 'node:os';
import { Worker } from 'node:worker_threads';

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

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'update') {
    let hash = jobs.get(m.job);
    if (!hash) { hash = createHash('md5'); jobs.set(m.job, hash); }
    hash.update(new Uint8Array(m.buffer, 0, m.length));
    parentPort.postMessage({ job: m.job, type: 'ack' });
  } else if (m.type === 'final') {
    const hash = jobs.get(m.job) || createHash('md5');
    jobs.delete(m.job);
    parentPort.postMessage({ job: m.job, type: 'digest', hex: hash.digest('hex') });
  } else if (m.type === 'abort') {
    jobs.delete(m.job);
  }
});
`;

interface Reply {
  job: number;
  type: 'ack' | 'digest';
  hex?: string;
}

class HashWorker {
  private readonly worker: Worker;
  private readonly acks = new Map<number, (() => void)[]>();
  private readonly finals = new Map<number, (hex: string) => void>();

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, codeRangeSizeMb: 4 } });
    this.worker.on('message', (reply: Reply) => {
      if (reply.type === 'ack') this.acks.get(reply.job)?.shift()?.();
      else {
        this.finals.get(reply.job)?.(reply.hex ?? '');
        this.finals.delete(reply.job);
      }
    });
    // Idle workers never keep the process alive.
    this.worker.unref();
  }

  update(job: number, buffer: SharedArrayBuffer, length: number): Promise<void> {
    return new Promise((resolve) => {
      const waiting = this.acks.get(job) ?? [];
      waiting.push(resolve);
      this.acks.set(job, waiting);
      this.worker.postMessage({ type: 'update', job, buffer, length });
    });
  }

  final(job: number): Promise<string> {
    return new Promise((resolve) => {
      this.finals.set(job, resolve);
      this.worker.postMessage({ type: 'final', job });
    });
  }

  abort(job: number): void {
    this.acks.delete(job);
    this.worker.postMessage({ type: 'abort', job });
  }
}

const workers: HashWorker[] = [];
let nextJob = 1;

function pickWorker(job: number): HashWorker {
  // One worker per core (at most 4): the three replicas of a large PUT hash at once.
  const count = Math.max(1, Math.min(4, os.availableParallelism()));
  const index = job % count;
  let worker = workers[index];
  if (!worker) {
    worker = new HashWorker();
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
      this.job = nextJob++;
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
    return this.worker.final(this.job);
  }

  /** Forgets the body (after a failed upload). */
  abort(): void {
    this.held = [];
    if (this.worker) this.worker.abort(this.job);
  }
}
