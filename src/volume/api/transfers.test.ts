import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { clearVolumes, insertSnapshot, insertVolume } from '../catalog-fixtures.test-util.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud();
});
afterEach(async () => {
  await cloud.volume.db.deleteFrom('transfer').execute();
  await cloud.volume.db.deleteFrom('quota').execute();
  await clearVolumes(cloud);
});
after(async () => {
  await cloud.close();
});

async function volumeRow(id: string): Promise<{ status: string; project_id: string; user_id: string }> {
  return cloud.volume.db.selectFrom('volume').select(['status', 'project_id', 'user_id']).where('id', '=', id).executeTakeFirstOrThrow();
}

test('create answers the auth key once; the volume awaits the transfer; show and list do not repeat the key', async () => {
  const v = await insertVolume(cloud, { project_id: cloud.alpha.projectId });
  const res = await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: { volume_id: v.id, name: ' gift ' } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const t = res.body.transfer;
  assert.deepEqual(Object.keys(t).sort(), ['auth_key', 'created_at', 'id', 'links', 'name', 'volume_id']);
  assert.equal(t.name, 'gift');
  assert.match(t.auth_key, /^[0-9a-f]{16}$/);
  assert.equal((await volumeRow(v.id)).status, 'awaiting-transfer');
  const stored = await cloud.volume.db.selectFrom('transfer').selectAll().executeTakeFirstOrThrow();
  assert.notEqual(stored.crypt_hash, t.auth_key, 'only the HMAC is kept');

  const shown = await cloud.request('GET', `/os-volume-transfer/${t.id}`, { user: cloud.alpha });
  assert.deepEqual(Object.keys(shown.body.transfer).sort(), ['created_at', 'id', 'links', 'name', 'volume_id']);
  const summary = await cloud.request('GET', '/os-volume-transfer', { user: cloud.alpha });
  assert.deepEqual(summary.body.transfers, [{ id: t.id, volume_id: v.id, name: 'gift', links: t.links }]);
  const detail = await cloud.request('GET', '/volume-transfers/detail', { user: cloud.alpha, version: '3.57' });
  assert.deepEqual(
    { ...detail.body.transfers[0], created_at: undefined, links: undefined },
    { id: t.id, volume_id: v.id, name: 'gift', created_at: undefined, links: undefined, no_snapshots: false, destination_project_id: null, source_project_id: cloud.alpha.projectId, accepted: false },
  );
  // Other projects do not see it.
  assert.equal((await cloud.request('GET', `/os-volume-transfer/${t.id}`, { user: cloud.beta })).status, 404);
  assert.deepEqual((await cloud.request('GET', '/os-volume-transfer', { user: cloud.beta })).body.transfers, []);
  // The admin sees it with all_tenants.
  assert.equal((await cloud.request('GET', '/os-volume-transfer/detail?all_tenants=1')).body.transfers.length, 1);
  // A volume awaiting a transfer cannot be offered again.
  const again = await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: { volume_id: v.id } } });
  assert.equal(again.status, 400);
  assert.equal(again.body.badRequest.message, 'Invalid volume: status must be available');
});

test('accept moves the volume, its snapshots and their quota usage to the accepting project', async () => {
  const v = await insertVolume(cloud, { project_id: cloud.alpha.projectId, size: 2 });
  const s = await insertSnapshot(cloud, v);
  const usage = async (user: typeof cloud.alpha) => (await cloud.request('GET', `/os-quota-sets/${user.projectId}?usage=True`)).body.quota_set;
  const [alphaBefore, betaBefore] = [await usage(cloud.alpha), await usage(cloud.beta)];
  const { body } = await cloud.request('POST', '/volume-transfers', { user: cloud.alpha, version: '3.55', payload: { transfer: { volume_id: v.id } } });
  const t = body.transfer;
  assert.equal(t.no_snapshots, false);
  const wrong = await cloud.request('POST', `/volume-transfers/${t.id}/accept`, { user: cloud.beta, version: '3.55', payload: { accept: { auth_key: 'not-the-key' } } });
  assert.equal(wrong.status, 400);
  assert.equal(wrong.body.badRequest.message, `Invalid auth key: Attempt to transfer ${t.id} with invalid auth key.`);
  const accepted = await cloud.request('POST', `/volume-transfers/${t.id}/accept`, { user: cloud.beta, version: '3.55', payload: { accept: { auth_key: t.auth_key } } });
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  assert.deepEqual({ ...accepted.body.transfer, links: undefined }, { id: t.id, volume_id: v.id, name: null, links: undefined });
  const row = await volumeRow(v.id);
  assert.deepEqual(row, { status: 'available', project_id: cloud.beta.projectId, user_id: cloud.beta.userId });
  const snap = await cloud.volume.db.selectFrom('snapshot').select(['project_id', 'user_id']).where('id', '=', s.id).executeTakeFirstOrThrow();
  assert.deepEqual(snap, { project_id: cloud.beta.projectId, user_id: cloud.beta.userId });
  const [alphaAfter, betaAfter] = [await usage(cloud.alpha), await usage(cloud.beta)];
  assert.equal(alphaBefore.volumes.in_use - alphaAfter.volumes.in_use, 1);
  assert.equal(betaAfter.volumes.in_use - betaBefore.volumes.in_use, 1);
  assert.equal(betaAfter.gigabytes.in_use - betaBefore.gigabytes.in_use, 4);
  assert.equal(betaAfter.snapshots.in_use - betaBefore.snapshots.in_use, 1);
  // The transfer is gone.
  assert.equal((await cloud.request('GET', `/volume-transfers/${t.id}`, { user: cloud.alpha, version: '3.55' })).status, 404);
  assert.equal((await cloud.request('POST', `/volume-transfers/${t.id}/accept`, { user: cloud.beta, version: '3.55', payload: { accept: { auth_key: t.auth_key } } })).status, 404);
});

