import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FakeDriver } from '../virt/fake/fake-driver.js';
import { addBootFixtures, createTestCloud, type TestCloud } from '../test-cloud/testing.js';

// The life of a server across services: compute-api, conductor, scheduler,
// fake agents, placement, network and image, on loopback.

let cloud: TestCloud;
let imageId: string;
let networkId: string;

/** Polls a server until `done` says so (each poll is a real GET, never a sleep-then-assume). */
async function waitFor(id: string, done: (server: Record<string, any>) => boolean, user = cloud.alpha): Promise<Record<string, any>> {
  for (let i = 0; i < 400; i++) {
    const res = await cloud.request('GET', `/servers/${id}`, { user, version: '2.93' });
    if (res.status === 404) return { status: 'DELETED' };
    if (done(res.body.server)) return res.body.server;
    await new Promise((r) => setTimeout(r, 25));
  }
  const last = await cloud.request('GET', `/servers/${id}`, { user });
  throw new Error(`server ${id} never reached the state: ${JSON.stringify(last.body)}`);
}

const active = (s: Record<string, any>): boolean => s.status === 'ACTIVE' || s.status === 'ERROR';

before(async () => {
  cloud = await createTestCloud();
  ({ imageId, networkId } = await addBootFixtures(cloud));
});

after(async () => {
  await cloud.close();
});

async function boot(name: string, extra: Record<string, unknown> = {}, user = cloud.alpha, hints?: Record<string, unknown>): Promise<{ status: number; body: Record<string, any> }> {
  return cloud.request('POST', '/servers', { user, version: '2.93', payload: { server: { name, imageRef: imageId, flavorRef: '1', networks: [{ uuid: networkId }], ...extra }, ...(hints ? { 'os:scheduler_hints': hints } : {}) } });
}

