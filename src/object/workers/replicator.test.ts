import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashPathHex } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import { AccountBroker, dbPath } from '../storage/broker.js';
import { objectDir } from '../storage/diskfile.js';
import { createWorkerCluster, type WorkerCluster } from './cluster.test-util.js';

describe('object replicator (3 nodes, 3 replicas)', () => {
  let h: WorkerCluster;
  const account = 'AUTH_repl';
  const container = 'box';

  before(async () => {
    h = await createWorkerCluster();
    await h.createContainer(account, container);
  });
  after(async () => {
    await h.close();
  });

  it('restores a replica whose data file was removed, byte for byte', async () => {
    const body = randomBytes(70_000);
    assert.deepEqual(await h.putObject(account, container, 'lost/one', body, { 'x-object-meta-color': 'blue' }), [201, 201, 201]);
    const { nodes } = h.cluster.rings.object.getNodes(account, container, 'lost/one');
    const victim = (nodes[1] as RingDevice).device;
    const file = h.dataFile(victim, account, container, 'lost/one');
    assert.ok(file);
    const good = fs.readFileSync(h.dataFile((nodes[0] as RingDevice).device, account, container, 'lost/one') ?? '');
    fs.unlinkSync(file);

    const read = await h.getObject(account, container, 'lost/one');
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, body);

    const reports = await h.runAll('replicator');
    const restored = h.dataFile(victim, account, container, 'lost/one');
    assert.ok(restored, 'the data file is back');
    assert.deepEqual(fs.readFileSync(restored), good);
    assert.ok(reports.some((r) => (r.stats.objects_sent ?? 0) >= 1));

    const { partition } = h.cluster.rings.object.getNodes(account, container, 'lost/one');
    const direct = await h.send(nodes[1] as RingDevice, { method: 'GET', partition, account, container, object: 'lost/one', headers: {} });
    assert.equal(direct.status, 200);
    assert.deepEqual(direct.body, body);
    assert.equal(direct.headers['x-object-meta-color'], 'blue');
  });

  it('brings a replica that missed a POST and a DELETE up to date', async () => {
    await h.putObject(account, container, 'meta', Buffer.from('m'));
    await h.putObject(account, container, 'gone', Buffer.from('g'));
    const meta = h.cluster.rings.object.getNodes(account, container, 'meta');
    const gone = h.cluster.rings.object.getNodes(account, container, 'gone');
    const stamp = h.ts();
    // Only the first two replicas see these.
    for (const node of meta.nodes.slice(0, 2)) {
      const res = await h.send(node, { method: 'POST', partition: meta.partition, account, container, object: 'meta', headers: { 'x-timestamp': stamp, 'x-object-meta-state': 'posted', 'content-type': 'text/x-new' } });
      assert.equal(res.status, 202);
    }
    const delStamp = h.ts();
    for (const node of gone.nodes.slice(0, 2)) {
      const res = await h.send(node, { method: 'DELETE', partition: gone.partition, account, container, object: 'gone', headers: { 'x-timestamp': delStamp } });
      assert.equal(res.status, 204);
    }
    await h.runAll('replicator');
    const third = meta.nodes[2] as RingDevice;
    const head = await h.send(third, { method: 'HEAD', partition: meta.partition, account, container, object: 'meta', headers: {} });
    assert.equal(head.status, 200);
    assert.equal(head.headers['x-object-meta-state'], 'posted');
    assert.equal(head.headers['content-type'], 'text/x-new');
    const thirdGone = gone.nodes[2] as RingDevice;
    const after = await h.send(thirdGone, { method: 'HEAD', partition: gone.partition, account, container, object: 'gone', headers: {} });
    assert.equal(after.status, 404);
    assert.equal(after.headers['x-backend-timestamp'], delStamp);
  });

  it('quarantines a flipped byte with the auditor, then the replicator repairs it', async () => {
    const body = randomBytes(10_000);
    await h.putObject(account, container, 'flip', body);
    const { nodes, partition } = h.cluster.rings.object.getNodes(account, container, 'flip');
    const victimNode = nodes[2] as RingDevice;
    const victim = victimNode.device;
    const file = h.dataFile(victim, account, container, 'flip');
    assert.ok(file);
    const good = fs.readFileSync(file);
    const fd = fs.openSync(file, 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, 1234);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    fs.writeSync(fd, byte, 0, 1, 1234);
    fs.closeSync(fd);

    const victimIndex = h.cluster.nodes.findIndex((n) => n.devices.includes(victim));
    const audit = await h.run(victimIndex, 'auditor');
    assert.equal(audit.stats.quarantined, 1);
    const hash = hashPathHex(h.cluster.salt, account, container, 'flip');
    assert.ok(fs.existsSync(path.join(h.cluster.devicePath(victim), 'quarantined', 'objects', hash)), 'moved to quarantined/objects');
    assert.equal(h.dataFile(victim, account, container, 'flip'), null);

    const missing = await h.send(victimNode, { method: 'GET', partition, account, container, object: 'flip', headers: {} });
    assert.equal(missing.status, 404);
    assert.equal((await h.getObject(account, container, 'flip')).status, 200);

    await h.runAll('replicator');
    const repaired = h.dataFile(victim, account, container, 'flip');
    assert.ok(repaired);
    assert.deepEqual(fs.readFileSync(repaired), good);
    const read = await h.send(victimNode, { method: 'GET', partition, account, container, object: 'flip', headers: {} });
    assert.deepEqual(read.body, body);
  });

  it('leaves objects alone when every replica agrees', async () => {
    const reports = await h.runAll('replicator');
    for (const r of reports) {
      assert.equal(r.stats.objects_sent ?? 0, 0);
      assert.equal(r.stats.failed ?? 0, 0);
      assert.ok((r.stats.in_sync ?? 0) > 0);
    }
  });

  it('makes no account report for containers whose replicas agree', async () => {
    await h.runAll('replicator');
    await h.cluster.flushAccountReports();
    const a = h.cluster.rings.account.getNodes(account);
    /** Each account replica's rows (a report rewrites the container's row under a new ROWID). */
    const accountRows = (): unknown[] =>
      a.nodes.map((n) => {
        const broker = AccountBroker.open(dbPath(h.cluster.devicePath(n.device), 'account', a.partition, hashPathHex(h.cluster.salt, account)));
        try {
          return broker.getItemsSince(-1, 10000);
        } finally {
          broker.close();
        }
      });
    const before = accountRows();
    const reports = await h.runAll('replicator');
    assert.ok(reports.every((r) => (r.stats.container_in_sync ?? 0) > 0));
    await h.cluster.flushAccountReports();
    assert.deepEqual(accountRows(), before);
  });
});

