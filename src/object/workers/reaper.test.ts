import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import { hashPathHex } from '../common.js';
import { dbPath } from '../storage/broker.js';
import { createWorkerCluster, type WorkerCluster } from './cluster.test-util.js';
import { containerShard } from './reaper.js';

describe('account reaper', () => {
  let h: WorkerCluster;
  const account = 'AUTH_doomed';
  const other = 'AUTH_alive';
  const containers = ['c1', 'c2', 'c3', 'c4'];

  before(async () => {
    h = await createWorkerCluster();
    for (const c of containers) {
      await h.createContainer(account, c);
      for (const o of ['a', 'b/c', 'd']) assert.deepEqual(await h.putObject(account, c, o, Buffer.from(`${c}/${o}`)), [201, 201, 201]);
    }
    await h.createContainer(other, 'c1');
    await h.putObject(other, 'c1', 'a', Buffer.from('alive'));
    await h.cluster.flushAccountReports();
  });
  after(async () => {
    await h.close();
  });

  it('divides containers between the primaries', () => {
    const shards = new Set(containers.map((c) => containerShard(c, 3)));
    for (const s of shards) assert.ok(s >= 0 && s < 3);
  });

  it('does nothing for accounts that are not deleted', async () => {
    const reports = await h.runAll('reaper');
    for (const r of reports) assert.equal(r.stats.accounts ?? 0, 0);
    assert.equal((await h.getObject(account, 'c1', 'a')).status, 200);
  });

  it("removes every object and container of a deleted account, and nothing of another's", async () => {
    const a = h.cluster.rings.account.getNodes(account);
    const stamp = h.ts();
    for (const node of a.nodes) assert.equal((await h.send(node, { method: 'DELETE', partition: a.partition, account, headers: { 'x-timestamp': stamp } })).status, 204);

    const reports = await h.runAll('reaper');
    assert.equal(reports.reduce((n, r) => n + (r.stats.objects_deleted ?? 0), 0), containers.length * 3);
    assert.equal(reports.reduce((n, r) => n + (r.stats.containers_deleted ?? 0), 0), containers.length);
    assert.equal(reports.reduce((n, r) => n + (r.stats.accounts_reaped ?? 0), 0), 3);

    for (const c of containers) {
      for (const o of ['a', 'b/c', 'd']) {
        const { partition, nodes } = h.cluster.rings.object.getNodes(account, c, o);
        for (const node of nodes) assert.equal((await h.send(node, { method: 'HEAD', partition, account, container: c, object: o, headers: {} })).status, 404, `${c}/${o} on ${node.device}`);
      }
      const cp = h.cluster.rings.container.getNodes(account, c);
      for (const node of cp.nodes) assert.equal((await h.send(node, { method: 'HEAD', partition: cp.partition, account, container: c, headers: {} })).status, 404);
    }
    for (const node of a.nodes) {
      const head = await h.send(node, { method: 'HEAD', partition: a.partition, account, headers: {} });
      assert.equal(head.status, 404);
      assert.equal(head.headers['x-account-status'], 'Deleted');
      const db = new Database(dbPath(h.cluster.devicePath(node.device), 'account', a.partition, hashPathHex(h.cluster.salt, account)), { readonly: true });
      try {
        assert.deepEqual(db.prepare('SELECT container_count, object_count FROM info').get(), { container_count: 0, object_count: 0 });
      } finally {
        db.close();
      }
    }
    assert.equal((await h.getObject(other, 'c1', 'a')).body.toString(), 'alive');

    const again = await h.runAll('reaper');
    for (const r of again) assert.equal(r.stats.objects_deleted ?? 0, 0);
  });
});
