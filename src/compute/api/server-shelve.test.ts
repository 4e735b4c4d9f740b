import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createFlowCloud, hostOf, type FlowCloud } from './cloud-flows.test-util.js';

// Shelve, shelve offload and unshelve across compute-api, conductor,
// scheduler, agents, image, network and placement.

let f: FlowCloud;

before(async () => {
  f = await createFlowCloud();
});

after(async () => {
  await f.close();
});

async function usage(): Promise<Record<string, number>> {
  const res = await f.cloud.call('placement', 'GET', `/usages?project_id=${f.cloud.alpha.projectId}`, { user: f.cloud.admin, headers: { 'OpenStack-API-Version': 'placement 1.9' } });
  return res.body.usages;
}

async function portsOf(id: string): Promise<{ id: string; device_id: string; 'binding:host_id': string }[]> {
  return (await f.cloud.call('network', 'GET', `/v2.0/ports?device_id=${id}`, { user: f.cloud.admin })).body.ports;
}

describe('shelve with offload at once (shelved_offload_time 0)', () => {
  test('shelve snapshots to <name>-shelved, offloads (no host, no claim, ports unbound); unshelve rebuilds it on a host and deletes the snapshot', async () => {
    const id = await f.boot('shelf');
    const limitsBefore = (await f.cloud.request('GET', '/limits', { user: f.cloud.alpha })).body.limits.absolute;
    const shelve = await f.act(id, { shelve: null });
    assert.equal(shelve.status, 202, JSON.stringify(shelve.body));
    const shelved = await f.waitFor(id, (s) => s.status === 'SHELVED_OFFLOADED' || s.status === 'ERROR');
    assert.equal(shelved.status, 'SHELVED_OFFLOADED', JSON.stringify(shelved.fault));
    assert.equal(shelved['OS-EXT-STS:task_state'], null, 'no task');
    assert.equal(hostOf(shelved), null, 'no host');
    assert.equal(shelved['OS-EXT-SRV-ATTR:hypervisor_hostname'], null, 'no node');
    assert.equal(shelved['OS-EXT-STS:power_state'], 4, 'shut down');
    assert.deepEqual(await f.allocations(id), {}, 'the claim is freed');
    assert.deepEqual(await usage(), {}, 'placement holds nothing for the project');
    const ports = await portsOf(id);
    assert.equal(ports.length, 1, 'the port stays the server’s');
    assert.equal(ports[0]?.['binding:host_id'], '', 'but is bound to no host');
    const images = await f.cloud.call('image', 'GET', '/v2/images?name=shelf-shelved', { user: f.cloud.alpha });
    assert.equal(images.body.images.length, 1, JSON.stringify(images.body));
    const snapshot = images.body.images[0];
    assert.equal(snapshot.status, 'active', 'the snapshot is uploaded');
    assert.equal(snapshot.instance_uuid, id, 'it names the server');
    assert.equal(snapshot.image_type, 'snapshot', 'a snapshot');
    const limits = (await f.cloud.request('GET', '/limits', { user: f.cloud.alpha })).body.limits.absolute;
    assert.equal(limits.totalInstancesUsed, limitsBefore.totalInstancesUsed, 'quota usage stays counted while shelved');
    assert.equal(limits.totalCoresUsed, limitsBefore.totalCoresUsed, 'cores too');

    const again = await f.act(id, { shelve: null });
    assert.equal(again.status, 409, 'a shelved server cannot be shelved');
    assert.match(again.body.conflictingRequest.message, /Cannot 'shelve' instance .* while it is in vm_state shelved_offloaded/, 'Nova’s message');

    const unshelve = await f.act(id, { unshelve: null });
    assert.equal(unshelve.status, 202, JSON.stringify(unshelve.body));
    const back = await f.waitFor(id, (s) => s.status === 'ACTIVE' || s.status === 'ERROR');
    assert.equal(back.status, 'ACTIVE', JSON.stringify(back.fault));
    assert.ok(hostOf(back), 'on a host again');
    assert.equal(back.image.id, f.imageId, 'the server still shows the image it was built from');
    assert.equal((await portsOf(id))[0]?.['binding:host_id'], hostOf(back), 'the port is bound to the new host');
    assert.deepEqual(await usage(), { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }, 'claimed again');
    const gone = await f.cloud.call('image', 'GET', `/v2/images/${snapshot.id}`, { user: f.cloud.alpha });
    assert.equal(gone.status, 404, 'the shelved snapshot is deleted');

    const actions = await f.cloud.request('GET', `/servers/${id}/os-instance-actions`, { user: f.cloud.alpha });
    const names = (actions.body.instanceActions as { action: string }[]).map((a) => a.action);
    assert.ok(names.includes('shelve') && names.includes('unshelve'), JSON.stringify(names));
    const unshelveAction = (actions.body.instanceActions as { action: string; request_id: string }[]).find((a) => a.action === 'unshelve');
    // The host finishes its event just after the state it records: poll until every event has its result.
    let events: string[] = [];
    for (let i = 0; i < 200 && (events.length < 2 || events.some((e) => e.endsWith(':null'))); i++) {
      const detail = await f.cloud.request('GET', `/servers/${id}/os-instance-actions/${unshelveAction?.request_id}`, { user: f.cloud.admin, version: '2.51' });
      events = (detail.body.instanceAction.events as { event: string; result: string | null }[]).map((e) => `${e.event}:${e.result}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(events.includes('schedule_instances:Success') && events.includes('compute_unshelve_instance:Success'), JSON.stringify(events));
    assert.equal((await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha })).status, 204);
  });

  test('unshelve 2.77 availability_zone and 2.91 host: checked, then honoured', async () => {
    const id = await f.boot('zoned');
    assert.equal((await f.act(id, { shelve: null })).status, 202);
    await f.waitFor(id, (s) => s.status === 'SHELVED_OFFLOADED');
    const badZone = await f.act(id, { unshelve: { availability_zone: 'nowhere' } }, { version: '2.77' });
    assert.equal(badZone.status, 400, JSON.stringify(badZone.body));
    assert.equal(badZone.body.badRequest.message, 'The requested availability zone is not available');
    const emptyBody = await f.act(id, { unshelve: {} }, { version: '2.77' });
    assert.equal(emptyBody.status, 400, '2.77 needs availability_zone in an object');
    const hostTooEarly = await f.act(id, { unshelve: { host: 'host-b' } }, { version: '2.90', user: f.cloud.admin });
    assert.equal(hostTooEarly.status, 400, 'host is 2.91');
    const member = await f.act(id, { unshelve: { host: 'host-b' } }, { version: '2.91' });
    assert.equal(member.status, 403, 'only admins pick the host');
    const unknown = await f.act(id, { unshelve: { host: 'nohost' } }, { version: '2.91', user: f.cloud.admin });
    assert.equal(unknown.status, 400, JSON.stringify(unknown.body));
    assert.equal(unknown.body.badRequest.message, 'Compute host nohost could not be found.');
    const notInZone = await f.act(id, { unshelve: { host: 'host-b', availability_zone: 'nova' } }, { version: '2.91', user: f.cloud.admin });
    assert.equal(notInZone.status, 202, 'host-b is in nova');
    const back = await f.waitFor(id, (s) => s.status === 'ACTIVE' || s.status === 'ERROR');
    assert.equal(back.status, 'ACTIVE', JSON.stringify(back.fault));
    assert.equal(hostOf(back), 'host-b', 'on the host asked for');
    assert.equal(back['OS-EXT-AZ:availability_zone'], 'nova', 'in its zone');
    const zoneOnActive = await f.act(id, { unshelve: { availability_zone: null } }, { version: '2.91' });
    assert.equal(zoneOnActive.status, 409, 'an ACTIVE server cannot be unshelved');
    await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha });
  });
});

describe('shelve kept on the host (shelved_offload_time -1)', () => {
  test('SHELVED keeps host and claim; unshelve powers it on there; shelveOffload (admin) offloads it', async () => {
    const config = f.cloud.config.compute;
    config.shelved_offload_time = -1;
    try {
      const id = await f.boot('kept');
      const host = hostOf(await f.settle(id));
      assert.equal((await f.act(id, { shelve: null })).status, 202);
      const shelved = await f.waitFor(id, (s) => s.status === 'SHELVED' && s['OS-EXT-STS:task_state'] === null);
      assert.equal(hostOf(shelved), host, 'still on its host');
      assert.ok(Object.keys(await f.allocations(id)).length > 0, 'still claimed');
      const zone = await f.act(id, { unshelve: { availability_zone: 'nova' } }, { version: '2.77' });
      assert.equal(zone.status, 409, JSON.stringify(zone.body));
      assert.match(zone.body.conflictingRequest.message, /The server status must be SHELVED_OFFLOADED/, 'Nova’s message');
      assert.equal((await f.act(id, { unshelve: null })).status, 202);
      const back = await f.waitFor(id, (s) => s.status === 'ACTIVE' && s['OS-EXT-STS:task_state'] === null);
      assert.equal(hostOf(back), host, 'powered on where it was');
      assert.equal(back['OS-EXT-STS:power_state'], 1, 'running');

      assert.equal((await f.act(id, { shelve: null })).status, 202);
      await f.waitFor(id, (s) => s.status === 'SHELVED' && s['OS-EXT-STS:task_state'] === null);
      const member = await f.act(id, { shelveOffload: null });
      assert.equal(member.status, 403, 'shelveOffload is for admins');
      const offload = await f.act(id, { shelveOffload: null }, { user: f.cloud.admin });
      assert.equal(offload.status, 202, JSON.stringify(offload.body));
      const offloaded = await f.waitFor(id, (s) => s.status === 'SHELVED_OFFLOADED');
      assert.equal(hostOf(offloaded), null, 'no host');
      assert.deepEqual(await f.allocations(id), {}, 'claim freed');
      const twice = await f.act(id, { shelveOffload: null }, { user: f.cloud.admin });
      assert.equal(twice.status, 409, 'already offloaded');
      assert.equal((await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha })).status, 204);
      const gone = await f.waitFor(id, (s) => s.status === 'DELETED');
      assert.equal(gone.status, 'DELETED', 'an offloaded server is deleted at once');
    } finally {
      config.shelved_offload_time = 0;
    }
  });
});
