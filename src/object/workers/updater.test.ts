import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RingDevice } from '../ring/ring.js';
import { listAsyncPending } from '../storage/updates.js';
import { createWorkerCluster, type WorkerCluster } from './cluster.test-util.js';

describe('updater and replicator after a storage node was down', () => {
  let h: WorkerCluster;
  const account = 'AUTH_down';
  const container = 'box';
  const names = Array.from({ length: 12 }, (_, i) => `o${String(i).padStart(2, '0')}`);

  before(async () => {
    h = await createWorkerCluster();
    await h.createContainer(account, container);
  });
  after(async () => {
    await h.close();
  });

  async function pendings(): Promise<string[]> {
    const all: string[] = [];
    for (const node of h.cluster.nodes) for (const d of node.devices) all.push(...(await listAsyncPending(path.join(node.devicesDir, d))));
    return all;
  }

  it('writes succeed on a quorum while one node is down; updater and replicator bring every listing up to date', async () => {
    await h.cluster.stopNode(2);
    for (const name of names) {
      const statuses = await h.putObject(account, container, name, Buffer.from(`body of ${name}`));
      assert.equal(statuses.filter((s) => s === 201).length, 2, `${name}: a quorum of 2 took it`);
    }
    for (const name of names) assert.equal((await h.getObject(account, container, name)).body.toString(), `body of ${name}`);
    // Account reports of the containers go out lazily: let them fail (and queue) now.
    await h.cluster.flushAccountReports();
    const queued = await pendings();
    assert.ok(queued.length > 0, 'container updates for the stopped node were queued');

    // The updater keeps what it cannot deliver.
    try {
      const failed = await h.run(0, 'updater');
      assert.equal(failed.stats.async_sent ?? 0, 0);
      // Each update is kept (an older one of the same name may give way to a newer one).
      const left = new Set((await pendings()).map((f) => path.basename(f).slice(0, 32)));
      for (const file of queued) assert.ok(left.has(path.basename(file).slice(0, 32)), `${file} is kept`);
    } finally {
      await h.startNode(2);
    }
    const listingsBefore = await h.listings(account, container);
    assert.ok(listingsBefore.some((l) => l !== null && l.length < names.length), 'a container replica is behind');

    const updates = await h.runAll('updater');
    assert.ok(updates.reduce((n, r) => n + (r.stats.async_sent ?? 0), 0) > 0);
    assert.equal(updates.reduce((n, r) => n + (r.stats.async_failed ?? 0), 0), 0);
    await h.cluster.flushAccountReports();
    assert.deepEqual(await pendings(), []);
    await h.runAll('replicator');

    for (const listing of await h.listings(account, container)) assert.deepEqual(listing, names);
    for (const name of names) {
      const placement = h.cluster.rings.object.getNodes(account, container, name);
      for (const node of placement.nodes) {
        const res = await h.send(node, { method: 'GET', partition: placement.partition, account, container, object: name, headers: {} });
        assert.equal(res.status, 200, `${name} on ${node.device}`);
      }
    }
  });

  it('the container updater reports counts to every account replica', async () => {
    await h.cluster.flushAccountReports();
    await h.runAll('updater');
    const a = h.cluster.rings.account.getNodes(account);
    for (const node of a.nodes) {
      const res = await h.send(node, { method: 'HEAD', partition: a.partition, account, headers: {} });
      assert.equal(res.status, 204);
      assert.equal(res.headers['x-account-object-count'], String(names.length), node.device);
      assert.equal(res.headers['x-account-container-count'], '1');
    }
    // Nothing changed since: nothing is sent again.
    const again = await h.runAll('updater');
    for (const r of again) assert.equal(r.stats.containers_reported ?? 0, 0);
  });

  it('replays only the newest update of an object and quarantines an unreadable file', async () => {
    const c = h.cluster.rings.container.getNodes(account, container);
    const device = (c.nodes[0] as RingDevice).device;
    const devicePath = h.cluster.devicePath(device);
    const dir = path.join(devicePath, 'async_pending', 'abc');
    fs.mkdirSync(dir, { recursive: true });
    const hash = 'f'.repeat(29) + 'abc';
    const older = h.ts();
    const newer = h.ts();
    const record = (ts: string, size: string): string =>
      JSON.stringify({ op: 'PUT', account, container, obj: 'replayed', headers: { 'x-timestamp': ts, 'x-size': size, 'x-content-type': 'text/plain', 'x-etag': 'e' }, target: 'container' });
    fs.writeFileSync(path.join(dir, `${hash}-${older}`), record(older, '1'));
    fs.writeFileSync(path.join(dir, `${hash}-${newer}`), record(newer, '2'));
    fs.writeFileSync(path.join(dir, `${'e'.repeat(29)}abc-${newer}`), 'not json');
    const node = h.cluster.nodes.findIndex((n) => n.devices.includes(device));
    const report = await h.run(node, 'updater');
    assert.equal(report.stats.async_obsolete, 1);
    assert.equal(report.stats.async_sent, 1);
    assert.equal(report.stats.async_quarantined, 1);
    assert.equal(fs.existsSync(dir), false);
    assert.ok(fs.existsSync(path.join(devicePath, 'quarantined', 'objects', `${'e'.repeat(29)}abc-${newer}`)));
    for (const cn of c.nodes) {
      const res = await h.send(cn, { method: 'GET', partition: c.partition, account, container, headers: {}, query: 'format=json&prefix=replayed' });
      assert.deepEqual((JSON.parse(res.body.toString()) as { name: string; bytes: number }[]).map((r) => [r.name, r.bytes]), [['replayed', 2]]);
    }
  });
});
