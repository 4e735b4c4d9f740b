import { Worker } from 'node:worker_threads';

/**
 * A worker thread that hashes streams of bytes with one or more algorithms
 * (`createHash` names), so that large uploads are hashed off the event loop.
 * Many streams (jobs) share one worker. The bytes come in SharedArrayBuffer
 * batches, so nothing is cloned: `update` resolves when the worker has
 * hashed a batch, and only then may the caller refill it. The worker keeps a
 * small heap (a few MiB), and keeps the process alive only while a reply is
 * awaited: an idle one never does.
 */

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
const start = () => workerData.algorithms.map((name) => createHash(name));
parentPort.on('message', (m) => {
  if (m.type === 'update') {
    let hashes = jobs.get(m.job);
    if (!hashes) { hashes = start(); jobs.set(m.job, hashes); }
    const data = new Uint8Array(m.buffer, 0, m.length);
    for (const hash of hashes) hash.update(data);
    parentPort.postMessage({ job: m.job, type: 'ack' });
  } else if (m.type === 'final') {
    const hashes = jobs.get(m.job) || start();
    jobs.delete(m.job);
    parentPort.postMessage({ job: m.job, type: 'digest', hex: hashes.map((hash) => hash.digest('hex')) });
  } else if (m.type === 'abort') {
    jobs.delete(m.job);
  }
});
`;

interface Reply {
  job: number;
  type: 'ack' | 'digest';
  hex?: string[];
}

let nextJob = 1;

/** A job number unique in this process, for `HashWorker` calls. */
export function newHashJob(): number {
  return nextJob++;
}

export class HashWorker {
  private readonly worker: Worker;
  private readonly acks = new Map<number, (() => void)[]>();
  private readonly finals = new Map<number, (hex: string[]) => void>();
  /** Replies awaited (acks and digests): the worker is ref'd while there are any. */
  private awaited = 0;

  constructor(algorithms: string[]) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithms }, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, codeRangeSizeMb: 4 } });
    this.worker.on('message', (reply: Reply) => {
      this.replied();
      if (reply.type === 'ack') this.acks.get(reply.job)?.shift()?.();
      else {
        this.finals.get(reply.job)?.(reply.hex ?? []);
        this.finals.delete(reply.job);
      }
    });
    // After the listener (adding one refs the worker again).
    this.worker.unref();
  }

  private awaiting(): void {
    if (this.awaited++ === 0) this.worker.ref();
  }

  private replied(): void {
    if (--this.awaited === 0) this.worker.unref();
  }

  /** Hashes `length` bytes of `buffer` into `job`; resolves when the batch may be reused. */
  update(job: number, buffer: SharedArrayBuffer, length: number): Promise<void> {
    return new Promise((resolve) => {
      const waiting = this.acks.get(job) ?? [];
      waiting.push(resolve);
      this.acks.set(job, waiting);
      this.awaiting();
      this.worker.postMessage({ type: 'update', job, buffer, length });
    });
  }

  /** Ends `job`: its hex digests, one per algorithm, in the constructor's order. */
  final(job: number): Promise<string[]> {
    this.acks.delete(job);
    return new Promise((resolve) => {
      this.finals.set(job, resolve);
      this.awaiting();
      this.worker.postMessage({ type: 'final', job });
    });
  }

  /** Forgets `job` (after a failed upload). */
  abort(job: number): void {
    this.acks.delete(job);
    this.worker.postMessage({ type: 'abort', job });
  }
}
