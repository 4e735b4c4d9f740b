import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addBootFixtures, createTestCloud, type TestCloud } from '../test-cloud/testing.js';
import type { FakeDriver } from '../virt/fake/fake-driver.js';

// What an agent does when its driver reports a guest changed by itself
// (the fake driver's simulated lifecycle events), seen through the API.

let cloud: TestCloud;
let imageId: string;
let networkId: string;

before(async () => {
  cloud = await createTestCloud({ hosts: ['life-host'] });
  ({ imageId, networkId } = await addBootFixtures(cloud));
});

after(async () => {
  await cloud.close();
});

type Server = { status: string; 'OS-EXT-STS:power_state': number; 'OS-EXT-STS:task_state': string | null };

async function waitFor(id: string, done: (s: Server) => boolean): Promise<Server> {
  let server: Server | null = null;
  for (let i = 0; i < 400; i++) {
    const res = await cloud.request('GET', `/servers/${id}`, { user: cloud.admin, version: '2.93' });
    server = res.body.server as Server;
    if (done(server)) return server;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`server ${id} never reached the state: ${JSON.stringify(server)}`);
}

function driver(): FakeDriver {
  const agent = cloud.agents[0];
  assert.ok(agent);
  return agent.driver as FakeDriver;
}

test('a guest that shuts down by itself makes its server SHUTOFF; a stopped server whose guest runs is stopped again; a pause is only recorded', async () => {
  const res = await cloud.request('POST', '/servers', { user: cloud.alpha, version: '2.93', payload: { server: { name: 'life', imageRef: imageId, flavorRef: '1', networks: [{ uuid: networkId }] } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const id = res.body.server.id as string;
  await waitFor(id, (s) => s.status === 'ACTIVE');

  driver().simulateLifecycle(id, 3);
  const paused = await waitFor(id, (s) => s['OS-EXT-STS:power_state'] === 3);
  assert.equal(paused.status, 'ACTIVE', 'QEMU pausing a guest does not change what the user asked for');
  driver().simulateLifecycle(id, 1);
  await waitFor(id, (s) => s['OS-EXT-STS:power_state'] === 1);

  driver().simulateLifecycle(id, 4);
  const stopped = await waitFor(id, (s) => s.status === 'SHUTOFF');
  assert.equal(stopped['OS-EXT-STS:power_state'], 4);

  driver().simulateLifecycle(id, 1);
  await waitFor(id, (s) => s['OS-EXT-STS:power_state'] === 4 && driver().calls.some((c) => c.method === 'powerOff' && c.uuid === id));
  assert.equal(driver().powerState(id), 4, 'the guest was powered off again');
  assert.equal((await waitFor(id, () => true)).status, 'SHUTOFF');

  assert.equal((await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha })).status, 204);
});
