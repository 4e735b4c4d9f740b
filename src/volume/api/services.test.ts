import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { clearVolumes, insertSnapshot, insertVolume } from '../catalog-fixtures.test-util.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud();
  // The agents report as they start; wait for both backends' rows.
  for (let i = 0; i < 500; i++) {
    const rows = await cloud.volume.db.selectFrom('service').select('host').where('binary', '=', 'cinder-volume').execute();
    if (rows.length >= 2) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});
after(async () => {
  await cloud.close();
});

test('os-services lists the volume services with state, zone and the extended fields; filters by host and binary', async () => {
  const res = await cloud.request('GET', '/os-services');
  assert.equal(res.status, 200);
  const volumes = res.body.services.filter((s: any) => s.binary === 'cinder-volume');
  assert.deepEqual(volumes.map((s: any) => s.host).sort(), ['test-host@fake-a', 'test-host@fake-b']);
  const a = volumes.find((s: any) => s.host === 'test-host@fake-a');
  assert.deepEqual(Object.keys(a).sort(), ['active_backend_id', 'binary', 'disabled_reason', 'frozen', 'host', 'replication_status', 'state', 'status', 'updated_at', 'zone']);
  assert.equal(a.state, 'up');
  assert.equal(a.status, 'enabled');
  assert.equal(a.zone, 'nova');
  assert.equal(a.frozen, false);
  assert.match(a.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  const byHost = await cloud.request('GET', '/os-services?host=test-host&binary=cinder-volume');
  assert.equal(byHost.body.services.length, 2, 'a bare host matches its backends');
  const byBackend = await cloud.request('GET', '/os-services?host=test-host@fake-b');
  assert.deepEqual(byBackend.body.services.map((s: any) => s.host), ['test-host@fake-b']);
  assert.deepEqual((await cloud.request('GET', '/os-services?binary=nothing')).body.services, []);
  const v349 = await cloud.request('GET', '/os-services?binary=cinder-volume', { version: '3.49' });
  assert.equal(v349.body.services[0].backend_state, 'up');
  assert.equal(v349.body.services[0].cluster, null);
  assert.equal((await cloud.request('GET', '/os-services', { user: cloud.alpha })).status, 403);
});

test('a service without a heartbeat for service_down_time is down', async () => {
  const old = new Date(Date.now() - (cloud.config.volume.service_down_time + 5) * 1000).toISOString();
  await cloud.volume.db
    .insertInto('service')
    .values({ id: 999, host: 'gone-host@x', binary: 'cinder-volume', topic: 'cinder-volume', availability_zone: 'far', disabled: 0, disabled_reason: null, frozen: 0, capabilities: null, last_seen_up: old, report_count: 1, created_at: old, updated_at: old })
    .execute();
  try {
    const res = await cloud.request('GET', '/os-services?host=gone-host');
    assert.equal(res.body.services[0].state, 'down');
    const hosts = await cloud.request('GET', '/os-hosts?zone=far');
    assert.deepEqual(hosts.body.hosts, [{ host_name: 'gone-host@x', service: 'cinder-volume', zone: 'far', 'service-status': 'unavailable', 'service-state': 'enabled', 'last-update': res.body.services[0].updated_at }]);
  } finally {
    await cloud.volume.db.deleteFrom('service').where('id', '=', 999).execute();
  }
});

test('disable with a reason, enable; 404 for an unknown host or binary; 400 for bad bodies', async () => {
  const disable = await cloud.request('PUT', '/os-services/disable-log-reason', { payload: { host: 'test-host@fake-b', binary: 'cinder-volume', disabled_reason: 'maintenance' } });
  assert.equal(disable.status, 200, JSON.stringify(disable.body));
  assert.deepEqual(disable.body, { disabled: true, status: 'disabled', host: 'test-host@fake-b', service: '', binary: 'cinder-volume', disabled_reason: 'maintenance' });
  const listed = (await cloud.request('GET', '/os-services?host=test-host@fake-b')).body.services[0];
  assert.equal(listed.status, 'disabled');
  assert.equal(listed.disabled_reason, 'maintenance');
  // The zone stays available while one of its services is enabled.
  assert.deepEqual((await cloud.request('GET', '/os-availability-zone', { user: cloud.alpha })).body, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true } }] });
  const enable = await cloud.request('PUT', '/os-services/enable', { payload: { host: 'test-host@fake-b', binary: 'cinder-volume' } });
  assert.deepEqual(enable.body, { disabled: false, status: 'enabled', host: 'test-host@fake-b', service: '', binary: 'cinder-volume', disabled_reason: null });
  const plain = await cloud.request('PUT', '/os-services/disable', { payload: { host: 'test-host@fake-b', service: 'cinder-volume' } });
  assert.deepEqual(plain.body, { disabled: true, status: 'disabled', host: 'test-host@fake-b', service: 'cinder-volume', binary: '' });
  await cloud.request('PUT', '/os-services/enable', { payload: { host: 'test-host@fake-b', binary: 'cinder-volume' } });

  const unknownHost = await cloud.request('PUT', '/os-services/enable', { payload: { host: 'invalid_host', binary: 'cinder-volume' } });
  assert.equal(unknownHost.status, 404);
  assert.equal(unknownHost.body.itemNotFound.message, 'Service cinder-volume could not be found on host invalid_host.');
  assert.equal((await cloud.request('PUT', '/os-services/disable', { payload: { host: 'test-host@fake-a', binary: 'invalid_binary' } })).status, 404);
  assert.equal((await cloud.request('PUT', '/os-services/disable-log-reason', { payload: { host: 'test-host@fake-a', binary: 'cinder-volume', disabled_reason: null } })).status, 400);
  assert.equal((await cloud.request('PUT', '/os-services/disable', { payload: { host: 'test-host@fake-a' } })).status, 400);
  assert.equal((await cloud.request('PUT', '/os-services/disable', { payload: { binary: 'cinder-volume' } })).body.badRequest.message, 'Invalid input received: Host field is missing.');
  assert.equal((await cloud.request('PUT', '/os-services/explode', { payload: {} })).body.badRequest.message, 'Invalid input received: Unknown action');
  assert.equal((await cloud.request('PUT', '/os-services/enable', { user: cloud.alpha, payload: { host: 'test-host@fake-a', binary: 'cinder-volume' } })).status, 403);
  const after = (await cloud.request('GET', '/os-services?binary=cinder-volume')).body.services;
  assert.ok(after.every((s: any) => s.status === 'enabled'), 'refused requests changed nothing');
});

