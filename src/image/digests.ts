import { HashWorker, newHashJob } from '../core/hash-worker.js';

/**
 * MD5 and SHA-512 of image data, computed on a worker thread while the main
 * thread moves the bytes: the two digests cost about 2 CPU-seconds per GiB,
 * which on the event loop would slow every upload to half and stall the
 * API meanwhile. Data goes to the worker in SharedArrayBuffer batches (no
 * copies); the worker is shared by all uploads of the process. One worker,
 * not one per digest: a second would gain little on two cores and cost
 * ~9 MiB of memory.
 */

let worker: HashWorker | null = null;

/** The digests of one stream of data. */
export class ParallelDigest {
  private readonly job = newHashJob();
  private readonly worker: HashWorker;

  constructor() {
    worker ??= new HashWorker(['md5', 'sha512']);
    this.worker = worker;
  }

  /** Hashes `length` bytes of a batch; resolves when the worker has them (the batch may then be reused). */
  update(buffer: SharedArrayBuffer, length: number): Promise<void> {
    return this.worker.update(this.job, buffer, length);
  }

  async digest(): Promise<{ md5: string; sha512: string }> {
    const [md5 = '', sha512 = ''] = await this.worker.final(this.job);
    return { md5, sha512 };
  }

  /** Forgets the stream (after a failed upload). */
  abort(): void {
    this.worker.abort(this.job);
  }
}
