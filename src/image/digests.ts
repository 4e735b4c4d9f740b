import { Worker } from 'node:worker_threads';

/**
 * MD5 and SHA-512 of image data, each computed on a worker thread of its
 * own while the main thread moves the bytes: the two digests cost about 2
 * CPU-seconds per GiB, which on the event loop would cap uploads near
 * 450 MiB/s. Data goes to the workers in SharedArrayBuffer batches (no
 * copies per worker); the workers are shared by all uploads of the process.
 */

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'update') {
    let hash = jobs.get(m.job);
    if (!hash) { hash = createHash(workerData.algorithm); jobs.set(m.job, hash); }
    hash.update(new Uint8Array(m.buffer, 0, m.length));
    parentPort.postMessage({ job: m.job, type: 'ack' });
  } else if (m.type === 'final') {
    const hash = jobs.get(m.job) || createHash(workerData.algorithm);
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

class DigestWorker {
  private readonly worker: Worker;
  private readonly acks = new Map<number, (() => void)[]>();
  private readonly finals = new Map<number, (hex: string) => void>();

  constructor(algorithm: string) {
    // The workers only hash: a small heap keeps each to a few MiB of memory.
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithm }, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, codeRangeSizeMb: 4 } });
    this.worker.on('message', (reply: Reply) => {
      if (reply.type === 'ack') this.acks.get(reply.job)?.shift()?.();
      else {
        this.finals.get(reply.job)?.(reply.hex ?? '');
        this.finals.delete(reply.job);
      }
    });
    // After the listener (adding one refs the worker again): idle workers never keep the process alive.
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
    this.acks.delete(job);
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

let workers: { md5: DigestWorker; sha512: DigestWorker } | null = null;
let nextJob = 1;

/** The digests of one stream of data. */
export class ParallelDigest {
  private readonly job = nextJob++;
  private readonly pool: { md5: DigestWorker; sha512: DigestWorker };

  constructor() {
    workers ??= { md5: new DigestWorker('md5'), sha512: new DigestWorker('sha512') };
    this.pool = workers;
  }

  /** Hashes `length` bytes of a batch; resolves when both workers have them (the batch may then be reused). */
  async update(buffer: SharedArrayBuffer, length: number): Promise<void> {
    await Promise.all([this.pool.md5.update(this.job, buffer, length), this.pool.sha512.update(this.job, buffer, length)]);
  }

  async digest(): Promise<{ md5: string; sha512: string }> {
    const [md5, sha512] = await Promise.all([this.pool.md5.final(this.job), this.pool.sha512.final(this.job)]);
    return { md5, sha512 };
  }

  /** Forgets the stream (after a failed upload). */
  abort(): void {
    this.pool.md5.abort(this.job);
    this.pool.sha512.abort(this.job);
  }
}