test('freeze and thaw a host: frozen and disabled, then back; 400 for an unknown host or a repeat', async () => {
  const freeze = await cloud.request('PUT', '/os-services/freeze', { payload: { host: 'test-host@fake-a' } });
  assert.equal(freeze.status, 200);
  const frozen = (await cloud.request('GET', '/os-services?host=test-host@fake-a')).body.services[0];
  assert.equal(frozen.frozen, true);
  assert.equal(frozen.status, 'disabled');
  assert.equal(frozen.disabled_reason, 'frozen');
  assert.equal((await cloud.request('PUT', '/os-services/freeze', { payload: { host: 'test-host@fake-a' } })).status, 400);
  assert.equal((await cloud.request('PUT', '/os-services/thaw', { payload: { host: 'test-host@fake-a' } })).status, 200);
  const thawed = (await cloud.request('GET', '/os-services?host=test-host@fake-a')).body.services[0];
  assert.equal(thawed.frozen, false);
  assert.equal(thawed.status, 'enabled');
  assert.equal((await cloud.request('PUT', '/os-services/thaw', { payload: { host: 'test-host@fake-a' } })).status, 400);
  const invalid = await cloud.request('PUT', '/os-services/freeze', { payload: { host: 'invalid_host' } });
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body.badRequest.message, 'Invalid input received: No service found with host=invalid_host');
  assert.equal((await cloud.request('PUT', '/os-services/thaw', { payload: { host: 'invalid_host' } })).status, 400);
  assert.equal((await cloud.request('PUT', '/os-services/failover_host', { payload: { host: 'test-host@fake-a' } })).status, 400);
  assert.equal((await cloud.request('PUT', '/os-services/set-log', { version: '3.32', payload: { level: 'DEBUG' } })).status, 501);
});

