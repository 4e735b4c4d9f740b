import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { StratusConfig } from '../../core/config.js';
import type { RingDevice } from '../ring/ring.js';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';
import { readBody } from './direct-client.js';
import { startObjectWorkers, type ObjectWorkers, type WorkerName } from './workers.js';

/** Through the proxy (H3's test cloud, three storage nodes): what the issue asks of the workers. */
describe('workers behind the Swift API', () => {
  let cloud: ObjectTestCloud;
  let workers: ObjectWorkers[];
  let base: string;

  const noIntervals = (config: StratusConfig): StratusConfig => ({
    ...config,
    object: { ...config.object, workers: { replicator_interval: 0, auditor_interval: 0, updater_interval: 0, expirer_interval: 0, reaper_interval: 0 }, auditor_bytes_per_second: 0 },
  });

  async function runAll(name: WorkerName): Promise<void> {
    for (const [i, w] of workers.entries()) if (cloud.cluster.nodes[i]?.running) await w.runOnce(name);
  }

  async function replicaListings(container: string): Promise<string[][]> {
    const account = base.slice('/v1/'.length);
    const { partition, nodes } = cloud.cluster.rings.container.getNodes(account, container);
    return Promise.all(
      nodes.map(async (node: RingDevice) => {
        const res = await cloud.cluster.client.request(node, { method: 'GET', device: node.device, partition, account, container, headers: {}, query: 'format=json' });
        const body = await readBody(res.body);
        if (res.status === 204) return [];
        assert.equal(res.status, 200);
        return (JSON.parse(body.toString()) as { name: string }[]).map((r) => r.name);
      }),
    );
  }

  before(async () => {
    cloud = await createObjectTestCloud();
    base = cloud.account(cloud.alpha);
    const logger = pino({ level: 'silent' });
    workers = cloud.cluster.nodes.map((node) =>
      startObjectWorkers({ config: noIntervals(node.config), salt: cloud.cluster.salt, rings: cloud.cluster.rings, storage: cloud.cluster.client, devicesDir: node.devicesDir, logger, internal: cloud.proxy.ctx.internal }),
    );
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await cloud.close();
  });

  it('PUTs while a storage node is down; after it returns, updater and replicator make every container replica list every object', async () => {
    assert.equal((await cloud.request('PUT', `${base}/durable`)).status, 201);
    await cloud.cluster.stopNode(1);
    const names = ['a', 'b/c', 'd', 'e', 'f', 'g'];
    try {
      for (const name of names) assert.equal((await cloud.request('PUT', `${base}/durable/${name}`, { body: `data ${name}` })).status, 201);
      for (const name of names) assert.equal((await cloud.request('GET', `${base}/durable/${name}`)).text, `data ${name}`);
    } finally {
      // Another socket may have been given the stopped node's port meanwhile: wait for it to be free again.
      for (let attempt = 0; ; attempt++) {
        try {
          await cloud.cluster.startNode(1);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 100) throw err;
          await sleep(100);
        }
      }
    }
    await runAll('updater');
    await runAll('replicator');
    assert.deepEqual(await replicaListings('durable'), [names, names, names]);
    const listing = await cloud.request('GET', `${base}/durable`, { query: 'format=json' });
    assert.deepEqual((listing.json() as { name: string }[]).map((r) => r.name), names);
  });

  it('an object whose X-Delete-At has passed is gone after an expirer pass', async () => {
    assert.equal((await cloud.request('PUT', `${base}/exp`)).status, 201);
    // Two seconds ahead: one second may already have gone by when the PUT arrives (X-Delete-At in the past is a 400).
    const deleteAt = Math.floor(Date.now() / 1000) + 2;
    assert.equal((await cloud.request('PUT', `${base}/exp/brief`, { body: 'brief', headers: { 'x-delete-at': String(deleteAt) } })).status, 201);
    assert.equal((await cloud.request('PUT', `${base}/exp/stays`, { body: 'stays' })).status, 201);
    await cloud.cluster.flushAccountReports();
    while (Date.now() / 1000 <= deleteAt) await sleep(50);
    await runAll('expirer');
    assert.equal((await cloud.request('GET', `${base}/exp/brief`)).status, 404);
    assert.deepEqual(await replicaListings('exp'), [['stays'], ['stays'], ['stays']]);
  });

  it("a deleted account's data is gone after a reaper pass", async () => {
    const beta = cloud.account(cloud.beta);
    assert.equal((await cloud.request('PUT', `${beta}/c`, { user: cloud.beta })).status, 201);
    assert.equal((await cloud.request('PUT', `${beta}/c/o`, { user: cloud.beta, body: 'doomed' })).status, 201);
    const deleted = await cloud.request('DELETE', beta, { user: cloud.reseller });
    assert.ok([204, 200].includes(deleted.status), `account DELETE by the reseller admin: ${deleted.status}`);
    await runAll('reaper');
    const account = beta.slice('/v1/'.length);
    const { partition, nodes } = cloud.cluster.rings.object.getNodes(account, 'c', 'o');
    for (const node of nodes) {
      const res = await cloud.cluster.client.request(node, { method: 'HEAD', device: node.device, partition, account, container: 'c', object: 'o', headers: {} });
      res.body.resume();
      assert.equal(res.status, 404);
    }
  });
});
