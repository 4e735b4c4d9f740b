import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Notification } from '../../core/bus/index.js';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { SchedulerRpc } from '../rpc.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';
import { messagesOf, scheduleVolume, settled } from './backend-fixtures.test-util.js';

let cloud: TestVolumeCloud;
const drivers = { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) };
const notifications: Notification[] = [];

before(async () => {
  cloud = await createVolumeTestCloud({ drivers });
  await cloud.bus.onNotification('volume.', (n) => void notifications.push(n));
});
after(async () => {
  await cloud.close();
});

test('each backend is a cinder-volume service that reports its pool; the scheduler has its own service row', async () => {
  const rows = await cloud.volume.db.selectFrom('service').selectAll().orderBy('id').execute();
  const byName = Object.fromEntries(rows.map((r) => [`${r.binary} ${r.host}`, r]));
  assert.ok(byName['cinder-scheduler test-host'], 'the scheduler row');
  for (const backend of ['fake-a', 'fake-b']) {
    const row = byName[`cinder-volume test-host@${backend}`];
    assert.ok(row, backend);
    assert.equal(row.availability_zone, 'nova');
    assert.equal(row.disabled, 0);
    assert.ok(row.last_seen_up);
    const report = JSON.parse(row.capabilities ?? '{}');
    assert.equal(report.volume_backend_name, backend);
    assert.equal(report.pools[0].pool_name, backend);
  }
});

test('get_pools lists the pools of the backends that are up, with Cinder capabilities', async () => {
  const pools = await new SchedulerRpc(cloud.bus).getPools();
  assert.deepEqual(pools.map((p) => p.name), ['test-host@fake-a#fake-a', 'test-host@fake-b#fake-b']);
  const a = pools[0]!.capabilities;
  assert.equal(a.volume_backend_name, 'fake-a');
  assert.equal(a.vendor_name, 'Open Source');
  assert.equal(a.storage_protocol, 'NBD');
  assert.equal(a.total_capacity_gb, 1000);
  assert.equal(a.thick_provisioning_support, true);
  assert.match(a.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
});

test('a volume lands on the backend with the most free space, becomes available, and sends volume.create.end', async () => {
  const volume = await scheduleVolume(cloud, { size: 3 });
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'available');
  assert.equal(row.host, 'test-host@fake-a#fake-a');
  assert.equal(row.provider_location, `fake:volume-${volume.id}`);
  assert.ok(row.launched_at);
  assert.deepEqual(JSON.parse(row.scheduling_attempts ?? '[]'), ['test-host@fake-a']);
  assert.equal(drivers['fake-a'].volumes.get(volume.id)?.size, 3);
  for (let i = 0; i < 100 && !notifications.some((n) => n.event_type === 'volume.create.end' && (n.payload as { volume_id: string }).volume_id === volume.id); i++) await new Promise((r) => setTimeout(r, 10));
  const end = notifications.find((n) => n.event_type === 'volume.create.end' && (n.payload as { volume_id: string }).volume_id === volume.id);
  assert.ok(end, 'volume.create.end');
  assert.equal((end.payload as { status: string }).status, 'available');
  assert.equal((end.payload as { tenant_id: string }).tenant_id, cloud.alpha.projectId);
});

test('extra specs choose the backend: volume_backend_name, capabilities: scope, operators; other scopes are ignored', async () => {
  const cases: [Record<string, string>, string][] = [
    [{ volume_backend_name: 'fake-b' }, 'test-host@fake-b#fake-b'],
    [{ 'capabilities:volume_backend_name': '<or> nothing <or> fake-b' }, 'test-host@fake-b#fake-b'],
    [{ volume_backend_name: 'fake-b', multiattach: '<is> True', 'capabilities:total_capacity_gb': '<= 500', 'RESKEY:whatever': 'x', 'provisioning:type': 'thick' }, 'test-host@fake-b#fake-b'],
    [{ 'capabilities:total_capacity_gb': '>= 600', storage_protocol: 'NBD', vendor_name: 'Open Source' }, 'test-host@fake-a#fake-a'],
  ];
  for (const [extra_specs, host] of cases) {
    const volume = await scheduleVolume(cloud, {}, { extra_specs });
    const row = await settled(cloud, volume.id);
    assert.equal(row.status, 'available', JSON.stringify(extra_specs));
    assert.equal(row.host, host, JSON.stringify(extra_specs));
  }
});

