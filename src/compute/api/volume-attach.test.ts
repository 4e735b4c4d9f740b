import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newUuid } from '../common.js';
import { createFlowCloud, hostOf, type FlowCloud } from './cloud-flows.test-util.js';
import { volumeFlows, type VolumeFlows } from './volume-flows.test-util.js';

// os-volume_attachments against the real block storage service (fake
// backends): attach reserves, the host connects and completes (in-use),
// detach ends the attachment (available); Nova's errors; the server's
// delete detaches its volumes and deletes those marked so.

let f: FlowCloud;
let v: VolumeFlows;
let serverId: string;
let host: string;

before(async () => {
  f = await createFlowCloud({ volume: true });
  v = volumeFlows(f.cloud);
  serverId = await f.boot('attach');
  host = hostOf(await f.waitFor(serverId, () => true)) ?? '';
});

after(async () => {
  await f.close();
});

const url = (server: string, suffix = ''): string => `/servers/${server}/os-volume_attachments${suffix}`;

/** Attaches as alpha and waits until the volume is in use. */
async function attach(server: string, volumeId: string, extra: Record<string, unknown> = {}, version = '2.79'): Promise<Record<string, any>> {
  const res = await f.cloud.request('POST', url(server), { user: f.cloud.alpha, version, payload: { volumeAttachment: { volumeId, ...extra } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await v.waitFor(volumeId, (vol) => vol.status === 'in-use');
  return res.body.volumeAttachment;
}

describe('attach and detach through the block storage service', () => {
  test('attach: reserved, connected to the host, completed; the volume shows the server; detach makes it available', async () => {
    const volume = await v.create({ size: 1, name: 'data' });
    const attachment = await attach(serverId, volume.id, { tag: 'data', delete_on_termination: false }, '2.79');
    assert.deepEqual(attachment, { id: volume.id, serverId, volumeId: volume.id, device: '/dev/vdb', tag: 'data', delete_on_termination: false });
    const shown = await v.call('GET', `/volumes/${volume.id}`, { user: f.cloud.admin });
    assert.equal(shown.body.volume.status, 'in-use');
    const [entry] = shown.body.volume.attachments;
    assert.equal(shown.body.volume.attachments.length, 1, JSON.stringify(shown.body.volume.attachments));
    assert.equal(entry.server_id, serverId, 'the attachment names the server');
    assert.equal(entry.host_name, host, "the host's connector (shown to admins)");
    assert.equal(entry.device, '/dev/vdb');
    assert.deepEqual(v.driver(host).volumesOf(serverId), { [volume.id]: '/dev/vdb' }, 'the hypervisor attached it');

    const list = await f.cloud.request('GET', url(serverId), { user: f.cloud.alpha, version: '2.89' });
    assert.equal(list.status, 200);
    assert.equal(list.body.volumeAttachments.length, 1);
    const listed = list.body.volumeAttachments[0];
    assert.equal(listed.attachment_id, entry.attachment_id, 'the same attachment on both sides');
    assert.deepEqual({ ...listed, attachment_id: '', bdm_uuid: '' }, { volumeId: volume.id, serverId, device: '/dev/vdb', tag: 'data', delete_on_termination: false, attachment_id: '', bdm_uuid: '' });
    const server = await f.cloud.request('GET', `/servers/${serverId}`, { user: f.cloud.alpha, version: '2.3' });
    assert.deepEqual(server.body.server['os-extended-volumes:volumes_attached'], [{ id: volume.id, delete_on_termination: false }]);

    const detach = await f.cloud.request('DELETE', url(serverId, `/${volume.id}`), { user: f.cloud.alpha });
    assert.equal(detach.status, 202, JSON.stringify(detach.body));
    const detached = await v.waitFor(volume.id, (vol) => vol.status === 'available');
    assert.deepEqual(detached.attachments, []);
    assert.deepEqual(v.driver(host).volumesOf(serverId), {}, 'the hypervisor detached it');
    await f.waitFor(serverId, () => true);
    const after = await f.cloud.request('GET', url(serverId), { user: f.cloud.alpha });
    assert.deepEqual(after.body.volumeAttachments, [], 'no mapping left');
    const again = await f.cloud.request('DELETE', url(serverId, `/${volume.id}`), { user: f.cloud.alpha });
    assert.equal(again.status, 404, 'detach of a volume not attached');
    assert.equal(again.body.itemNotFound.message, `Instance ${serverId} is not attached to volume ${volume.id}`);
    const actions = await f.cloud.request('GET', `/servers/${serverId}/os-instance-actions`, { user: f.cloud.alpha });
    const names = (actions.body.instanceActions as { action: string }[]).map((a) => a.action);
    assert.ok(names.includes('attach_volume') && names.includes('detach_volume'), names.join(','));
  });

  test('a volume in use by another server is 400, an unknown or foreign one 404, and nothing is recorded', async () => {
    const volume = await v.create({ size: 1 });
    await attach(serverId, volume.id);
    const other = await f.boot('other');
    const busy = await f.cloud.request('POST', url(other), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: volume.id } } });
    assert.equal(busy.status, 400, JSON.stringify(busy.body));
    assert.equal(busy.body.badRequest.message, `Invalid volume: volume ${volume.id} is already attached to instances: ${serverId}`);
    const twice = await f.cloud.request('POST', url(serverId), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: volume.id } } });
    assert.equal(twice.status, 400, 'the same server again');
    const unknown = newUuid();
    const missing = await f.cloud.request('POST', url(other), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: unknown } } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.itemNotFound.message, `Volume ${unknown} could not be found.`);
    const betas = await v.create({ size: 1 }, f.cloud.beta);
    const foreign = await f.cloud.request('POST', url(other), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: betas.id } } });
    assert.equal(foreign.status, 404, "another project's volume is not found");
    assert.deepEqual((await f.cloud.request('GET', url(other), { user: f.cloud.alpha })).body.volumeAttachments, [], 'nothing recorded');
    assert.equal((await v.call('GET', `/volumes/${betas.id}`, { user: f.cloud.beta })).body.volume.status, 'available', "beta's volume untouched");
    const detach = await f.cloud.request('DELETE', url(serverId, `/${volume.id}`), { user: f.cloud.alpha });
    assert.equal(detach.status, 202);
    await v.waitFor(volume.id, (vol) => vol.status === 'available');
  });

  test('a server that cannot take a volume now is 409 (suspended); a bad device 400', async () => {
    const volume = await v.create({ size: 1 });
    const id = await f.boot('sleepy');
    assert.equal((await f.act(id, { suspend: null })).status, 202);
    await f.waitFor(id, (s) => s.status === 'SUSPENDED');
    const res = await f.cloud.request('POST', url(id), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: volume.id } } });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.conflictingRequest.message, `Cannot 'attach_volume' instance ${id} while it is in vm_state suspended`);
    const device = await f.cloud.request('POST', url(serverId), { user: f.cloud.alpha, payload: { volumeAttachment: { volumeId: volume.id, device: 'sdb' } } });
    assert.equal(device.status, 400);
    assert.equal((await v.call('GET', `/volumes/${volume.id}`)).body.volume.status, 'available', 'the volume is untouched');
  });

  test("the server's delete detaches its volumes and deletes those marked delete_on_termination", async () => {
    const id = await f.boot('doomed');
    const kept = await v.create({ size: 1, name: 'kept' });
    const dropped = await v.create({ size: 1, name: 'dropped' });
    await attach(id, kept.id, { delete_on_termination: false });
    await attach(id, dropped.id, { delete_on_termination: true });
    const server = await f.cloud.request('GET', `/servers/${id}`, { user: f.cloud.alpha, version: '2.3' });
    assert.deepEqual(
      new Set((server.body.server['os-extended-volumes:volumes_attached'] as unknown[]).map((x) => JSON.stringify(x))),
      new Set([JSON.stringify({ id: kept.id, delete_on_termination: false }), JSON.stringify({ id: dropped.id, delete_on_termination: true })]),
    );
    assert.equal((await f.cloud.request('DELETE', `/servers/${id}`, { user: f.cloud.alpha })).status, 204);
    await f.waitFor(id, (s) => s.status === 'DELETED');
    const keptAfter = await v.waitFor(kept.id, (vol) => vol.status === 'available');
    assert.deepEqual(keptAfter.attachments, []);
    assert.equal((await v.waitFor(dropped.id, (vol) => vol.status === 'deleted')).status, 'deleted', 'deleted with the server');
  });

  test('swap (the block storage service migrating a volume, admin): the guest moves to the new volume', async () => {
    const id = await f.boot('swapper');
    const server = await f.waitFor(id, () => true);
    const where = hostOf(server) ?? '';
    const old = await v.create({ size: 1, name: 'old' });
    const next = await v.create({ size: 1, name: 'next' });
    await attach(id, old.id);
    const notMigrating = await f.cloud.request('PUT', url(id, `/${old.id}`), { user: f.cloud.admin, payload: { volumeAttachment: { volumeId: next.id } } });
    assert.equal(notMigrating.status, 409, JSON.stringify(notMigrating.body));
    assert.equal(notMigrating.body.conflictingRequest.message, `volume ${old.id} is not migrating; this API should only be called by Cinder`);
    const unknownNew = newUuid();
    const unknown = await f.cloud.request('PUT', url(id, `/${old.id}`), { user: f.cloud.admin, payload: { volumeAttachment: { volumeId: unknownNew } } });
    assert.equal(unknown.status, 400, 'an unknown new volume is a bad body, whatever the state');
    assert.equal(unknown.body.badRequest.message, `Volume ${unknownNew} could not be found.`);
    const reset = await v.call('POST', `/volumes/${old.id}/action`, { user: f.cloud.admin, payload: { 'os-reset_status': { migration_status: 'migrating' } } });
    assert.equal(reset.status, 202, JSON.stringify(reset.body));
    const swap = await f.cloud.request('PUT', url(id, `/${old.id}`), { user: f.cloud.admin, payload: { volumeAttachment: { volumeId: next.id } } });
    assert.equal(swap.status, 202, JSON.stringify(swap.body));
    const calls = (): { method: string; args?: unknown[] }[] => v.driver(where).calls.filter((c) => (c as { uuid?: string }).uuid === id);
    for (let i = 0; i < 300 && !calls().some((c) => c.method === 'detachVolume' && c.args?.[0] === old.id); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(calls().some((c) => c.method === 'attachVolume' && c.args?.[0] === next.id), 'the new volume attached');
    assert.ok(calls().some((c) => c.method === 'detachVolume' && c.args?.[0] === old.id), 'the old one detached');
    let listed: Record<string, any>[] = [];
    for (let i = 0; i < 300; i++) {
      listed = (await f.cloud.request('GET', url(id), { user: f.cloud.alpha, version: '2.89' })).body.volumeAttachments;
      if (listed.length === 1 && (listed[0]?.volumeId !== old.id || i > 50)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(listed.length, 1, JSON.stringify(listed));
    const kept = listed[0]?.volumeId as string;
    assert.ok([old.id, next.id].includes(kept), `the server keeps one of the two volumes: ${kept}`);
    const inUse = await v.waitFor(kept, (vol) => vol.status === 'in-use' && vol.attachments.some((a: { server_id: string }) => a.server_id === id));
    assert.equal(inUse.attachments[0]?.attachment_id, listed[0]?.attachment_id, 'the new attachment is the mapping’s');
    assert.equal((await f.cloud.request('DELETE', url(id, `/${kept}`), { user: f.cloud.alpha })).status, 202);
    await v.waitFor(kept, (vol) => vol.status === 'available');
  });

  test('a SHELVED_OFFLOADED server takes a volume (in use, no host), connected when unshelved', async () => {
    const id = await f.boot('shelf');
    assert.equal((await f.act(id, { shelve: null })).status, 202);
    await f.waitFor(id, (s) => s.status === 'SHELVED_OFFLOADED');
    const volume = await v.create({ size: 1 });
    const tagged = await f.cloud.request('POST', url(id), { user: f.cloud.alpha, version: '2.49', payload: { volumeAttachment: { volumeId: volume.id, tag: 'x' } } });
    assert.equal(tagged.status, 400, 'no tag on an offloaded server');
    assert.equal(tagged.body.badRequest.message, 'Tagged volume attachment is not supported for shelved-offloaded instances.');
    const attached = await attach(id, volume.id, {}, '2.20');
    assert.equal(attached.device, '/dev/vdb');
    assert.equal((await f.act(id, { unshelve: null })).status, 202);
    const server = await f.waitFor(id, (s) => s.status === 'ACTIVE');
    const now = hostOf(server) ?? '';
    assert.deepEqual(v.driver(now).volumesOf(id), { [volume.id]: '/dev/vdb' }, 'spawned with the volume');
    const shown = await v.waitFor(volume.id, (vol) => vol.attachments.length === 1 && vol.attachments[0].host_name === now);
    assert.equal(shown.status, 'in-use');
  });
});

describe('os-server-external-events volume-extended', () => {
  test('the host tells the guest the size the volume service reports; an extend_volume action is recorded; without a tag 400 in the event', async () => {
    const volume = await v.create({ size: 1 });
    await attach(serverId, volume.id);
    const res = await f.cloud.request('POST', '/os-server-external-events', { user: f.cloud.admin, payload: { events: [{ name: 'volume-extended', server_uuid: serverId, tag: volume.id }, { name: 'volume-extended', server_uuid: serverId }] } });
    assert.equal(res.status, 207, JSON.stringify(res.body));
    assert.deepEqual(
      (res.body.events as { code: number }[]).map((e) => e.code),
      [200, 400],
    );
    for (let i = 0; i < 200 && !v.driver(host).calls.some((c) => c.method === 'extendVolume' && c.args?.[0] === volume.id); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      v.driver(host).calls.some((c) => c.method === 'extendVolume' && c.uuid === serverId && c.args?.[0] === volume.id && c.args?.[1] === 1),
      'the driver was told',
    );
    const actions = await f.cloud.request('GET', `/servers/${serverId}/os-instance-actions`, { user: f.cloud.alpha });
    assert.ok((actions.body.instanceActions as { action: string }[]).some((a) => a.action === 'extend_volume'));
    assert.equal((await f.cloud.request('DELETE', url(serverId, `/${volume.id}`), { user: f.cloud.alpha })).status, 202);
    await v.waitFor(volume.id, (vol) => vol.status === 'available');
  });
});