describe('boot and delete', () => {
  test('compute.instance.create.end and delete.end carry Nova’s instance payload', async () => {
    const seen: { event_type: string; payload: Record<string, any> }[] = [];
    const listener = await cloud.bus.onNotification('compute.instance.', (n) => void seen.push(n as { event_type: string; payload: Record<string, any> }));
    try {
      const res = await boot('told');
      const id = res.body.server.id as string;
      await waitFor(id, active);
      assert.equal((await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha })).status, 204);
      await waitFor(id, (s) => s.status === 'DELETED');
      for (let i = 0; i < 200 && !seen.some((n) => n.event_type === 'compute.instance.delete.end' && n.payload.instance_id === id); i++) await new Promise((r) => setTimeout(r, 10));
      const created = seen.find((n) => n.event_type === 'compute.instance.create.end' && n.payload.instance_id === id);
      assert.ok(created, `create.end among ${seen.map((n) => n.event_type).join(', ')}`);
      assert.equal(created.payload.tenant_id, cloud.alpha.projectId);
      assert.equal(created.payload.user_id, cloud.alpha.userId);
      assert.equal(created.payload.display_name, 'told');
      assert.equal(created.payload.instance_type, 'm1.tiny');
      assert.equal(created.payload.memory_mb, 512);
      assert.equal(created.payload.state, 'active');
      assert.match(String(created.payload.host), /^host-/);
      const deleted = seen.find((n) => n.event_type === 'compute.instance.delete.end' && n.payload.instance_id === id);
      assert.ok(deleted, 'delete.end');
      assert.equal(deleted.payload.state, 'deleted');
    } finally {
      await listener.stop();
    }
  });

  test('a full port quota refuses the boot at the API, and max_count shrinks to what fits', async () => {
    const project = cloud.alpha.projectId;
    const ports = await cloud.call('network', 'GET', `/v2.0/quotas/${project}/details`, { user: cloud.admin });
    const used = ports.body.quota.port.used as number;
    const limit = ports.body.quota.port.limit as number;
    const setPorts = async (limit: number): Promise<void> => {
      const res = await cloud.call('network', 'PUT', `/v2.0/quotas/${project}`, { user: cloud.admin, payload: { quota: { port: limit } } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };
    await setPorts(used);
    try {
      const refused = await boot('no-port');
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(refused.body.forbidden.message, 'Maximum number of ports exceeded');
      await setPorts(used + 1);
      const some = await boot('one-of-three', { min_count: 1, max_count: 3, return_reservation_id: true });
      assert.equal(some.status, 202, JSON.stringify(some.body));
      const made = await cloud.request('GET', `/servers?reservation_id=${some.body.reservation_id}`, { user: cloud.alpha, version: '2.93' });
      assert.equal(made.body.servers.length, 1, 'only as many servers as there are ports for');
      const id = made.body.servers[0].id as string;
      await waitFor(id, (s) => s.status !== 'BUILD');
      assert.equal((await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha })).status, 204);
      await waitFor(id, (s) => s.status === 'DELETED');
    } finally {
      await setPorts(limit);
    }
  });

  test('a server reaches ACTIVE on a host with its port address; placement and network hold its resources', async () => {
    const res = await boot('web');
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.ok(res.body.server.adminPass, 'adminPass');
    const server = await waitFor(res.body.server.id, active);
    assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
    assert.equal(server['OS-EXT-STS:power_state'], 1, 'running');
    const addrs = server.addresses.lan as { addr: string; 'OS-EXT-IPS:type': string }[];
    assert.equal(addrs.length, 1, 'one address');
    assert.match(addrs[0]?.addr ?? '', /^10\.1\.0\.\d+$/, 'from the subnet');
    assert.equal(server.flavor.original_name, 'm1.tiny', 'flavor 2.47+ view');
    const ports = await cloud.call('network', 'GET', `/v2.0/ports?device_id=${server.id}`, { user: cloud.admin });
    assert.equal(ports.body.ports.length, 1, 'one port');
    assert.equal(ports.body.ports[0].status, 'ACTIVE', 'the port is bound');
    assert.equal(ports.body.ports[0].device_owner, 'compute:nova', 'device owner');
    const admin = await cloud.request('GET', `/servers/${server.id}`, { user: cloud.admin, version: '2.93' });
    const host = admin.body.server['OS-EXT-SRV-ATTR:host'];
    assert.ok(['host-a', 'host-b'].includes(host), `host ${host}`);
    const usages = await cloud.call('placement', 'GET', `/usages?project_id=${cloud.alpha.projectId}`, { user: cloud.admin, headers: { 'OpenStack-API-Version': 'placement 1.9' } });
    assert.deepEqual(usages.body.usages, { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }, 'placement usage');

    const del = await cloud.request('DELETE', `/servers/${server.id}`, { user: cloud.alpha });
    assert.equal(del.status, 204, JSON.stringify(del.body));
    const gone = await waitFor(server.id, (s) => s.status === 'DELETED');
    assert.equal(gone.status, 'DELETED', 'deleted');
    const after = await cloud.call('placement', 'GET', `/usages?project_id=${cloud.alpha.projectId}`, { user: cloud.admin, headers: { 'OpenStack-API-Version': 'placement 1.9' } });
    assert.deepEqual(after.body.usages, {}, 'placement usage freed');
    const portsAfter = await cloud.call('network', 'GET', `/v2.0/ports?device_id=${server.id}`, { user: cloud.admin });
    assert.equal(portsAfter.body.ports.length, 0, 'port deleted');
  });

  test('bad requests change nothing: unknown flavor, image, network, key', async () => {
    const before = (await cloud.request('GET', '/servers', { user: cloud.alpha })).body.servers.length;
    const flavor = await boot('x', { flavorRef: 'nope' });
    assert.equal(flavor.status, 400, JSON.stringify(flavor.body));
    assert.equal(flavor.body.badRequest.message, 'Flavor nope could not be found.', 'flavor message');
    const image = await boot('x', { imageRef: '11111111-2222-3333-4444-555555555555' });
    assert.equal(image.status, 400, 'unknown image');
    const net = await boot('x', { networks: [{ uuid: '11111111-2222-3333-4444-555555555555' }] });
    assert.equal(net.status, 400, 'unknown network');
    assert.match(net.body.badRequest.message, /Network 11111111-2222-3333-4444-555555555555 could not be found/, 'network message');
    const key = await boot('x', { key_name: 'missing' });
    assert.equal(key.status, 400, 'unknown key');
    const noName = await cloud.request('POST', '/servers', { user: cloud.alpha, payload: { server: { imageRef: imageId, flavorRef: '1' } } });
    assert.equal(noName.status, 400, 'name required');
    const reader = await boot('x', {}, cloud.alphaReader);
    assert.equal(reader.status, 403, 'a reader cannot create');
    assert.equal((await cloud.request('GET', '/servers', { user: cloud.alpha })).body.servers.length, before, 'nothing recorded');
  });
});