test('accept over the recipient quota is 413 and changes nothing; no_snapshots leaves the snapshots behind', async () => {
  const v = await insertVolume(cloud, { project_id: cloud.alpha.projectId, size: 5 });
  const s = await insertSnapshot(cloud, v);
  const t = (await cloud.request('POST', '/volume-transfers', { user: cloud.alpha, version: '3.55', payload: { transfer: { volume_id: v.id, no_snapshots: true } } })).body.transfer;
  assert.equal(t.no_snapshots, true);
  await cloud.request('PUT', `/os-quota-sets/${cloud.beta.projectId}`, { payload: { quota_set: { gigabytes: 4 } } });
  const over = await cloud.request('POST', `/os-volume-transfer/${t.id}/accept`, { user: cloud.beta, payload: { accept: { auth_key: t.auth_key } } });
  assert.equal(over.status, 413);
  assert.equal(over.body.overLimit.message, 'Requested volume or snapshot exceeds allowed gigabytes quota. Requested 5G, quota is 4G and 0G has been consumed.');
  assert.equal((await volumeRow(v.id)).status, 'awaiting-transfer');
  await cloud.request('PUT', `/os-quota-sets/${cloud.beta.projectId}`, { payload: { quota_set: { gigabytes: 5 } } });
  assert.equal((await cloud.request('POST', `/os-volume-transfer/${t.id}/accept`, { user: cloud.beta, payload: { accept: { auth_key: t.auth_key } } })).status, 202);
  assert.equal((await volumeRow(v.id)).project_id, cloud.beta.projectId);
  const snap = await cloud.volume.db.selectFrom('snapshot').select('project_id').where('id', '=', s.id).executeTakeFirstOrThrow();
  assert.equal(snap.project_id, cloud.alpha.projectId);
});

test('delete gives the volume back; refusals: unknown volume, other project, reader, bad bodies, old microversion', async () => {
  const v = await insertVolume(cloud, { project_id: cloud.alpha.projectId });
  const t = (await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: { volume_id: v.id } } })).body.transfer;
  assert.equal((await cloud.request('DELETE', `/os-volume-transfer/${t.id}`, { user: cloud.beta })).status, 404);
  assert.equal((await cloud.request('DELETE', `/os-volume-transfer/${t.id}`, { user: cloud.alphaReader })).status, 403);
  assert.equal((await cloud.request('DELETE', `/os-volume-transfer/${t.id}`, { user: cloud.alpha })).status, 202);
  assert.equal((await volumeRow(v.id)).status, 'available');
  assert.equal((await cloud.request('GET', `/os-volume-transfer/${t.id}`, { user: cloud.alpha })).status, 404);

  const other = await insertVolume(cloud, { project_id: cloud.beta.projectId });
  assert.equal((await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: { volume_id: other.id } } })).status, 404);
  assert.equal((await cloud.request('POST', '/os-volume-transfer', { user: cloud.alphaReader, payload: { transfer: { volume_id: v.id } } })).status, 403);
  assert.equal((await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: { volume_id: 'not-a-uuid' } } })).status, 400);
  assert.equal((await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: { volume_id: v.id, no_snapshots: true } } })).status, 400, 'no_snapshots is 3.55');
  assert.equal((await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: {} } })).status, 400);
  assert.equal((await cloud.request('POST', '/volume-transfers', { user: cloud.alpha, version: '3.54', payload: { transfer: { volume_id: v.id } } })).status, 404);
  assert.equal((await volumeRow(v.id)).status, 'available', 'refused requests changed nothing');
  const busy = await insertVolume(cloud, { project_id: cloud.alpha.projectId });
  await insertSnapshot(cloud, busy, { status: 'creating' });
  const refused = await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: { volume_id: busy.id } } });
  assert.equal(refused.status, 400);
  assert.match(refused.body.badRequest.message, /^Invalid snapshot: snapshot: .* status must be available$/);
});

test('the volume shows awaiting-transfer through the volume API and changes project when accepted', async () => {
  const v = await insertVolume(cloud, { project_id: cloud.alpha.projectId });
  const t = (await cloud.request('POST', '/os-volume-transfer', { user: cloud.alpha, payload: { transfer: { volume_id: v.id } } })).body.transfer;
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).body.volume.status, 'awaiting-transfer');
  await cloud.request('POST', `/os-volume-transfer/${t.id}/accept`, { user: cloud.beta, payload: { accept: { auth_key: t.auth_key } } });
  const shown = await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.beta });
  assert.equal(shown.status, 200);
  assert.equal(shown.body.volume.status, 'available');
  assert.equal(shown.body.volume.user_id, cloud.beta.userId);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).status, 404);
});
