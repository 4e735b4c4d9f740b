import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import { createStorageCluster, type StorageCluster } from './testing.js';

/** Tries to listen on a loopback port: the server when it got it, else the error code. */
function grab(port: number): Promise<net.Server | string> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('storage test cluster', () => {
  let cluster: StorageCluster;
  before(async () => {
    cluster = await createStorageCluster({ devices: 1, replicas: 1 });
  });
  after(async () => {
    await cluster.close();
  });

  it("keeps a stopped node's ports, so that it restarts on them whatever else opens sockets", async () => {
    const { partition, nodes } = cluster.rings.account.getNodes('AUTH_x');
    const device = nodes[0] as RingDevice;
    const head = async (): Promise<number> => {
      const res = await cluster.request('account', device, { method: 'HEAD', partition, account: 'AUTH_x', headers: {} });
      res.body.resume();
      return res.status;
    };
    assert.equal(await head(), 404);
    const ports = { ...(cluster.nodes[0]?.ports ?? { object: 0, container: 0, account: 0 }) };

    await cluster.stopNode(0);
    await assert.rejects(head(), 'a stopped node does not answer');
    // Another socket of the machine asks for the freed ports: they are not free.
    const grabbed = await Promise.all(Object.values(ports).map((p) => grab(p)));
    try {
      assert.deepEqual(
        grabbed.map((g) => (typeof g === 'string' ? g : 'taken')),
        ['EADDRINUSE', 'EADDRINUSE', 'EADDRINUSE'],
      );
      await cluster.startNode(0);
    } finally {
      for (const g of grabbed) if (typeof g !== 'string') g.close();
    }
    assert.deepEqual(cluster.nodes[0]?.ports, ports);
    const put = await cluster.request('account', device, { method: 'PUT', partition, account: 'AUTH_x', headers: { 'x-timestamp': Timestamp.now().internal } });
    put.body.resume();
    assert.equal(put.status, 201);
    assert.equal(await head(), 204);
  });
});
