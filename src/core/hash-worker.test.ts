import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { HashWorker, newHashJob } from './hash-worker.js';

const hex = (algorithm: string, data: Buffer): string => createHash(algorithm).update(data).digest('hex');

test('a hash worker keeps interleaved jobs apart and gives each digest in the order asked', async () => {
  const worker = new HashWorker(['md5', 'sha512']);
  const a = randomBytes(3 * 65536 + 7);
  const b = randomBytes(2 * 65536);
  const [jobA, jobB] = [newHashJob(), newHashJob()];
  const batch = new SharedArrayBuffer(65536);
  // One batch buffer reused: each update must be hashed before the buffer is refilled.
  for (let offset = 0; offset < a.length; offset += 65536) {
    for (const [job, data] of [
      [jobA, a],
      [jobB, b],
    ] as const) {
      const piece = data.subarray(offset, offset + 65536);
      if (piece.length === 0) continue;
      new Uint8Array(batch).set(piece);
      await worker.update(job, batch, piece.length);
    }
  }
  assert.deepEqual(await worker.final(jobA), [hex('md5', a), hex('sha512', a)]);
  assert.deepEqual(await worker.final(jobB), [hex('md5', b), hex('sha512', b)]);
});

test('an aborted job is forgotten, and a job with no data has the digests of nothing', async () => {
  const worker = new HashWorker(['md5']);
  const job = newHashJob();
  const batch = new SharedArrayBuffer(16);
  new Uint8Array(batch).set(Buffer.from('abandoned bytes!'));
  await worker.update(job, batch, 16);
  worker.abort(job);
  assert.deepEqual(await worker.final(job), [hex('md5', Buffer.alloc(0))]);
});