test('no backend passes: the volume is error with the "no valid backend" user message (VOLUME_VOLUME_001_003)', async () => {
  const cases: [Parameters<typeof scheduleVolume>[1], Parameters<typeof scheduleVolume>[2]][] = [
    [{}, { extra_specs: { storage_protocol: 'storage_protocol-x', vendor_name: 'vendor_name-x' } }],
    [{ availability_zone: 'elsewhere' }, {}],
    [{}, { extra_specs: { 'RESKEY:availability_zones': 'az1,az2' } }],
    [{ size: 1001 }, {}],
    [{}, { extra_specs: { 'capabilities:total_capacity_gb': '>= many' } }],
  ];
  for (const [values, options] of cases) {
    const volume = await scheduleVolume(cloud, values, options);
    const row = await settled(cloud, volume.id);
    assert.equal(row.status, 'error', JSON.stringify([values, options]));
    assert.equal(row.host, null);
    const messages = await messagesOf(cloud, volume.id);
    assert.equal(messages.length, 1);
    assert.deepEqual({ ...messages[0], request_id: null }, { event_id: 'VOLUME_VOLUME_001_003', action_id: '001', detail_id: '003', project_id: cloud.alpha.projectId, resource_type: 'VOLUME', request_id: null });
    assert.match(String(messages[0]!.request_id), /^req-/);
  }
});

test('capacity decides: a volume larger than fake-b goes to fake-a even when fake-b is asked by a weaker spec', async () => {
  const volume = await scheduleVolume(cloud, { size: 600 }, { extra_specs: { 'capabilities:thick_provisioning_support': '<is> True' } });
  assert.equal((await settled(cloud, volume.id)).host, 'test-host@fake-a#fake-a');
  const tooBig = await scheduleVolume(cloud, { size: 600 }, { extra_specs: { volume_backend_name: 'fake-b' } });
  assert.equal((await settled(cloud, tooBig.id)).status, 'error');
});

test('a volume from a snapshot or a volume stays on its source backend', async () => {
  const volume = await scheduleVolume(cloud, {}, { source_backend: 'test-host@fake-b#fake-b' });
  assert.equal((await settled(cloud, volume.id)).host, 'test-host@fake-b#fake-b');
});

/** The backends in the order the scheduler would try them now (most free first). */
async function preference(): Promise<('fake-a' | 'fake-b')[]> {
  const pools = await new SchedulerRpc(cloud.bus).getPools();
  return pools.sort((x, y) => y.capabilities.free_capacity_gb - x.capabilities.free_capacity_gb).map((p) => p.capabilities.volume_backend_name as 'fake-a' | 'fake-b');
}

test('a failed create is rescheduled to another backend; attempts are recorded', async () => {
  const [first, second] = await preference();
  assert.ok(first && second);
  drivers[first].failNext('createVolume', `${first} cannot`);
  const volume = await scheduleVolume(cloud);
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'available');
  assert.equal(row.host, `test-host@${second}#${second}`);
  assert.deepEqual(JSON.parse(row.scheduling_attempts ?? '[]'), [`test-host@${first}`, `test-host@${second}`]);
  assert.equal(drivers[first].volumes.has(volume.id), false, 'nothing is left on the failed backend');
});