describe('replicator: handoffs and reclaim (4 devices, 3 replicas)', () => {
  let h: WorkerCluster;
  const account = 'AUTH_handoff';
  const container = 'box';

  before(async () => {
    h = await createWorkerCluster({ devices: 4, replicas: 3 });
    await h.createContainer(account, container);
  });
  after(async () => {
    await h.close();
  });

  /** An object name none of whose primaries is d4. */
  function nameAwayFrom(prefix: string, device: string): { name: string; partition: number; nodes: RingDevice[] } {
    for (let i = 0; ; i++) {
      const name = `${prefix}-${i}`;
      const placement = h.cluster.rings.object.getNodes(account, container, name);
      if (!placement.nodes.some((n) => n.device === device)) return { name, ...placement };
    }
  }

  it('moves a handoff copy to its primaries and removes it', async () => {
    const { name, partition, nodes } = nameAwayFrom('moved', 'd4');
    const d4 = h.cluster.rings.object.devices.find((d) => d.device === 'd4') as RingDevice;
    const body = randomBytes(5000);
    const put = await h.send(d4, { method: 'PUT', partition, account, container, object: name, headers: { 'x-timestamp': h.ts(), 'content-type': 'text/plain', 'x-object-meta-where': 'handoff' }, body });
    assert.equal(put.status, 201);
    for (const node of nodes) assert.equal((await h.send(node, { method: 'HEAD', partition, account, container, object: name, headers: {} })).status, 404);

    const report = await h.run(3, 'replicator');
    assert.equal(report.stats.handoffs_removed, 1);
    for (const node of nodes) {
      const res = await h.send(node, { method: 'GET', partition, account, container, object: name, headers: {} });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, body);
      assert.equal(res.headers['x-object-meta-where'], 'handoff');
    }
    assert.equal(fs.existsSync(objectDir(h.cluster.devicePath('d4'), partition, hashPathHex(h.cluster.salt, account, container, name))), false);
    assert.equal(fs.existsSync(path.join(h.cluster.devicePath('d4'), 'objects', String(partition))), false);
  });

  it('keeps a handoff copy while a primary is down', async () => {
    const { name, partition, nodes } = nameAwayFrom('kept', 'd4');
    const d4 = h.cluster.rings.object.devices.find((d) => d.device === 'd4') as RingDevice;
    assert.equal((await h.send(d4, { method: 'PUT', partition, account, container, object: name, headers: { 'x-timestamp': h.ts(), 'content-type': 'text/plain' }, body: Buffer.from('kept') })).status, 201);
    const down = h.cluster.nodes.findIndex((n) => n.devices.includes((nodes[0] as RingDevice).device));
    await h.cluster.stopNode(down);
    try {
      const report = await h.run(3, 'replicator');
      assert.equal(report.stats.handoffs_removed ?? 0, 0);
      assert.ok(h.dataFile('d4', account, container, name), 'the handoff copy stays');
    } finally {
      await h.startNode(down);
    }
    const report = await h.run(3, 'replicator');
    assert.equal(report.stats.handoffs_removed, 1);
    assert.equal(h.dataFile('d4', account, container, name), null);
    for (const node of nodes) assert.equal((await h.send(node, { method: 'GET', partition, account, container, object: name, headers: {} })).body.toString(), 'kept');
  });

  it('moves a handoff container db to its primaries and removes it', async () => {
    let name = '';
    for (let i = 0; ; i++) {
      name = `handoff-container-${i}`;
      if (!h.cluster.rings.container.getNodes(account, name).nodes.some((n) => n.device === 'd4')) break;
    }
    const { partition, nodes } = h.cluster.rings.container.getNodes(account, name);
    const d4 = h.cluster.rings.container.devices.find((d) => d.device === 'd4') as RingDevice;
    assert.equal((await h.send(d4, { method: 'PUT', partition, account, container: name, headers: { 'x-timestamp': h.ts(), 'x-container-meta-where': 'handoff' } })).status, 201);
    assert.equal((await h.send(d4, { method: 'PUT', partition, account, container: name, object: 'row', headers: { 'x-timestamp': h.ts(), 'x-size': '3', 'x-content-type': 'text/plain', 'x-etag': 'abc' } })).status, 201);

    const report = await h.run(3, 'replicator');
    assert.equal(report.stats.container_handoffs_removed, 1);
    for (const node of nodes) {
      const res = await h.send(node, { method: 'GET', partition, account, container: name, headers: {}, query: 'format=json' });
      assert.equal(res.status, 200);
      assert.deepEqual(
        (JSON.parse(res.body.toString('utf8')) as { name: string }[]).map((r) => r.name),
        ['row'],
      );
      assert.equal(res.headers['x-container-meta-where'], 'handoff');
    }
    assert.equal(fs.existsSync(dbPath(h.cluster.devicePath('d4'), 'container', partition, hashPathHex(h.cluster.salt, account, name))), false);
  });
});

