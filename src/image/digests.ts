import { Worker } from 'node:worker_threads';

/**
 * MD5 and SHA-512 of image data, computed on a worker thread while the main
 * thread moves the bytes: the two digests cost about 2 CPU-seconds per GiB,
 * which on the event loop would slow every upload to half and stall the
 * API meanwhile. Data goes to the worker in SharedArrayBuffer batches (no
 * copies); the worker is shared by all uploads of the process. One worker,
 * not one per digest: a second would gain little on two cores and cost
 * ~9 MiB of memory.
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
    parentPort.postMessage({ job: m.job, type: 'digest', hex: hashes.map((hash) => hash.digest('hex')).join(' ') });
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

  constructor(algorithms: string[]) {
    // The workers only hash: a small heap keeps each to a few MiB of memory.
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { algorithms }, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, codeRangeSizeMb: 4 } });
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

let worker: DigestWorker | null = null;
let nextJob = 1;

/** The digests of one stream of data. */
export class ParallelDigest {
  private readonly job = nextJob++;
  private readonly worker: DigestWorker;

  constructor() {
    worker ??= new DigestWorker(['md5', 'sha512']);
    this.worker = worker;
  }

  /** Hashes `length` bytes of a batch; resolves when the worker has them (the batch may then be reused). */
  update(buffer: SharedArrayBuffer, length: number): Promise<void> {
    return this.worker.update(this.job, buffer, length);
  }

  async digest(): Promise<{ md5: string; sha512: string }> {
    const [md5 = '', sha512 = ''] = (await this.worker.final(this.job)).split(' ');
    return { md5, sha512 };
  }

  /** Forgets the stream (after a failed upload). */
  abort(): void {
    this.worker.abort(this.job);
  }
}