test('when every backend fails, the volume is error with the no-valid-backend message after the attempts', async () => {
  const order = await preference();
  drivers['fake-a'].failNext('createVolume');
  drivers['fake-b'].failNext('createVolume');
  const volume = await scheduleVolume(cloud);
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'error');
  assert.deepEqual(JSON.parse(row.scheduling_attempts ?? '[]'), order.map((b) => `test-host@${b}`));
  assert.deepEqual((await messagesOf(cloud, volume.id)).map((m) => m.event_id), ['VOLUME_VOLUME_001_003']);
  assert.equal(drivers['fake-a'].volumes.has(volume.id) || drivers['fake-b'].volumes.has(volume.id), false);
});

test('max_attempts bounds the reschedules', async () => {
  const small = await createVolumeTestCloud({ overrides: { 'volume.max_attempts': 1 } });
  try {
    const driver = small.agents.agents[0]!.driver as FakeVolumeDriver;
    driver.failNext('createVolume');
    const volume = await scheduleVolume(small);
    const row = await settled(small, volume.id);
    assert.equal(row.status, 'error');
    assert.equal(JSON.parse(row.scheduling_attempts ?? '[]').length, 1);
  } finally {
    await small.close();
  }
});

test('a burst of creates spreads over the backends: the scheduler counts what it placed before the backends report it', async () => {
  const fresh = { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) };
  const burst = await createVolumeTestCloud({ drivers: fresh });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  for (const d of Object.values(fresh)) d.hooks.createVolume = () => gate;
  try {
    const volumes = await Promise.all(Array.from({ length: 8 }, () => scheduleVolume(burst, { size: 100 })));
    const hosts = new Map<string, number>();
    for (const v of volumes) {
      let row = await burst.volume.db.selectFrom('volume').select('host').where('id', '=', v.id).executeTakeFirstOrThrow();
      for (let i = 0; i < 200 && row.host === null; i++) {
        await new Promise((r) => setTimeout(r, 10));
        row = await burst.volume.db.selectFrom('volume').select('host').where('id', '=', v.id).executeTakeFirstOrThrow();
      }
      hosts.set(String(row.host), (hosts.get(String(row.host)) ?? 0) + 1);
    }
    // 1000 and 500 GiB free: fake-a takes volumes until both are level (ties go by name), then they alternate.
    assert.deepEqual(Object.fromEntries(hosts), { 'test-host@fake-a#fake-a': 7, 'test-host@fake-b#fake-b': 1 });
    release();
    for (const v of volumes) assert.equal((await settled(burst, v.id)).status, 'available');
    for (const a of burst.agents.agents) await a.idle();
    const pools = await new SchedulerRpc(burst.bus).getPools();
    assert.deepEqual(pools.map((p) => p.capabilities.free_capacity_gb), [300, 400], 'the reports now hold what the claims held');
  } finally {
    release();
    await burst.close();
  }
});

test('find_backend answers a pool that fits, or null', async () => {
  const rpc = new SchedulerRpc(cloud.bus);
  const type = { id: 'x', name: 'x', extra_specs: {} };
  assert.equal(await rpc.findBackend({ size: 10, availability_zone: 'nova', volume_type: type, ignore_backends: ['test-host@fake-a'] }), 'test-host@fake-b#fake-b');
  assert.equal(await rpc.findBackend({ size: 10, availability_zone: 'nova', volume_type: { ...type, extra_specs: { volume_backend_name: 'nope' } }, ignore_backends: [] }), null);
});

test('a disabled or silent backend takes no volumes', async () => {
  for (const a of cloud.agents.agents) await a.idle();
  await cloud.volume.db.updateTable('service').set({ disabled: 1 }).where('host', '=', 'test-host@fake-a').execute();
  await cloud.volume.db.updateTable('service').set({ last_seen_up: '2000-01-01T00:00:00.000Z' }).where('host', '=', 'test-host@fake-b').execute();
  try {
    assert.deepEqual(await new SchedulerRpc(cloud.bus).getPools(), []);
    const volume = await scheduleVolume(cloud);
    assert.equal((await settled(cloud, volume.id)).status, 'error');
  } finally {
    await cloud.volume.db.updateTable('service').set({ disabled: 0, last_seen_up: new Date().toISOString() }).where('binary', '=', 'cinder-volume').execute();
  }
});