describe('replicator: tombstones past the reclaim age', () => {
  let h: WorkerCluster;
  let clock = 0;
  const account = 'AUTH_reclaim';
  const container = 'box';

  before(async () => {
    h = await createWorkerCluster({ workers: { now: () => clock, reclaimAge: 3600 } });
    await h.createContainer(account, container);
  });
  after(async () => {
    await h.close();
  });

  it('keeps a young tombstone and reclaims an old one on every replica', async () => {
    clock = Date.now() / 1000;
    await h.putObject(account, container, 'doomed', Buffer.from('x'));
    const { partition, nodes } = h.cluster.rings.object.getNodes(account, container, 'doomed');
    const stamp = h.ts();
    assert.deepEqual(await h.deleteObject(account, container, 'doomed', stamp), [204, 204, 204]);
    const hash = hashPathHex(h.cluster.salt, account, container, 'doomed');
    const dirs = nodes.map((n) => objectDir(h.cluster.devicePath(n.device), partition, hash));

    await h.runAll('replicator');
    for (const dir of dirs) assert.deepEqual(fs.readdirSync(dir), [`${stamp}.ts`]);

    clock = Date.now() / 1000 + 3601;
    const reports = await h.runAll('replicator');
    assert.equal(reports.reduce((n, r) => n + (r.stats.tombstones_reclaimed ?? 0), 0), 3);
    for (const dir of dirs) assert.equal(fs.existsSync(dir), false);
    // No replica brings it back: the suffix hashes agree again.
    const again = await h.runAll('replicator');
    for (const r of again) assert.equal(r.stats.deletes_sent ?? 0, 0);
  });

  it('removes deleted container rows and deleted container dbs past the reclaim age', async () => {
    clock = Date.now() / 1000;
    await h.createContainer(account, 'brief');
    const c = h.cluster.rings.container.getNodes(account, 'brief');
    const stamp = h.ts();
    for (const node of c.nodes) assert.equal((await h.send(node, { method: 'DELETE', partition: c.partition, account, container: 'brief', headers: { 'x-timestamp': stamp } })).status, 204);
    const files = c.nodes.map((n) => dbPath(h.cluster.devicePath(n.device), 'container', c.partition, hashPathHex(h.cluster.salt, account, 'brief')));
    await h.runAll('replicator');
    for (const f of files) assert.ok(fs.existsSync(f));
    clock = Date.now() / 1000 + 3601;
    const reports = await h.runAll('replicator');
    assert.equal(reports.reduce((n, r) => n + (r.stats.container_reclaimed ?? 0), 0), 3);
    for (const f of files) assert.equal(fs.existsSync(f), false);
    // The row of the object deleted in the previous test went too.
    const box = h.cluster.rings.container.getNodes(account, container);
    for (const node of box.nodes) {
      const db = new Database(dbPath(h.cluster.devicePath(node.device), 'container', box.partition, hashPathHex(h.cluster.salt, account, container)), { readonly: true });
      try {
        assert.deepEqual(db.prepare('SELECT name, deleted FROM object ORDER BY name').all(), []);
      } finally {
        db.close();
      }
    }
  });
});

