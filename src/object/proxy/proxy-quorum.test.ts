import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, encodePath, type ObjectTestCloud } from '../testing.js';

/** Sends the start of a body and then drops the connection, as a client killed mid-upload. */
async function abortedPut(cloud: ObjectTestCloud, path: string, headers: Record<string, string>, chunk: Buffer): Promise<void> {
  const url = new URL(cloud.url);
  await new Promise<void>((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, method: 'PUT', path: encodePath(path), headers: { 'x-auth-token': cloud.alpha.token, ...headers }, agent: false });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      resolve();
    });
    req.write(chunk, () => {
      // Give the proxy time to pass the bytes on, then vanish.
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
  });
}

describe('object proxy: quorum and failures', () => {
  let cloud: ObjectTestCloud;
  let c: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    c = `${cloud.account(cloud.alpha)}/quorum`;
    assert.equal((await cloud.request('PUT', c)).status, 201);
  });
  after(async () => {
    await cloud.close();
  });

  it('writes and reads with one of three storage nodes stopped', async () => {
    await cloud.cluster.stopNode(0);
    try {
      assert.equal((await cloud.request('PUT', `${cloud.account(cloud.alpha)}/while-down`)).status, 201);
      for (let i = 0; i < 8; i++) {
        const put = await cloud.request('PUT', `${c}/o${i}`, { body: `data ${i}` });
        assert.equal(put.status, 201, `PUT o${i}`);
      }
      for (let i = 0; i < 8; i++) assert.equal((await cloud.request('GET', `${c}/o${i}`)).text, `data ${i}`);
      assert.equal((await cloud.request('HEAD', c)).status, 204);
      const listing = await cloud.request('GET', c, { query: 'format=json' });
      assert.equal(listing.status, 200);
      assert.equal((await cloud.request('POST', `${c}/o1`, { headers: { 'x-object-meta-k': 'v' } })).status, 202);
      assert.equal((await cloud.request('DELETE', `${c}/o2`)).status, 204);
      assert.equal((await cloud.request('GET', `${c}/o2`)).status, 404);
    } finally {
      await cloud.cluster.startNode(0);
    }
    for (let i = 0; i < 8; i++) if (i !== 2) assert.equal((await cloud.request('GET', `${c}/o${i}`)).text, `data ${i}`);
  });

  it('refuses writes without a quorum', async () => {
    await cloud.cluster.stopNode(0);
    await cloud.cluster.stopNode(1);
    try {
      assert.equal((await cloud.request('PUT', `${c}/no-quorum`, { body: 'x' })).status, 503);
    } finally {
      await cloud.cluster.startNode(0);
      await cloud.cluster.startNode(1);
    }
    // As in Swift, the one replica that took the data keeps it: a failed PUT is not rolled back.
  });

  it('keeps nothing of a PUT whose client went away mid-body', async () => {
    await abortedPut(cloud, `${c}/partial-length`, { 'content-length': String(1024 * 1024) }, Buffer.alloc(200 * 1024, 'x'));
    await abortedPut(cloud, `${c}/partial-chunked`, { 'transfer-encoding': 'chunked' }, Buffer.alloc(200 * 1024, 'y'));
    for (const name of ['partial-length', 'partial-chunked']) {
      assert.equal((await cloud.request('HEAD', `${c}/${name}`)).status, 404, name);
    }
    const listing = await cloud.request('GET', c, { query: 'format=json&prefix=partial' });
    assert.deepEqual(listing.json(), []);
    // The proxy still serves requests afterwards.
    assert.equal((await cloud.request('PUT', `${c}/after-abort`, { body: 'ok' })).status, 201);
  });
});

describe('object proxy: handoffs', () => {
  let cloud: ObjectTestCloud;

  before(async () => {
    cloud = await createObjectTestCloud({ devices: 4 });
  });
  after(async () => {
    await cloud.close();
  });

  it('writes to a handoff when a primary is down and reads it back', async () => {
    const a = cloud.account(cloud.alpha);
    assert.equal((await cloud.request('PUT', `${a}/h`)).status, 201);
    const acct = a.slice('/v1/'.length);
    const { nodes } = cloud.cluster.rings.object.getNodes(acct, 'h', 'obj');
    const down = cloud.cluster.nodeOf(nodes[0]?.device ?? '');
    await cloud.cluster.stopNode(down.index);
    try {
      const body = Buffer.alloc(300 * 1024, 'h');
      assert.equal((await cloud.request('PUT', `${a}/h/obj`, { body })).status, 201);
      const primaries = nodes.slice(1);
      const { partition } = cloud.cluster.rings.object.getNodes(acct, 'h', 'obj');
      const handoff = cloud.cluster.rings.object.getMoreNodes(partition)[0];
      assert.ok(handoff);
      let copies = 0;
      for (const node of [...primaries, handoff]) {
        const res = await cloud.cluster.client.request(node, { method: 'HEAD', device: node.device, partition, account: acct, container: 'h', object: 'obj', headers: {} });
        res.body.resume();
        if (res.status === 200) copies++;
      }
      assert.equal(copies, 3);
      assert.deepEqual((await cloud.request('GET', `${a}/h/obj`)).body, body);
    } finally {
      await cloud.cluster.startNode(down.index);
    }
  });
});
