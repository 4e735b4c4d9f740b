import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashPathHex } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import { dbPath } from '../storage/broker.js';
import { encodeTrailer, objectDir } from '../storage/diskfile.js';
import { createWorkerCluster, type WorkerCluster } from './cluster.test-util.js';

describe('auditor', () => {
  let h: WorkerCluster;
  const account = 'AUTH_audit';
  const container = 'box';

  before(async () => {
    h = await createWorkerCluster();
    await h.createContainer(account, container);
  });
  after(async () => {
    await h.close();
  });

  function nodeOf(device: string): number {
    return h.cluster.nodes.findIndex((n) => n.devices.includes(device));
  }

  it('passes sound objects and tombstones', async () => {
    await h.putObject(account, container, 'sound', randomBytes(3000));
    await h.putObject(account, container, 'empty', Buffer.alloc(0));
    await h.putObject(account, container, 'deleted', Buffer.from('x'));
    await h.deleteObject(account, container, 'deleted');
    const reports = await h.runAll('auditor');
    for (const r of reports) {
      assert.equal(r.stats.quarantined ?? 0, 0);
      assert.ok((r.stats.checked ?? 0) >= 1);
      assert.equal(r.stats.container_dbs_quarantined ?? 0, 0);
      assert.equal(r.stats.account_dbs_quarantined ?? 0, 0);
    }
  });

  it('quarantines a truncated object (length differs from its metadata)', async () => {
    await h.putObject(account, container, 'short', randomBytes(4000));
    const { nodes } = h.cluster.rings.object.getNodes(account, container, 'short');
    const device = (nodes[0] as RingDevice).device;
    const file = h.dataFile(device, account, container, 'short') ?? '';
    // Rewrite the file with a shorter body but the original metadata.
    const original = fs.readFileSync(file);
    const metaLength = original.readUInt32BE(original.length - 4);
    const metadata = JSON.parse(original.subarray(original.length - 8 - metaLength, original.length - 8).toString()) as Record<string, string>;
    fs.writeFileSync(file, Buffer.concat([randomBytes(100), encodeTrailer(metadata)]));
    const report = await h.run(nodeOf(device), 'auditor');
    assert.equal(report.stats.quarantined, 1);
    assert.equal(h.dataFile(device, account, container, 'short'), null);
    await h.runAll('replicator');
    assert.deepEqual(fs.readFileSync(h.dataFile(device, account, container, 'short') ?? ''), original);
  });

  it('quarantines an object whose metadata cannot be read', async () => {
    await h.putObject(account, container, 'garbled', randomBytes(100));
    const { nodes, partition } = h.cluster.rings.object.getNodes(account, container, 'garbled');
    const device = (nodes[1] as RingDevice).device;
    const file = h.dataFile(device, account, container, 'garbled') ?? '';
    fs.truncateSync(file, 50);
    const report = await h.run(nodeOf(device), 'auditor');
    assert.equal(report.stats.quarantined, 1);
    const hash = hashPathHex(h.cluster.salt, account, container, 'garbled');
    assert.equal(fs.existsSync(objectDir(h.cluster.devicePath(device), partition, hash)), false);
    assert.ok(fs.existsSync(path.join(h.cluster.devicePath(device), 'quarantined', 'objects', hash)));
  });

  it('quarantines a broken container db, and the replicator recreates it from its peers', async () => {
    await h.createContainer(account, 'fragile');
    for (const o of ['x', 'y']) await h.putObject(account, 'fragile', o, Buffer.from(o));
    const c = h.cluster.rings.container.getNodes(account, 'fragile');
    const device = (c.nodes[0] as RingDevice).device;
    const file = dbPath(h.cluster.devicePath(device), 'container', c.partition, hashPathHex(h.cluster.salt, account, 'fragile'));
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(100, 0x41), 0, 100, 0);
    fs.closeSync(fd);

    const report = await h.run(nodeOf(device), 'auditor');
    assert.equal(report.stats.container_dbs_quarantined, 1);
    assert.equal(fs.existsSync(file), false);
    assert.ok(fs.existsSync(path.join(h.cluster.devicePath(device), 'quarantined', 'containers', hashPathHex(h.cluster.salt, account, 'fragile'))));

    // The container server of this node had the db open: it forgets the moved file at once, so it has no such container now
    // and an object row sent to it is refused (not written into the quarantined file).
    const head = await h.send(c.nodes[0] as RingDevice, { method: 'HEAD', partition: c.partition, account, container: 'fragile', headers: {} });
    assert.equal(head.status, 404);
    const lost = await h.send(c.nodes[0] as RingDevice, {
      method: 'PUT',
      partition: c.partition,
      account,
      container: 'fragile',
      object: 'z',
      headers: { 'x-timestamp': h.ts(), 'x-size': '1', 'x-content-type': 'text/plain', 'x-etag': 'e'.repeat(32) },
    });
    assert.equal(lost.status, 404);
    await h.runAll('replicator');
    assert.ok(fs.existsSync(file), 'recreated by a peer');
    assert.deepEqual(await h.listings(account, 'fragile'), [['x', 'y'], ['x', 'y'], ['x', 'y']]);
  });
});