test('os-hosts: enabled services; a volume host shows usage per project', async () => {
  const list = await cloud.request('GET', '/os-hosts');
  assert.equal(list.status, 200);
  const names = list.body.hosts.filter((h: any) => h.service === 'cinder-volume').map((h: any) => h.host_name).sort();
  assert.deepEqual(names, ['test-host@fake-a', 'test-host@fake-b']);
  const v = await insertVolume(cloud, { project_id: cloud.alpha.projectId, size: 3, host: 'test-host@fake-a#fake-a' });
  await insertSnapshot(cloud, v);
  await insertVolume(cloud, { project_id: cloud.beta.projectId, size: 2, host: 'test-host@fake-a#fake-a' });
  await insertVolume(cloud, { project_id: cloud.beta.projectId, size: 9, host: 'test-host@fake-b#fake-b' });
  try {
    const show = await cloud.request('GET', '/os-hosts/test-host@fake-a');
    assert.equal(show.status, 200);
    const byProject = Object.fromEntries(show.body.host.map((r: any) => [r.resource.project, r.resource]));
    assert.deepEqual(byProject['(total)'], { host: 'test-host@fake-a', project: '(total)', volume_count: '2', total_volume_gb: '5', snapshot_count: '1', total_snapshot_gb: '3' });
    assert.deepEqual(byProject[cloud.alpha.projectId], { host: 'test-host@fake-a', project: cloud.alpha.projectId, volume_count: '1', total_volume_gb: '3', snapshot_count: '1', total_snapshot_gb: '3' });
    assert.equal(byProject[cloud.beta.projectId].total_volume_gb, '2');
  } finally {
    await clearVolumes(cloud);
  }
  assert.equal((await cloud.request('GET', '/os-hosts/nowhere')).status, 404);
  assert.equal((await cloud.request('GET', '/os-hosts', { user: cloud.alpha })).status, 403);
  assert.equal((await cloud.request('PUT', '/os-hosts/test-host@fake-a', { payload: { status: 'disable' } })).status, 501);
  assert.equal((await cloud.request('PUT', '/os-hosts/test-host@fake-a', { payload: { status: 'sideways' } })).status, 400);
});

test('scheduler-stats get_pools (names, detail, filters) and backend capabilities', async () => {
  const names = await cloud.request('GET', '/scheduler-stats/get_pools');
  assert.equal(names.status, 200);
  assert.deepEqual(names.body.pools.map((p: any) => Object.keys(p)), [['name'], ['name']]);
  const detail = await cloud.request('GET', '/scheduler-stats/get_pools?detail=True');
  const pool = detail.body.pools[0];
  assert.equal(typeof pool.capabilities.total_capacity_gb, 'number');
  assert.equal(pool.capabilities.volume_backend_name, 'fake-a');
  const byName = await cloud.request('GET', `/scheduler-stats/get_pools?name=${encodeURIComponent(pool.name)}`, { version: '3.28' });
  assert.deepEqual(byName.body.pools.map((p: any) => p.name), [pool.name]);
  const ignored = await cloud.request('GET', `/scheduler-stats/get_pools?name=${encodeURIComponent(pool.name)}`);
  assert.equal(ignored.body.pools.length, 2, 'before 3.28 the filters are ignored');
  const type = await cloud.request('POST', '/types', { payload: { volume_type: { name: 'only-b', extra_specs: { volume_backend_name: 'fake-b' } } } });
  const byType = await cloud.request('GET', `/scheduler-stats/get_pools?volume_type=${type.body.volume_type.id}`, { version: '3.35' });
  assert.deepEqual(byType.body.pools.map((p: any) => p.name.split('#')[0]), ['test-host@fake-b']);
  assert.equal((await cloud.request('GET', '/scheduler-stats/get_pools?bogus=1', { version: '3.31' })).status, 400);
  assert.equal((await cloud.request('GET', '/scheduler-stats/get_pools', { user: cloud.alpha })).status, 403);

  const caps = await cloud.request('GET', `/capabilities/${encodeURIComponent('test-host@fake-a')}`);
  assert.equal(caps.status, 200, JSON.stringify(caps.body));
  assert.equal(caps.body.namespace, 'OS::Storage::Capabilities::test-host@fake-a');
  assert.equal(caps.body.volume_backend_name, pool.capabilities.volume_backend_name);
  assert.equal(caps.body.vendor_name, pool.capabilities.vendor_name);
  assert.equal(caps.body.storage_protocol, pool.capabilities.storage_protocol);
  assert.deepEqual(caps.body.replication_targets, []);
  assert.equal(caps.body.properties.thin_provisioning.type, 'boolean');
  assert.equal((await cloud.request('GET', '/capabilities/nowhere')).status, 404);
  assert.equal((await cloud.request('GET', '/capabilities/test-host@fake-a', { user: cloud.alpha })).status, 403);
});