describe('replicator: one node serving three devices (the all-in-one layout)', () => {
  let h: WorkerCluster;
  const account = 'AUTH_aio';
  const container = 'box';

  before(async () => {
    h = await createWorkerCluster({ nodePerDevice: false });
    await h.createContainer(account, container);
  });
  after(async () => {
    await h.close();
  });

  it('restores a removed data file and a quarantined one in one pass', async () => {
    assert.equal(h.workers.length, 1);
    const bodies = { lost: randomBytes(2000), flipped: randomBytes(3000) };
    for (const [name, body] of Object.entries(bodies)) assert.deepEqual(await h.putObject(account, container, name, body), [201, 201, 201]);
    const lostDevice = (h.cluster.rings.object.getNodes(account, container, 'lost').nodes[0] as RingDevice).device;
    fs.unlinkSync(h.dataFile(lostDevice, account, container, 'lost') ?? '');
    const flippedDevice = (h.cluster.rings.object.getNodes(account, container, 'flipped').nodes[1] as RingDevice).device;
    const flippedFile = h.dataFile(flippedDevice, account, container, 'flipped') ?? '';
    const good = fs.readFileSync(flippedFile);
    const bad = Buffer.from(good);
    bad[10] = (bad[10] ?? 0) ^ 1;
    fs.writeFileSync(flippedFile, bad);

    assert.equal((await h.run(0, 'auditor')).stats.quarantined, 1);
    const report = await h.run(0, 'replicator');
    assert.equal(report.stats.objects_sent, 2);
    assert.ok(h.dataFile(lostDevice, account, container, 'lost'));
    assert.deepEqual(fs.readFileSync(h.dataFile(flippedDevice, account, container, 'flipped') ?? ''), good);
  });
});