describe('actions', () => {
  test('stop, start, reboot, pause, unpause, suspend, resume, lock; resize with confirm and revert', async () => {
    const res = await boot('acts');
    const id = res.body.server.id as string;
    await waitFor(id, active);
    const act = async (body: Record<string, unknown>, expected = 202): Promise<void> => {
      const r = await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, version: '2.93', payload: body });
      assert.equal(r.status, expected, `${Object.keys(body)[0]}: ${JSON.stringify(r.body)}`);
    };
    const settle = (): Promise<Record<string, any>> => waitFor(id, (s) => s['OS-EXT-STS:task_state'] === null);
    await act({ 'os-stop': null });
    assert.equal((await settle()).status, 'SHUTOFF', 'stopped');
    await act({ 'os-stop': null }, 409);
    await act({ 'os-start': null });
    assert.equal((await settle()).status, 'ACTIVE', 'started');
    await act({ reboot: { type: 'HARD' } });
    assert.equal((await settle()).status, 'ACTIVE', 'rebooted');
    await act({ pause: null });
    assert.equal((await settle()).status, 'PAUSED', 'paused');
    await act({ unpause: null });
    assert.equal((await settle()).status, 'ACTIVE', 'unpaused');
    await act({ suspend: null });
    assert.equal((await settle()).status, 'SUSPENDED', 'suspended');
    await act({ resume: null });
    assert.equal((await settle()).status, 'ACTIVE', 'resumed');
    await act({ resize: { flavorRef: '2' } });
    const resized = await settle();
    assert.equal(resized.status, 'VERIFY_RESIZE', 'resized');
    assert.equal(resized.flavor.original_name, 'm1.small', 'new flavor');
    await act({ revertResize: null });
    const reverted = await settle();
    assert.equal(reverted.status, 'ACTIVE', 'reverted');
    assert.equal(reverted.flavor.original_name, 'm1.tiny', 'old flavor back');
    await act({ resize: { flavorRef: '2' } });
    await settle();
    await act({ confirmResize: null }, 204);
    const confirmed = await settle();
    assert.equal(confirmed.status, 'ACTIVE', 'confirmed');
    assert.equal(confirmed.flavor.original_name, 'm1.small', 'new flavor kept');
    const usages = await cloud.call('placement', 'GET', `/usages?project_id=${cloud.alpha.projectId}`, { user: cloud.admin, headers: { 'OpenStack-API-Version': 'placement 1.9' } });
    assert.equal(usages.body.usages.MEMORY_MB, 2048, 'placement holds the new flavor only');
    await act({ lock: null });
    const locked = await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, payload: { 'os-stop': null } });
    assert.equal(locked.status, 409, 'a locked server refuses actions');
    await act({ unlock: null });
    const output = await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, payload: { 'os-getConsoleOutput': { length: 1 } } });
    assert.equal(output.status, 200, JSON.stringify(output.body));
    assert.equal(output.body.output, 'reboot: Restarting system', 'the last line: the hard reboot');
    const actions = await cloud.request('GET', `/servers/${id}/os-instance-actions`, { user: cloud.alpha });
    assert.equal(actions.status, 200, JSON.stringify(actions.body));
    assert.ok(actions.body.instanceActions.some((a: { action: string }) => a.action === 'create'), 'create action recorded');
    assert.equal((await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha })).status, 204, 'deleted');
  });

  test('createImage puts a snapshot in the image service', async () => {
    const res = await boot('snap');
    const id = res.body.server.id as string;
    await waitFor(id, active);
    const snap = await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, version: '2.93', payload: { createImage: { name: 'snap-1' } } });
    assert.equal(snap.status, 202, JSON.stringify(snap.body));
    await waitFor(id, (s) => s['OS-EXT-STS:task_state'] === null);
    const image = await cloud.call('image', 'GET', `/v2/images/${snap.body.image_id}`, { user: cloud.alpha });
    assert.equal(image.body.status, 'active', JSON.stringify(image.body));
    assert.equal(image.body.instance_uuid, id, 'instance_uuid property');
    await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha });
  });

  test('changePassword reaches the guest; OS-DCF:diskConfig AUTO is kept, changed and checked', async () => {
    const res = await boot('pw', { 'OS-DCF:diskConfig': 'AUTO' });
    assert.equal(res.body.server['OS-DCF:diskConfig'], 'AUTO', 'create answers with the asked disk config');
    const id = res.body.server.id as string;
    const server = await waitFor(id, active);
    assert.equal(server['OS-DCF:diskConfig'], 'AUTO');
    const bad = await cloud.request('PUT', `/servers/${id}`, { user: cloud.alpha, version: '2.93', payload: { server: { 'OS-DCF:diskConfig': 'SOMETIMES' } } });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    const updated = await cloud.request('PUT', `/servers/${id}`, { user: cloud.alpha, version: '2.93', payload: { server: { 'OS-DCF:diskConfig': 'MANUAL' } } });
    assert.equal(updated.body.server['OS-DCF:diskConfig'], 'MANUAL');
    const noPass = await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, version: '2.93', payload: { changePassword: {} } });
    assert.equal(noPass.status, 400, 'adminPass is required');
    const changed = await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, version: '2.93', payload: { changePassword: { adminPass: 'n3w-Secret' } } });
    assert.equal(changed.status, 202, JSON.stringify(changed.body));
    await waitFor(id, (s) => s['OS-EXT-STS:task_state'] === null);
    const host = (await cloud.request('GET', `/servers/${id}`, { user: cloud.admin, version: '2.93' })).body.server['OS-EXT-SRV-ATTR:host'];
    const driver = cloud.agents.find((a) => a.host === host)?.driver as FakeDriver;
    assert.ok(driver.calls.some((c) => c.method === 'setAdminPassword' && c.uuid === id), 'the host set the password');
    const events = await cloud.request('GET', `/servers/${id}/os-instance-actions`, { user: cloud.alpha });
    assert.ok(events.body.instanceActions.some((a: { action: string }) => a.action === 'changePassword'), 'the action is recorded');
    await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha });
  });

  test('createBackup keeps the newest `rotation` backups of a type', async () => {
    const res = await boot('backed-up');
    const id = res.body.server.id as string;
    await waitFor(id, active);
    const bad = await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, version: '2.93', payload: { createBackup: { name: 'b', backup_type: 'daily' } } });
    assert.equal(bad.status, 400, 'rotation is required');
    const made: string[] = [];
    for (const name of ['b-1', 'b-2', 'b-3']) {
      const backup = await cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, version: '2.93', payload: { createBackup: { name, backup_type: 'daily', rotation: 2 } } });
      assert.equal(backup.status, 202, JSON.stringify(backup.body));
      made.push(backup.body.image_id as string);
      await waitFor(id, (s) => s['OS-EXT-STS:task_state'] === null);
    }
    const listed = await cloud.call('image', 'GET', `/v2/images?instance_uuid=${id}&image_type=backup&sort_key=created_at&sort_dir=asc`, { user: cloud.alpha });
    assert.deepEqual(listed.body.images.map((i: { name: string }) => i.name), ['b-2', 'b-3'], 'the oldest backup was rotated out');
    assert.equal((await cloud.call('image', 'GET', `/v2/images/${made[0]}`, { user: cloud.alpha })).status, 404, 'b-1 is deleted');
    await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha });
  });
});

