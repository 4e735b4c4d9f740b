import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createFlowCloud, hostOf, type FlowCloud } from './cloud-flows.test-util.js';

// Cold migration, cross-host resize (confirm, revert) and live migration
// through compute-api, conductor, scheduler and the agents of two hosts,
// with placement and the migration records checked at each step.

let f: FlowCloud;

before(async () => {
  f = await createFlowCloud({ hosts: ['host-a', 'host-b'] });
});

after(async () => {
  await f.close();
});

const other = (host: string | null): string => (host === 'host-a' ? 'host-b' : 'host-a');

async function migrationsOf(id: string): Promise<Record<string, any>[]> {
  const res = await f.cloud.request('GET', `/os-migrations?instance_uuid=${id}`, { user: f.cloud.admin, version: '2.80' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.migrations;
}

/** Providers holding allocations for a consumer (host names). */
async function claimedOn(consumer: string): Promise<string[]> {
  const allocations = await f.allocations(consumer);
  const hosts: string[] = [];
  for (const host of ['host-a', 'host-b']) if (allocations[await f.providerOf(host)]) hosts.push(host);
  return hosts;
}

async function setComputeEnabled(host: string, enabled: boolean): Promise<void> {
  const list = await f.cloud.request('GET', `/os-services?binary=nova-compute&host=${host}`, { user: f.cloud.admin, version: '2.53' });
  const service = list.body.services[0];
  const res = await f.cloud.request('PUT', `/os-services/${service.id}`, { user: f.cloud.admin, version: '2.53', payload: { status: enabled ? 'enabled' : 'disabled' } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

describe('cold migration', () => {
  test('migrate moves the server to the other host; the source usage waits on the migration until confirm', async () => {
    const id = await f.boot('mover');
    const source = hostOf(await f.settle(id)) as string;
    const member = await f.act(id, { migrate: null });
    assert.equal(member.status, 403, 'migrate is for admins');
    const res = await f.act(id, { migrate: null }, { user: f.cloud.admin });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const moved = await f.settle(id);
    assert.equal(moved.status, 'VERIFY_RESIZE', JSON.stringify(moved.fault));
    assert.equal(hostOf(moved), other(source), 'on the other host');
    const [migration] = await migrationsOf(id);
    assert.equal(migration?.migration_type, 'migration', 'a cold migration');
    assert.equal(migration?.status, 'finished', 'finished, waiting for confirm');
    assert.equal(migration?.source_compute, source, 'from');
    assert.equal(migration?.dest_compute, other(source), 'to');
    assert.deepEqual(await claimedOn(id), [other(source)], 'the server claims the destination');
    assert.deepEqual(await claimedOn(migration?.uuid), [source], 'the migration holds the source');
    const ports = await f.cloud.call('network', 'GET', `/v2.0/ports?device_id=${id}`, { user: f.cloud.admin });
    assert.equal(ports.body.ports[0]['binding:host_id'], other(source), 'the port follows');

    const confirm = await f.act(id, { confirmResize: null });
    assert.equal(confirm.status, 204, JSON.stringify(confirm.body));
    const done = await f.settle(id);
    assert.equal(done.status, 'ACTIVE', 'confirmed');
    assert.equal((await migrationsOf(id))[0]?.status, 'confirmed', 'migration confirmed');
    assert.deepEqual(await claimedOn(migration?.uuid), [], 'the source usage is freed');
    assert.deepEqual(await claimedOn(id), [other(source)], 'the server keeps the destination');
    const again = await f.act(id, { confirmResize: null });
    assert.equal(again.status, 409, 'nothing to confirm: not in VERIFY_RESIZE');
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });

  test('2.56 host: the same host or an unknown one is a 400; a named host is honoured', async () => {
    const id = await f.boot('targeted');
    const source = hostOf(await f.settle(id)) as string;
    const same = await f.act(id, { migrate: { host: source } }, { user: f.cloud.admin, version: '2.56' });
    assert.equal(same.status, 400, JSON.stringify(same.body));
    assert.equal(same.body.badRequest.message, 'Cannot migrate to the host where the server exists.');
    const unknown = await f.act(id, { migrate: { host: 'nohost' } }, { user: f.cloud.admin, version: '2.56' });
    assert.equal(unknown.status, 400, 'unknown host');
    assert.equal(unknown.body.badRequest.message, 'Compute host nohost could not be found.');
    const extra = await f.act(id, { migrate: { host: other(source), x: 1 } }, { user: f.cloud.admin, version: '2.56' });
    assert.equal(extra.status, 400, 'unknown member');
    const res = await f.act(id, { migrate: { host: other(source) } }, { user: f.cloud.admin, version: '2.56' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const moved = await f.settle(id);
    assert.equal(hostOf(moved), other(source), 'on the named host');
    assert.equal((await f.act(id, { confirmResize: null })).status, 204);
    await f.settle(id);
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });

  test('no other host enabled: the server stays ACTIVE where it was, the migration is error, its usage is its own again', async () => {
    const id = await f.boot('stuck');
    const source = hostOf(await f.settle(id)) as string;
    await setComputeEnabled(other(source), false);
    try {
      const res = await f.act(id, { migrate: null }, { user: f.cloud.admin });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const server = await f.settle(id);
      assert.equal(server.status, 'ACTIVE', 'back to ACTIVE');
      assert.equal(hostOf(server), source, 'where it was');
      const actions = await f.cloud.request('GET', `/servers/${id}/os-instance-actions`, { user: f.cloud.admin, version: '2.84' });
      const migrate = (actions.body.instanceActions as { action: string; request_id: string; message: string | null }[]).find((a) => a.action === 'migrate');
      assert.equal(migrate?.message, 'Error', 'the action failed');
      const detail = await f.cloud.request('GET', `/servers/${id}/os-instance-actions/${migrate?.request_id}`, { user: f.cloud.admin, version: '2.84' });
      const event = (detail.body.instanceAction.events as { event: string; result: string; details: string }[]).find((e) => e.event === 'conductor_migrate_server');
      assert.equal(event?.result, 'Error', JSON.stringify(detail.body));
      assert.match(event?.details ?? '', /No valid host was found/, 'the event says why');
      const [migration] = await migrationsOf(id);
      assert.equal(migration?.status, 'error', 'migration error');
      assert.deepEqual(await claimedOn(id), [source], 'the server claims its host again');
      assert.deepEqual(await claimedOn(migration?.uuid), [], 'the migration holds nothing');
    } finally {
      await setComputeEnabled(other(source), true);
    }
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });
});

describe('cross-host resize', () => {
  test('revert goes back to the source host with the old flavor and frees the destination', async () => {
    const id = await f.boot('grow');
    const source = hostOf(await f.settle(id)) as string;
    assert.equal((await f.act(id, { resize: { flavorRef: '2' } })).status, 202);
    const resized = await f.settle(id);
    assert.equal(resized.status, 'VERIFY_RESIZE', JSON.stringify(resized.fault));
    assert.equal(hostOf(resized), other(source), 'resized onto the other host');
    assert.equal(resized.flavor.original_name, 'm1.small', 'the new flavor shows');
    const [migration] = await migrationsOf(id);
    assert.equal(migration?.migration_type, 'resize', 'a resize');
    assert.equal(migration?.old_instance_type_id, 1, 'old flavor');
    assert.equal(migration?.new_instance_type_id, 2, 'new flavor');
    const destProvider = await f.providerOf(other(source));
    assert.equal((await f.allocations(id))[destProvider]?.resources.MEMORY_MB, 2048, 'the destination holds the new flavor');
    assert.equal((await f.allocations(migration?.uuid))[await f.providerOf(source)]?.resources.MEMORY_MB, 512, 'the migration holds the old one at the source');

    const revert = await f.act(id, { revertResize: null });
    assert.equal(revert.status, 202, JSON.stringify(revert.body));
    const reverted = await f.settle(id);
    assert.equal(reverted.status, 'ACTIVE', JSON.stringify(reverted.fault));
    assert.equal(hostOf(reverted), source, 'back on the source');
    assert.equal(reverted.flavor.original_name, 'm1.tiny', 'old flavor back');
    assert.equal((await migrationsOf(id))[0]?.status, 'reverted', 'migration reverted');
    assert.deepEqual(await claimedOn(id), [source], 'the destination is freed');
    assert.equal((await f.allocations(id))[await f.providerOf(source)]?.resources.MEMORY_MB, 512, 'the old flavor is claimed');
    assert.deepEqual(await claimedOn(migration?.uuid), [], 'the migration holds nothing');
    const guests = await Promise.all(f.cloud.agents.map(async (a) => ({ host: a.host, has: (await a.driver.listGuests()).some((g) => g.uuid === id) })));
    assert.deepEqual(guests.filter((g) => g.has).map((g) => g.host), [source], 'one guest, on the source');
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });

  test('a stopped server stays stopped through resize and confirm', async () => {
    const id = await f.boot('sleeper');
    assert.equal((await f.act(id, { 'os-stop': null })).status, 202);
    assert.equal((await f.settle(id)).status, 'SHUTOFF');
    assert.equal((await f.act(id, { resize: { flavorRef: '2' } })).status, 202);
    const resized = await f.settle(id);
    assert.equal(resized.status, 'VERIFY_RESIZE', JSON.stringify(resized.fault));
    assert.equal(resized['OS-EXT-STS:power_state'], 4, 'still powered off');
    assert.equal((await f.act(id, { confirmResize: null })).status, 204);
    const confirmed = await f.settle(id);
    assert.equal(confirmed.status, 'SHUTOFF', 'back to SHUTOFF');
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });

  test('deleting a server in VERIFY_RESIZE frees both hosts', async () => {
    const id = await f.boot('dropped');
    assert.equal((await f.act(id, { resize: { flavorRef: '2' } })).status, 202);
    assert.equal((await f.settle(id)).status, 'VERIFY_RESIZE');
    const [migration] = await migrationsOf(id);
    assert.equal((await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha })).status, 204);
    await f.waitFor(id, (s) => s.status === 'DELETED');
    for (let i = 0; i < 100 && (await claimedOn(migration?.uuid)).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(await claimedOn(id), [], 'server claim freed');
    assert.deepEqual(await claimedOn(migration?.uuid), [], 'migration claim freed');
  });
});

describe('live migration', () => {
  test('host null with block_migration auto (2.25): ACTIVE on the other host, the migration completed, the source freed', async () => {
    const id = await f.boot('flyer');
    const source = hostOf(await f.settle(id)) as string;
    const member = await f.act(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, { version: '2.25' });
    assert.equal(member.status, 403, 'admins only');
    const res = await f.act(id, { 'os-migrateLive': { host: null, block_migration: 'auto' } }, { user: f.cloud.admin, version: '2.25' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const moved = await f.settle(id);
    assert.equal(moved.status, 'ACTIVE', JSON.stringify(moved.fault));
    assert.equal(hostOf(moved), other(source), 'on the other host');
    assert.equal(moved['OS-EXT-STS:power_state'], 1, 'running all along');
    const [migration] = await migrationsOf(id);
    assert.equal(migration?.migration_type, 'live-migration', 'a live migration');
    assert.equal(migration?.status, 'completed', 'completed');
    assert.deepEqual(await claimedOn(id), [other(source)], 'the server claims the destination only');
    assert.deepEqual(await claimedOn(migration?.uuid), [], 'the source usage is freed');
    const inProgress = await f.cloud.request('GET', `/servers/${id}/migrations`, { user: f.cloud.admin, version: '2.23' });
    assert.deepEqual(inProgress.body.migrations, [], 'none under way');
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });

  test('forced to a host (2.30), a paused server stays paused; 2.68 refuses force; bad bodies are 400', async () => {
    const id = await f.boot('paused-flyer');
    const source = hostOf(await f.settle(id)) as string;
    assert.equal((await f.act(id, { pause: null })).status, 202);
    assert.equal((await f.settle(id)).status, 'PAUSED');
    const force68 = await f.act(id, { 'os-migrateLive': { host: other(source), block_migration: false, force: true } }, { user: f.cloud.admin, version: '2.68' });
    assert.equal(force68.status, 400, '2.68 has no force');
    const noHost = await f.act(id, { 'os-migrateLive': { host: null, block_migration: false, force: true } }, { user: f.cloud.admin, version: '2.30' });
    assert.equal(noHost.status, 400, JSON.stringify(noHost.body));
    assert.equal(noHost.body.badRequest.message, "Can't force to a non-provided destination");
    const old = await f.act(id, { 'os-migrateLive': { host: null, block_migration: false } }, { user: f.cloud.admin, version: '2.1' });
    assert.equal(old.status, 400, 'before 2.25 disk_over_commit is required');
    const unknown = await f.act(id, { 'os-migrateLive': { host: 'nohost', block_migration: 'auto' } }, { user: f.cloud.admin, version: '2.25' });
    assert.equal(unknown.status, 400, 'unknown host');
    const res = await f.act(id, { 'os-migrateLive': { host: other(source), block_migration: false, force: true } }, { user: f.cloud.admin, version: '2.30' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const moved = await f.settle(id);
    assert.equal(moved.status, 'PAUSED', JSON.stringify(moved.fault));
    assert.equal(hostOf(moved), other(source), 'on the forced host');
    assert.equal(moved['OS-EXT-STS:power_state'], 3, 'paused');
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });

  test('to its own host: 400 before 2.34; from 2.34 accepted, the migration is error and the server stays ACTIVE', async () => {
    const id = await f.boot('homebody');
    const source = hostOf(await f.settle(id)) as string;
    const sync = await f.act(id, { 'os-migrateLive': { host: source, block_migration: 'auto', force: true } }, { user: f.cloud.admin, version: '2.30' });
    assert.equal(sync.status, 400, JSON.stringify(sync.body));
    assert.match(sync.body.badRequest.message, /Unable to migrate instance .* to current host/, 'Nova’s message');
    assert.equal((await f.settle(id)).status, 'ACTIVE', 'unchanged');
    const async = await f.act(id, { 'os-migrateLive': { host: source, block_migration: 'auto' } }, { user: f.cloud.admin, version: '2.93' });
    assert.equal(async.status, 202, JSON.stringify(async.body));
    const server = await f.settle(id);
    assert.equal(server.status, 'ACTIVE', 'still ACTIVE');
    assert.equal(hostOf(server), source, 'where it was');
    const statuses = (await migrationsOf(id)).map((m) => m.status);
    assert.deepEqual(statuses, ['error', 'error'], 'both attempts recorded as error');
    assert.deepEqual(await claimedOn(id), [source], 'its claim is intact');
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });
});
