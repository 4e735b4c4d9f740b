import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createStorageCluster, type StorageCluster } from '../storage/testing.js';
import { RateLimiter } from './rate-limiter.js';
import { startObjectWorkers, type WorkerName } from './workers.js';

/** A logger whose lines are kept (parsed). */
function captureLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

describe('startObjectWorkers', () => {
  let cluster: StorageCluster;
  before(async () => {
    cluster = await createStorageCluster({ devices: 3, nodePerDevice: false });
  });
  after(async () => {
    await cluster.close();
  });

  function config(intervals: Partial<Record<`${WorkerName}_interval`, number>> = {}): typeof cluster.config {
    const base = cluster.nodes[0]?.config ?? cluster.config;
    return {
      ...base,
      object: {
        ...base.object,
        workers: { replicator_interval: 0, auditor_interval: 0, updater_interval: 0, expirer_interval: 0, reaper_interval: 0, ...intervals },
      },
    };
  }

  it('runs one pass of each worker over every local device and logs what it did', async () => {
    const { logger, lines } = captureLogger();
    const workers = startObjectWorkers({ config: config(), salt: cluster.salt, rings: cluster.rings, storage: cluster.client, devicesDir: cluster.nodes[0]?.devicesDir ?? '', logger });
    try {
      for (const name of ['updater', 'replicator', 'auditor', 'expirer', 'reaper'] as const) {
        const report = await workers.runOnce(name);
        assert.equal(report.worker, name);
        assert.equal(report.stats.failed ?? 0, 0);
      }
      const completed = lines.filter((l) => l.msg === 'pass completed').map((l) => l.worker);
      assert.deepEqual(completed, ['updater', 'replicator', 'auditor', 'expirer', 'reaper']);
    } finally {
      await workers.stop();
    }
  });

  it('never overlaps two passes of one worker', async () => {
    const { logger, lines } = captureLogger();
    const workers = startObjectWorkers({ config: config(), salt: cluster.salt, rings: cluster.rings, storage: cluster.client, devicesDir: cluster.nodes[0]?.devicesDir ?? '', logger });
    try {
      await Promise.all([workers.runOnce('auditor'), workers.runOnce('auditor'), workers.runOnce('auditor')]);
      const sequence = lines.filter((l) => l.worker === 'auditor').map((l) => l.msg);
      assert.deepEqual(sequence, ['pass begins', 'pass completed', 'pass begins', 'pass completed', 'pass begins', 'pass completed']);
    } finally {
      await workers.stop();
    }
  });

  it('runs passes by itself every interval, and stops', async () => {
    const { logger, lines } = captureLogger();
    const workers = startObjectWorkers({ config: config({ updater_interval: 0.05 }), salt: cluster.salt, rings: cluster.rings, storage: cluster.client, devicesDir: cluster.nodes[0]?.devicesDir ?? '', logger });
    const done = (): number => lines.filter((l) => l.worker === 'updater' && l.msg === 'pass completed').length;
    while (done() < 2) await sleep(10);
    await workers.stop();
    const after = done();
    await sleep(120);
    assert.equal(done(), after, 'no pass after stop');
    await assert.rejects(workers.runOnce('updater'), /stopped/);
    assert.ok(lines.every((l) => l.worker !== 'replicator'), 'a worker whose interval is 0 never runs by itself');
  });

  it('refuses an unknown worker', async () => {
    const workers = startObjectWorkers({ config: config(), salt: cluster.salt, rings: cluster.rings, storage: cluster.client, devicesDir: cluster.nodes[0]?.devicesDir ?? '', logger: pino({ level: 'silent' }) });
    try {
      await assert.rejects(workers.runOnce('janitor' as WorkerName), /unknown worker "janitor"/);
    } finally {
      await workers.stop();
    }
  });

  it('finds no device of its own when the rings name other ports', async () => {
    const other = config();
    other.object = { ...other.object, storage: { ...other.object.storage, object_port: 1, container_port: 2, account_port: 3 } };
    const workers = startObjectWorkers({ config: other, salt: cluster.salt, rings: cluster.rings, storage: cluster.client, devicesDir: cluster.nodes[0]?.devicesDir ?? '', logger: pino({ level: 'silent' }) });
    try {
      const report = await workers.runOnce('replicator');
      assert.equal(report.stats.partitions ?? 0, 0);
    } finally {
      await workers.stop();
    }
  });
});

describe('RateLimiter', () => {
  it('holds a reader to its rate', async () => {
    const limiter = new RateLimiter(20_000);
    const started = performance.now();
    for (let i = 0; i < 5; i++) await limiter.take(1000);
    // 5000 units at 20,000 per second: the last take ends no earlier than 4000/20000 s after the first.
    assert.ok(performance.now() - started >= 190);
  });

  it('never waits when off', async () => {
    const limiter = new RateLimiter(0);
    for (let i = 0; i < 1000; i++) await limiter.take(1e9);
  });
});
