import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { EXPIRER_ACCOUNT } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import { expirerContainer, expirerTaskObject } from '../storage/expirer-queue.js';
import { listAsyncPending, readAsyncPending } from '../storage/updates.js';
import { createWorkerCluster, type WorkerCluster } from './cluster.test-util.js';

describe('object expirer', () => {
  let h: WorkerCluster;
  const account = 'AUTH_exp';
  const container = 'box';

  before(async () => {
    h = await createWorkerCluster();
    await h.createContainer(account, container);
  });
  after(async () => {
    await h.close();
  });

  /** PUTs an object that expires at `deleteAt`, queued as the proxy routes it (each object replica tells one queue container replica). */
  async function putExpiring(name: string, deleteAt: number): Promise<void> {
    const queue = expirerContainer(h.cluster.salt, deleteAt, account, container, name);
    const q = h.cluster.rings.container.getNodes(EXPIRER_ACCOUNT, queue);
    const { nodes } = h.cluster.rings.object.getNodes(account, container, name);
    const headersFor = nodes.map((_, i) => {
      const n = q.nodes[i % q.nodes.length] as RingDevice;
      return { 'x-delete-at': String(deleteAt), 'x-delete-at-container': queue, 'x-delete-at-host': `${n.ip}:${n.port}`, 'x-delete-at-device': n.device, 'x-delete-at-partition': String(q.partition) };
    });
    // One PUT per replica with its own queue replica (putObject sends the same headers everywhere, so send them one by one).
    const { partition } = h.cluster.rings.object.getNodes(account, container, name);
    const c = h.cluster.rings.container.getNodes(account, container);
    const stamp = h.ts();
    const statuses = await Promise.all(
      nodes.map((node, i) => {
        const cn = c.nodes[i % c.nodes.length] as RingDevice;
        return h.send(node, {
          method: 'PUT',
          partition,
          account,
          container,
          object: name,
          headers: { 'x-timestamp': stamp, 'content-type': 'text/plain', 'x-container-host': `${cn.ip}:${cn.port}`, 'x-container-partition': String(c.partition), 'x-container-device': cn.device, ...headersFor[i] },
          body: Buffer.from(name),
        });
      }),
    );
    assert.deepEqual(statuses.map((s) => s.status), [201, 201, 201]);
  }

  async function openExpired(name: string): Promise<number[]> {
    const { partition, nodes } = h.cluster.rings.object.getNodes(account, container, name);
    return Promise.all(nodes.map(async (node) => (await h.send(node, { method: 'HEAD', partition, account, container, object: name, headers: { 'x-backend-open-expired': 'true' } })).status));
  }

  async function queueRows(): Promise<string[]> {
    const a = h.cluster.rings.account.getNodes(EXPIRER_ACCOUNT);
    const rows: string[] = [];
    const res = await h.send(a.nodes[0] as RingDevice, { method: 'GET', partition: a.partition, account: EXPIRER_ACCOUNT, headers: {}, query: 'format=json' });
    if (res.status !== 200) return rows;
    for (const c of JSON.parse(res.body.toString()) as { name: string; count: number }[]) {
      const cp = h.cluster.rings.container.getNodes(EXPIRER_ACCOUNT, c.name);
      const list = await h.send(cp.nodes[0] as RingDevice, { method: 'GET', partition: cp.partition, account: EXPIRER_ACCOUNT, container: c.name, headers: {}, query: 'format=json' });
      if (list.status === 200) for (const o of JSON.parse(list.body.toString()) as { name: string }[]) rows.push(o.name);
    }
    return rows;
  }

  it('deletes an object past its X-Delete-At and its queue entry, and leaves one not yet due', async () => {
    const deleteAt = Math.floor(Date.now() / 1000) + 2;
    await putExpiring('soon', deleteAt);
    await putExpiring('later', deleteAt + 86400 * 3);
    await h.cluster.flushAccountReports();
    const task = expirerTaskObject(deleteAt, account, container, 'soon');
    assert.ok((await queueRows()).includes(task));
    assert.deepEqual(await h.listings(account, container), [['later', 'soon'], ['later', 'soon'], ['later', 'soon']]);

    while (Date.now() / 1000 <= deleteAt) await sleep(50);
    assert.equal((await h.getObject(account, container, 'soon')).status, 404, 'an expired object is not served');
    assert.deepEqual(await openExpired('soon'), [200, 200, 200], 'but still on disk before the expirer runs');

    const reports = await h.runAll('expirer');
    assert.equal(reports.reduce((n, r) => n + (r.stats.expired ?? 0), 0), 1);
    assert.deepEqual(await openExpired('soon'), [404, 404, 404]);
    assert.deepEqual(await openExpired('later'), [200, 200, 200]);
    assert.deepEqual(await h.listings(account, container), [['later'], ['later'], ['later']]);
    await h.cluster.flushAccountReports();
    assert.ok(!(await queueRows()).includes(task));
    // The expirer's DELETEs say X-Backend-Clean-Expiring-Object-Queue: no, so the object servers saved no queue cleanup to replay.
    const pending = await Promise.all(h.cluster.nodes.flatMap((n) => n.devices.map(async (d) => Promise.all((await listAsyncPending(h.cluster.devicePath(d))).map((f) => readAsyncPending(f))))));
    assert.deepEqual(pending.flat().filter((r) => r.account === EXPIRER_ACCOUNT), []);

    // A second pass finds nothing to do.
    await h.runAll('updater');
    const again = await h.runAll('expirer');
    assert.equal(again.reduce((n, r) => n + (r.stats.expired ?? 0) + (r.stats.failed ?? 0), 0), 0);
  });

  it('leaves an object that was overwritten without X-Delete-At', async () => {
    const deleteAt = Math.floor(Date.now() / 1000) + 2;
    await putExpiring('kept', deleteAt);
    assert.equal((await h.putObject(account, container, 'kept', Buffer.from('new body'))).filter((s) => s === 201).length, 3);
    await h.cluster.flushAccountReports();
    while (Date.now() / 1000 <= deleteAt) await sleep(50);
    await h.runAll('expirer');
    const read = await h.getObject(account, container, 'kept');
    assert.equal(read.status, 200);
    assert.equal(read.body.toString(), 'new body');
    assert.ok(!(await queueRows()).includes(expirerTaskObject(deleteAt, account, container, 'kept')));
  });
});