describe('scheduling', () => {
  test('anti-affinity spreads over both hosts, a third member gets No valid host', async () => {
    const group = await cloud.compute.db.selectFrom('instance_group').selectAll().execute();
    assert.ok(Array.isArray(group), 'groups readable');
    const uuid = crypto.randomUUID();
    await cloud.compute.db.insertInto('instance_group').values({ uuid, name: 'spread', project_id: cloud.alpha.projectId, user_id: cloud.alpha.userId, policy: 'anti-affinity', rules: '{}', created_at: new Date().toISOString() }).execute();
    const ids: string[] = [];
    for (const name of ['g1', 'g2', 'g3']) {
      const r = await boot(name, {}, cloud.alpha, { group: uuid });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      ids.push(r.body.server.id);
      await waitFor(r.body.server.id, active);
    }
    const views = await Promise.all(ids.map(async (id) => (await cloud.request('GET', `/servers/${id}`, { user: cloud.admin, version: '2.93' })).body.server));
    assert.equal(views[0].status, 'ACTIVE', 'first');
    assert.equal(views[1].status, 'ACTIVE', 'second');
    assert.notEqual(views[0]['OS-EXT-SRV-ATTR:host'], views[1]['OS-EXT-SRV-ATTR:host'], 'distinct hosts');
    assert.equal(views[2].status, 'ERROR', 'third');
    assert.match(views[2].fault.message, /No valid host was found/, 'fault');
    for (const id of ids) await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha });
  });

  test('a failed spawn is rescheduled to the other host', async () => {
    const [a, b] = cloud.agents;
    assert.ok(a && b, 'two agents');
    (a.driver as unknown as { failSpawns: string[] }).failSpawns.push('disk full');
    (b.driver as unknown as { failSpawns: string[] }).failSpawns.push('disk full');
    const res = await boot('retry');
    const server = await waitFor(res.body.server.id, active);
    assert.equal(server.status, 'ERROR', 'both hosts failed: ERROR');
    assert.match(server.fault.message, /disk full/, 'the reason');
    const ports = await cloud.call('network', 'GET', `/v2.0/ports?device_id=${server.id}`, { user: cloud.admin });
    assert.equal(ports.body.ports.length, 0, 'no port left behind');
    (a.driver as unknown as { failSpawns: string[] }).failSpawns.push('once');
    const again = await boot('retry2');
    const ok = await waitFor(again.body.server.id, active);
    assert.equal(ok.status, 'ACTIVE', 'the other host built it');
    for (const agent of [a, b]) (agent.driver as unknown as { failSpawns: string[] }).failSpawns = [];
    for (const id of [server.id, ok.id]) await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha });
  });
});
