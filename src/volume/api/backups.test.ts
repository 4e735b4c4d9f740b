import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MemoryChunkStore } from '../backup/chunk-store.js';
import { FakeVolumeDriver, type FakeVolume } from '../drivers/fake.js';
import { createVolumeTestCloud, type TestUser, type TestVolumeCloud } from '../testing.js';
import { availableSnapshot, availableVolume, expectFault, setQuota, waitSnapshot } from './volume-fixtures.test-util.js';

let cloud: TestVolumeCloud;
let store: MemoryChunkStore;
const drivers = { 'fake-a': new FakeVolumeDriver({ capacityGb: 1000 }), 'fake-b': new FakeVolumeDriver({ capacityGb: 500 }) };
const CHUNK = 64 * 1024;
const MISSING = '6f0c8e5b-1e43-4c2f-9e5d-4a1b2c3d4e5f';

before(async () => {
  cloud = await createVolumeTestCloud({ drivers, overrides: { 'volume.backup_chunk_size': CHUNK } });
  store = MemoryChunkStore.shared(path.resolve(cloud.config.data_dir));
  for (const project of [cloud.alpha.projectId, cloud.beta.projectId]) for (const resource of ['volumes', 'gigabytes', 'snapshots', 'backups', 'backup_gigabytes']) await setQuota(cloud, project, resource, -1);
});
after(async () => {
  await cloud.close();
});

/** The fake driver's record of a volume (on whichever backend holds it). */
function fakeVolume(id: string): FakeVolume {
  const found = drivers['fake-a'].volumes.get(id) ?? drivers['fake-b'].volumes.get(id);
  assert.ok(found, `volume ${id} is on no fake backend`);
  return found;
}

/** Bytes that are not zeros, of `length`. */
function data(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = ((i * 31 + seed * 7) % 251) + 1;
  return out;
}

/** Polls a backup (as admin) until `done` holds (null: gone). */
async function waitBackup(id: string, done: (b: Record<string, any> | null) => boolean): Promise<Record<string, any> | null> {
  let last: Record<string, any> | null = null;
  for (let i = 0; i < 500; i++) {
    const res = await cloud.request('GET', `/backups/${id}`);
    last = res.status === 404 ? null : (res.body.backup ?? null);
    if (done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`backup ${id} did not reach the expected state; last seen: ${JSON.stringify(last)}`);
}

/** Creates a backup as `user` and waits until it is no longer `creating`. */
async function backup(user: TestUser, body: Record<string, unknown>, version?: string): Promise<Record<string, any>> {
  const res = await cloud.request('POST', '/backups', { user, payload: { backup: body }, ...(version ? { version } : {}) });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const done = await waitBackup(res.body.backup.id, (b) => b !== null && b.status !== 'creating');
  assert.ok(done);
  return done;
}

const DETAIL_FIELDS = [
  'availability_zone',
  'container',
  'created_at',
  'data_timestamp',
  'description',
  'fail_reason',
  'has_dependent_backups',
  'id',
  'is_incremental',
  'links',
  'name',
  'object_count',
  'size',
  'snapshot_id',
  'status',
  'updated_at',
  'volume_id',
];

test('a backup is made (202, creating) and restored into a new volume with its data and metadata; the volume is backing-up meanwhile', async () => {
  const v = await availableVolume(cloud, cloud.alpha, { name: 'source', description: 'the source', metadata: { 'vol-meta1': 'value1', 'vol-meta2': 'value2' } });
  const content = data(3 * CHUNK + 100, 1);
  fakeVolume(v.id).content = content;
  const gate = drivers['fake-a'].volumes.has(v.id) ? drivers['fake-a'].block('openBackupSource') : drivers['fake-b'].block('openBackupSource');
  const res = await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: v.id, name: ' nightly ', description: 'd', container: 'my-backups' } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body.backup).sort(), ['id', 'links', 'name']);
  assert.equal(res.body.backup.name, 'nightly');
  const id = res.body.backup.id as string;
  await gate.reached;
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`, { user: cloud.alpha })).body.volume.status, 'backing-up');
  assert.equal((await cloud.request('GET', `/backups/${id}`, { user: cloud.alpha })).body.backup.status, 'creating');
  expectFault(await cloud.request('DELETE', `/volumes/${v.id}`, { user: cloud.alpha }), 400);
  gate.release();
  const made = await waitBackup(id, (b) => b?.status !== 'creating');
  assert.equal(made?.status, 'available', JSON.stringify(made));
  assert.deepEqual(Object.keys(made ?? {}).sort(), DETAIL_FIELDS);
  assert.equal(made?.container, 'my-backups');
  assert.equal(made?.object_count, 4, 'four chunks hold data; the rest of the GiB is not stored');
  assert.equal(made?.size, 1);
  assert.equal(made?.is_incremental, false);
  assert.equal(made?.availability_zone, 'nova');
  assert.equal(made?.data_timestamp, made?.created_at);
  assert.match(String(made?.links[0].href), new RegExp(`/v3/backups/${id}$`));
  assert.equal((await cloud.waitVolume(v.id, (x) => x.status !== 'backing-up')).status, 'available');
  const objects = [...store.objects(cloud.alpha.projectId, 'my-backups').keys()].sort();
  assert.deepEqual(objects, [0, 1, 2, 3].map((n) => `${v.id}/backup_${id}/0000${n}`).concat([`${v.id}/backup_${id}/metadata`]));

  const latest = (await cloud.request('GET', `/backups/${id}`, { user: cloud.alpha, version: '3.70' })).body.backup;
  assert.deepEqual(latest.metadata, {});
  assert.equal('os-backup-project-attr:project_id' in latest, false, 'only administrators see the owner');
  const asAdmin = (await cloud.request('GET', `/backups/${id}`, { version: '3.56' })).body.backup;
  assert.equal(asAdmin['os-backup-project-attr:project_id'], cloud.alpha.projectId);
  assert.equal(asAdmin.user_id, cloud.alpha.userId);

  const restore = await cloud.request('POST', `/backups/${id}/restore`, { user: cloud.alpha, payload: { restore: {} } });
  assert.equal(restore.status, 202, JSON.stringify(restore.body));
  assert.deepEqual(Object.keys(restore.body.restore).sort(), ['backup_id', 'volume_id', 'volume_name']);
  assert.equal(restore.body.restore.backup_id, id);
  assert.equal(restore.body.restore.volume_name, `restore_backup_${id}`);
  const restored = await cloud.waitVolume(restore.body.restore.volume_id, (x) => x.status !== 'restoring-backup');
  assert.equal(restored.status, 'available');
  assert.deepEqual(fakeVolume(restored.id).content, content);
  assert.equal(restored.name, 'source', 'a volume made for the restore takes the source name');
  assert.equal(restored.description, 'the source');
  assert.deepEqual(restored.metadata, { 'vol-meta1': 'value1', 'vol-meta2': 'value2', src_backup_id: id });
  assert.equal((await waitBackup(id, (b) => b?.status !== 'restoring'))?.status, 'available');
});

test('restore into an existing volume overwrites it (zeros where the backup has none), even a larger one', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  fakeVolume(v.id).content = data(CHUNK / 2, 2);
  const b = await backup(cloud.alpha, { volume_id: v.id });
  const target = await availableVolume(cloud, cloud.alpha, { size: 2, name: 'kept name' });
  fakeVolume(target.id).content = data(5 * CHUNK, 3);
  const res = await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: target.id } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.deepEqual(res.body.restore, { backup_id: b.id, volume_id: target.id, volume_name: 'kept name' });
  const after = await cloud.waitVolume(target.id, (x) => x.status !== 'restoring-backup');
  assert.equal(after.status, 'available');
  assert.equal(after.name, 'kept name', 'a named volume keeps its name');
  assert.deepEqual(fakeVolume(target.id).content, data(CHUNK / 2, 2));
  assert.equal(after.metadata.src_backup_id, b.id);

  const small = await availableVolume(cloud, cloud.alpha);
  await cloud.request('PUT', `/backups/${b.id}`, { user: cloud.alpha, version: '3.9', payload: { backup: {} } });
  const big = await availableVolume(cloud, cloud.alpha, { size: 3 });
  const bigBackup = await backup(cloud.alpha, { volume_id: big.id });
  expectFault(await cloud.request('POST', `/backups/${bigBackup.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: small.id } } }), 400, 'Invalid volume: volume size 1 is too small to restore backup of size 3.');
  await cloud.request('POST', `/volumes/${small.id}/action`, { payload: { 'os-reset_status': { status: 'error' } } });
  expectFault(await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: small.id } } }), 400, 'Invalid volume: Volume to be restored to must be available');
  expectFault(await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: MISSING } } }), 404, `Volume ${MISSING} could not be found.`);
  expectFault(await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: 'nope' } } }), 400, /Invalid input for field\/attribute volume_id/);
  expectFault(await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.alpha, payload: { restore: { size: 1 } } }), 400, /Additional properties are not allowed \('size' was unexpected\)/);
  expectFault(await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.beta, payload: { restore: {} } }), 404, `Backup ${b.id} could not be found.`);
  expectFault(await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.alphaReader, payload: { restore: {} } }), 403, "Policy doesn't allow backup:restore to be performed.");
  assert.equal((await cloud.request('GET', `/volumes/${small.id}`)).body.volume.status, 'error', 'a refused restore changes nothing');
});

test('create is refused with Cinder errors and changes nothing', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const create = (payload: unknown, user: TestUser = cloud.alpha, version?: string) => cloud.request('POST', '/backups', { user, payload, ...(version ? { version } : {}) });
  expectFault(await create({ backup: { name: 'x' } }), 400, "Invalid input for field/attribute backup. Value: {'name': 'x'}. 'volume_id' is a required property");
  expectFault(await create({ backup: { volume_id: 'abc' } }), 400, "Invalid input for field/attribute volume_id. Value: abc. 'abc' is not a 'uuid'");
  expectFault(await create({ backup: { volume_id: v.id, size: 1 } }), 400, /Additional properties are not allowed \('size' was unexpected\)/);
  expectFault(await create({ backup: { volume_id: v.id, metadata: { a: 'b' } } }), 400, /'metadata' was unexpected/);
  expectFault(await create({ backup: { volume_id: v.id, availability_zone: 'nova' } }, cloud.alpha, '3.43'), 400, /'availability_zone' was unexpected/);
  expectFault(await create({ backup: { volume_id: v.id, incremental: 'maybe' } }), 400, /Invalid input for field\/attribute incremental/);
  expectFault(await create({ backup: { volume_id: v.id, name: 'n'.repeat(256) } }), 400, /is too long/);
  expectFault(await create({ backup: { volume_id: MISSING } }), 404, `Volume ${MISSING} could not be found.`);
  expectFault(await create({ backup: { volume_id: v.id } }, cloud.beta), 404, `Volume ${v.id} could not be found.`);
  expectFault(await create({ backup: { volume_id: v.id } }, cloud.alphaReader), 403, "Policy doesn't allow backup:create to be performed.");
  expectFault(await create({ backup: { volume_id: v.id, incremental: true } }), 400, 'Invalid backup: No backups available to do an incremental backup.');
  expectFault(await create({ backup: { volume_id: v.id, snapshot_id: MISSING } }), 404, `Snapshot ${MISSING} could not be found.`);
  await cloud.request('POST', `/volumes/${v.id}/action`, { user: cloud.alpha, payload: { 'os-attach': { instance_uuid: MISSING, mountpoint: '/dev/vdb' } } });
  expectFault(await create({ backup: { volume_id: v.id } }), 400, 'Invalid volume: Backing up an in-use volume must use the force flag.');
  await cloud.request('POST', `/volumes/${v.id}/action`, { payload: { 'os-reset_status': { status: 'error' } } });
  expectFault(await create({ backup: { volume_id: v.id, force: true } }), 400, 'Invalid volume: Volume to be backed up must be available or in-use, but the current status is "error".');
  const list = await cloud.request('GET', `/backups/detail?volume_id=${v.id}`, { user: cloud.alpha });
  assert.deepEqual(list.body.backups, [], 'refused creates record nothing');
});

test('an in-use volume is backed up with force and goes back to in-use; metadata (3.43) and zone (3.51) are kept', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  await cloud.request('POST', `/volumes/${v.id}/action`, { user: cloud.alpha, payload: { 'os-attach': { instance_uuid: MISSING, mountpoint: '/dev/vdb' } } });
  const made = await backup(cloud.alpha, { volume_id: v.id, force: true, metadata: { k: 'v' }, availability_zone: 'nova' }, '3.51');
  assert.equal(made.status, 'available');
  assert.deepEqual((await cloud.request('GET', `/backups/${made.id}`, { user: cloud.alpha, version: '3.43' })).body.backup.metadata, { k: 'v' });
  assert.equal((await cloud.waitVolume(v.id, (x) => x.status !== 'backing-up')).status, 'in-use');
  const updated = await cloud.request('PUT', `/backups/${made.id}`, { user: cloud.alpha, version: '3.43', payload: { backup: { name: 'renamed', description: 'new', metadata: { x: 'y' } } } });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  assert.deepEqual(Object.keys(updated.body.backup).sort(), ['id', 'links', 'name']);
  const shown = (await cloud.request('GET', `/backups/${made.id}`, { user: cloud.alpha, version: '3.43' })).body.backup;
  assert.equal(shown.name, 'renamed');
  assert.equal(shown.description, 'new');
  assert.deepEqual(shown.metadata, { x: 'y' });
  expectFault(await cloud.request('PUT', `/backups/${made.id}`, { user: cloud.alpha, version: '3.8', payload: { backup: { name: 'x' } } }), 404);
  expectFault(await cloud.request('PUT', `/backups/${made.id}`, { user: cloud.alpha, version: '3.9', payload: { backup: { metadata: {} } } }), 400, /'metadata' was unexpected/);
  expectFault(await cloud.request('PUT', `/backups/${made.id}`, { user: cloud.alphaReader, version: '3.9', payload: { backup: { name: 'x' } } }), 403, "Policy doesn't allow backup:update to be performed.");
});

test('incremental backups store only changed chunks and restore whole; a parent with dependents is not deleted', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const first = data(4 * CHUNK, 4);
  fakeVolume(v.id).content = first;
  const full = await backup(cloud.alpha, { volume_id: v.id });
  assert.equal(full.object_count, 4);
  const second = Buffer.from(first);
  data(100, 5).copy(second, 2 * CHUNK + 10);
  fakeVolume(v.id).content = second;
  const inc = await backup(cloud.alpha, { volume_id: v.id, incremental: true });
  assert.equal(inc.status, 'available', JSON.stringify(inc));
  assert.equal(inc.is_incremental, true);
  assert.equal(inc.object_count, 1, 'one chunk changed');
  assert.equal((await cloud.request('GET', `/backups/${full.id}`, { user: cloud.alpha })).body.backup.has_dependent_backups, true);
  expectFault(await cloud.request('DELETE', `/backups/${full.id}`, { user: cloud.alpha }), 400, 'Invalid backup: Incremental backups exist for this backup.');

  const target = await availableVolume(cloud, cloud.alpha);
  await cloud.request('POST', `/backups/${inc.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: target.id } } });
  await cloud.waitVolume(target.id, (x) => x.status === 'available');
  assert.deepEqual(fakeVolume(target.id).content, second);
  await cloud.request('POST', `/backups/${full.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: target.id } } });
  await waitBackup(full.id, (b) => b?.status === 'available');
  await cloud.waitVolume(target.id, (x) => x.status === 'available');
  assert.deepEqual(fakeVolume(target.id).content, first);

  assert.equal((await cloud.request('DELETE', `/backups/${inc.id}`, { user: cloud.alpha })).status, 202);
  await waitBackup(inc.id, (b) => b === null);
  assert.equal((await cloud.request('GET', `/backups/${full.id}`, { user: cloud.alpha })).body.backup.has_dependent_backups, false);
  assert.equal((await cloud.request('DELETE', `/backups/${full.id}`, { user: cloud.alpha })).status, 202);
  await waitBackup(full.id, (b) => b === null);
  assert.deepEqual([...store.objects(cloud.alpha.projectId, 'volumebackups').keys()].filter((n) => n.startsWith(`${v.id}/`)), [], 'the objects are gone');
});

test('a backup of a snapshot reads the snapshot, which is backing-up meanwhile', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  fakeVolume(v.id).content = data(100, 6);
  const snap = await availableSnapshot(cloud, cloud.alpha, v.id);
  fakeVolume(v.id).content = data(100, 7);
  const made = await backup(cloud.alpha, { volume_id: v.id, snapshot_id: snap.id });
  assert.equal(made.snapshot_id, snap.id);
  assert.equal(made.data_timestamp, snap.created_at);
  assert.equal((await waitSnapshot(cloud, snap.id, (s) => s?.status !== 'backing-up'))?.status, 'available');
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'available', 'the volume is not touched');
  const restore = await cloud.request('POST', `/backups/${made.id}/restore`, { user: cloud.alpha, payload: { restore: { name: 'from-snap' } } });
  const restored = await cloud.waitVolume(restore.body.restore.volume_id, (x) => x.status === 'available');
  assert.equal(restored.name, 'from-snap');
  assert.deepEqual(fakeVolume(restored.id).content, data(100, 6));
  const other = await availableVolume(cloud, cloud.alpha);
  expectFault(await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: other.id, snapshot_id: snap.id } } }), 400, `Invalid volume: Volume ${other.id} does not match with snapshot.volume_id ${v.id}.`);
});

test('list, detail, filters, sorting, paging, counts and all_tenants', async () => {
  const v = await availableVolume(cloud, cloud.beta);
  const made = [];
  for (const name of ['b0', 'b1', 'b2']) made.push(await backup(cloud.beta, { volume_id: v.id, name }));
  const ids = made.map((b) => b.id as string);
  const q = (query: string, user: TestUser = cloud.beta, version?: string) => cloud.request('GET', `/backups${query}`, { user, ...(version ? { version } : {}) });
  const list = await q('');
  assert.deepEqual(
    list.body.backups.map((b: any) => b.id),
    [...ids].reverse(),
    'newest first',
  );
  assert.deepEqual(Object.keys(list.body.backups[0]).sort(), ['id', 'links', 'name']);
  const detail = await q('/detail?name=b1');
  assert.deepEqual(
    detail.body.backups.map((b: any) => b.name),
    ['b1'],
  );
  assert.deepEqual(Object.keys(detail.body.backups[0]).sort(), DETAIL_FIELDS);
  assert.deepEqual(
    (await q('?sort=name:asc', cloud.beta, '3.37')).body.backups.map((b: any) => b.name),
    ['b0', 'b1', 'b2'],
  );
  expectFault(await q('?sort=name:asc', cloud.beta, '3.36'), 400, 'Invalid input received: Invalid sort key');
  const page = await q('?limit=2&with_count=true', cloud.beta, '3.45');
  assert.equal(page.body.backups.length, 2);
  assert.equal(page.body.count, 3);
  assert.match(page.body.backups_links[0].href, new RegExp(`marker=${ids[1]}`));
  const next = await q(`?limit=2&marker=${ids[1]}`);
  assert.deepEqual(
    next.body.backups.map((b: any) => b.id),
    [ids[0]],
  );
  expectFault(await q('?host=x', cloud.beta, '3.31'), 400, 'Invalid filters host are found in query options.');
  assert.equal((await q('?name~=b', cloud.beta, '3.34')).body.backups.length, 3);
  assert.equal((await q('', cloud.alpha)).body.backups.some((b: any) => ids.includes(b.id)), false, 'another project sees none');
  const all = await cloud.request('GET', '/backups?all_tenants=1');
  assert.ok(ids.every((id) => all.body.backups.some((b: any) => b.id === id)));
  assert.equal((await cloud.request('GET', '/backups')).body.backups.some((b: any) => ids.includes(b.id)), false, 'an administrator sees its own project without all_tenants');
  expectFault(await cloud.request('GET', '/backups?all_tenants=maybe'), 400, "Invalid input received: all_tenants must be a boolean, got 'maybe'.");
  expectFault(await q(`/${MISSING}`), 404, `Backup ${MISSING} could not be found.`);
  expectFault(await q(`/${ids[0]}`, cloud.alpha), 404, `Backup ${ids[0]} could not be found.`);
  assert.equal((await q(`/${ids[0]}`, cloud.alphaReader)).status, 404);
});

test('quotas: backups and backup_gigabytes are counted and shown in limits', async () => {
  const user = cloud.beta;
  const v = await availableVolume(cloud, user, { size: 2 });
  const used = (await cloud.request('GET', '/backups', { user })).body.backups.length;
  await setQuota(cloud, user.projectId, 'backups', used);
  expectFault(await cloud.request('POST', '/backups', { user, payload: { backup: { volume_id: v.id } } }), 413, `Maximum number of backups allowed (${used}) exceeded`, 'overLimit');
  await setQuota(cloud, user.projectId, 'backups', -1);
  const limits = (await cloud.request('GET', '/limits', { user })).body.limits.absolute;
  assert.equal(limits.totalBackupsUsed, used);
  await setQuota(cloud, user.projectId, 'backup_gigabytes', limits.totalBackupGigabytesUsed + 1);
  expectFault(
    await cloud.request('POST', '/backups', { user, payload: { backup: { volume_id: v.id } } }),
    413,
    `Requested backup exceeds allowed Backup gigabytes quota. Requested 2G, quota is ${limits.totalBackupGigabytesUsed + 1}G and ${limits.totalBackupGigabytesUsed}G has been consumed.`,
  );
  await setQuota(cloud, user.projectId, 'backup_gigabytes', -1);
  assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'available');
});

test('delete, force delete of a backup being made, reset status (administrators), and their errors', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  fakeVolume(v.id).content = data(CHUNK, 8);
  const b = await backup(cloud.alpha, { volume_id: v.id });
  expectFault(await cloud.request('DELETE', `/backups/${b.id}`, { user: cloud.beta }), 404, `Backup ${b.id} could not be found.`);
  expectFault(await cloud.request('DELETE', `/backups/${b.id}`, { user: cloud.alphaReader }), 403, "Policy doesn't allow backup:delete to be performed.");
  const action = (body: unknown, user: TestUser = cloud.admin) => cloud.request('POST', `/backups/${b.id}/action`, { user, payload: body });
  expectFault(await action({ 'os-reset_status': { status: 'error' } }, cloud.alpha), 403, "Policy doesn't allow volume_extension:backup_admin_actions:reset_status to be performed.");
  expectFault(await action({ 'os-reset_status': { status: 'restoring' } }), 400, "Backup status: restoring is invalid, valid statuses are: ['available', 'error'].");
  expectFault(await action({ 'os-reset_status': {} }), 400, /'status' is a required property/);
  expectFault(await action({ 'os-frobnicate': {} }), 400, 'There is no such action: os-frobnicate');
  assert.equal((await action({ 'os-reset_status': { status: 'error' } })).status, 202);
  assert.equal((await cloud.request('GET', `/backups/${b.id}`, { user: cloud.alpha })).body.backup.status, 'error');
  await cloud.volume.db.updateTable('backup').set({ status: 'restoring' }).where('id', '=', b.id).execute();
  expectFault(await cloud.request('DELETE', `/backups/${b.id}`, { user: cloud.alpha }), 400, 'Invalid backup: Backup status must be available or error');
  expectFault(await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.alpha, payload: { restore: {} } }), 400, 'Invalid backup: Backup status must be available');
  expectFault(await action({ 'os-force_delete': {} }, cloud.alpha), 403, "Policy doesn't allow volume_extension:backup_admin_actions:force_delete to be performed.");
  assert.equal((await action({ 'os-force_delete': {} })).status, 202);
  await waitBackup(b.id, (x) => x === null);

  const driver = drivers['fake-a'].volumes.has(v.id) ? drivers['fake-a'] : drivers['fake-b'];
  const gate = driver.block('openBackupSource');
  const res = await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: v.id } } });
  await gate.reached;
  assert.equal((await cloud.request('POST', `/backups/${res.body.backup.id}/action`, { payload: { 'os-force_delete': {} } })).status, 202);
  gate.release();
  await waitBackup(res.body.backup.id, (x) => x === null);
  assert.equal((await cloud.waitVolume(v.id, (x) => x.status !== 'backing-up')).status, 'available');
  await cloud.agents.backups.idle();
  assert.deepEqual([...store.objects(cloud.alpha.projectId, 'volumebackups').keys()].filter((n) => n.startsWith(`${v.id}/`)), [], 'a cancelled backup leaves no object');
});

test('a failed backup is error with its reason and a user message; its delete removes what it wrote', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  fakeVolume(v.id).content = data(3 * CHUNK, 9);
  for (let i = 0; i < 3; i++) store.failNextPut('the object store is full');
  // The first chunk is stored, then every attempt of the second fails.
  const calls = store.calls.length;
  const made = await (async () => {
    const res = await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: v.id } } });
    return waitBackup(res.body.backup.id, (b) => b?.status !== 'creating');
  })();
  assert.equal(made?.status, 'error');
  assert.equal(made?.fail_reason, 'the object store is full');
  assert.ok(store.calls.length > calls);
  const volume = await cloud.waitVolume(v.id, (x) => x.status !== 'backing-up');
  assert.equal(volume.status, 'available');
  const messages = (await cloud.request('GET', '/messages', { user: cloud.alpha, version: '3.3' })).body.messages;
  assert.ok(messages.some((m: any) => m.resource_uuid === made?.id && m.event_id === 'VOLUME_VOLUME_BACKUP_013_020'), JSON.stringify(messages));
  assert.equal((await cloud.request('DELETE', `/backups/${made?.id}`, { user: cloud.alpha })).status, 202);
  await waitBackup(String(made?.id), (b) => b === null);
  assert.deepEqual([...store.objects(cloud.alpha.projectId, 'volumebackups').keys()].filter((n) => n.includes(String(made?.id))), []);
});

test('a failed restore leaves the volume error_restoring and the backup available', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const b = await backup(cloud.alpha, { volume_id: v.id });
  const target = await availableVolume(cloud, cloud.alpha);
  const driver = drivers['fake-a'].volumes.has(target.id) ? drivers['fake-a'] : drivers['fake-b'];
  driver.failNext('openRestoreTarget', 'the disk fell off');
  await cloud.request('POST', `/backups/${b.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: target.id } } });
  assert.equal((await cloud.waitVolume(target.id, (x) => x.status !== 'restoring-backup')).status, 'error_restoring');
  assert.equal((await waitBackup(b.id, (x) => x?.status !== 'restoring'))?.status, 'available');
});

test('export and import of a backup record (administrators): the imported backup restores the same data', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  fakeVolume(v.id).content = data(2 * CHUNK, 10);
  const b = await backup(cloud.alpha, { volume_id: v.id, name: 'exported' });
  expectFault(await cloud.request('GET', `/backups/${b.id}/export_record`, { user: cloud.alpha }), 403, "Policy doesn't allow backup:export-import to be performed.");
  const exported = await cloud.request('GET', `/backups/${b.id}/export_record`);
  assert.equal(exported.status, 200, JSON.stringify(exported.body));
  const record = exported.body['backup-record'];
  assert.deepEqual(Object.keys(record).sort(), ['backup_service', 'backup_url']);
  assert.ok(String(record.backup_service).startsWith('cinder.backup.drivers'));
  const decoded = JSON.parse(Buffer.from(record.backup_url, 'base64').toString('utf8'));
  assert.equal(decoded.id, b.id);
  const importRecord = (body: unknown, user: TestUser = cloud.admin) => cloud.request('POST', '/backups/import_record', { user, payload: body });
  expectFault(await importRecord({ 'backup-record': { backup_service: record.backup_service, backup_url: record.backup_url } }), 400, 'Invalid backup: Backup already exists in database.');
  expectFault(await importRecord({ 'backup-record': { backup_service: record.backup_service, backup_url: 'bm90IGpzb24=' } }), 400, "Invalid input received: Can't parse backup record.");
  expectFault(await importRecord({ 'backup-record': { backup_service: record.backup_service } }), 400, /'backup_url' is a required property/);
  const noId = Buffer.from(JSON.stringify({ size: 1 })).toString('base64');
  expectFault(await importRecord({ 'backup-record': { backup_service: record.backup_service, backup_url: noId } }), 400, 'Invalid input received: Provided backup record is missing an id');
  expectFault(await importRecord({ 'backup-record': { backup_service: record.backup_service, backup_url: record.backup_url } }, cloud.alpha), 403, "Policy doesn't allow backup:backup-import to be performed.");

  const newId = '0b0e7a3e-52c6-4a0c-b3a5-6d2b0f1c9a77';
  const imported = await importRecord({ 'backup-record': { backup_service: record.backup_service, backup_url: Buffer.from(JSON.stringify({ ...decoded, id: newId })).toString('base64') } });
  assert.equal(imported.status, 201, JSON.stringify(imported.body));
  assert.deepEqual(Object.keys(imported.body.backup).sort(), ['id', 'links', 'name']);
  assert.equal(imported.body.backup.id, newId);
  const shown = (await cloud.request('GET', `/backups/${newId}`)).body.backup;
  assert.equal(shown.status, 'available', JSON.stringify(shown));
  assert.equal(shown.name, 'exported');
  assert.equal(shown.volume_id, v.id);
  const target = await availableVolume(cloud, cloud.admin);
  await cloud.request('POST', `/backups/${newId}/restore`, { payload: { restore: { volume_id: target.id } } });
  await cloud.waitVolume(target.id, (x) => x.status === 'available');
  assert.deepEqual(fakeVolume(target.id).content, data(2 * CHUNK, 10));

  const wrongService = await importRecord({ 'backup-record': { backup_service: 'cinder.backup.drivers.nfs.NFSBackupDriver', backup_url: Buffer.from(JSON.stringify({ ...decoded, id: MISSING })).toString('base64') } });
  assert.equal(wrongService.status, 201);
  const failed = (await cloud.request('GET', `/backups/${MISSING}`)).body.backup;
  assert.equal(failed.status, 'error');
  assert.match(failed.fail_reason, /cannot find backup service to perform the import/);
  await cloud.request('DELETE', `/backups/${MISSING}`);
});

test('the backup service is a cinder-backup service; without one up, creates are refused with 503', async () => {
  const services = (await cloud.request('GET', '/os-services?binary=cinder-backup')).body.services;
  assert.equal(services.length, 1);
  assert.equal(services[0].host, 'test-host');
  assert.equal(services[0].state, 'up');
  const v = await availableVolume(cloud, cloud.alpha);
  expectFault(await cloud.request('POST', '/backups', { user: cloud.alpha, version: '3.51', payload: { backup: { volume_id: v.id, availability_zone: 'elsewhere' } } }), 503, 'Service cinder-backup could not be found.');
  await cloud.volume.db.updateTable('service').set({ disabled: 1 }).where('binary', '=', 'cinder-backup').execute();
  try {
    expectFault(await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: v.id } } }), 503, 'Service cinder-backup could not be found.');
    assert.equal((await cloud.request('GET', `/volumes/${v.id}`)).body.volume.status, 'available');
  } finally {
    await cloud.volume.db.updateTable('service').set({ disabled: 0 }).where('binary', '=', 'cinder-backup').execute();
  }
});

test('a restart of the backup service fails the backup it was making and releases the volume', async () => {
  const v = await availableVolume(cloud, cloud.alpha);
  const driver = drivers['fake-a'].volumes.has(v.id) ? drivers['fake-a'] : drivers['fake-b'];
  const gate = driver.block('openBackupSource');
  const res = await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: v.id } } });
  await gate.reached;
  await cloud.restartAgents();
  const failed = await waitBackup(res.body.backup.id, (b) => b?.status !== 'creating');
  assert.equal(failed?.status, 'error');
  assert.equal(failed?.fail_reason, 'The backup service restarted while the backup was being made.');
  assert.equal((await cloud.waitVolume(v.id, (x) => x.status !== 'backing-up')).status, 'available');
});

test('notifications: backup.create.start and .end, backup.delete.end', async () => {
  const seen: { event: string; payload: any }[] = [];
  const consumer = await cloud.bus.onNotification('backup.', (n) => {
    seen.push({ event: n.event_type, payload: n.payload });
  });
  try {
    const v = await availableVolume(cloud, cloud.alpha);
    const b = await backup(cloud.alpha, { volume_id: v.id, name: 'noted' });
    await cloud.request('DELETE', `/backups/${b.id}`, { user: cloud.alpha });
    await waitBackup(b.id, (x) => x === null);
    for (let i = 0; i < 100 && !seen.some((s) => s.event === 'backup.delete.end'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const mine = seen.filter((s) => s.payload.backup_id === b.id);
    assert.deepEqual(
      mine.map((s) => s.event),
      ['backup.create.start', 'backup.create.end', 'backup.delete.start', 'backup.delete.end'],
    );
    const end = mine[1]?.payload;
    assert.equal(end.status, 'available');
    assert.equal(end.tenant_id, cloud.alpha.projectId);
    assert.equal(end.display_name, 'noted');
    assert.equal(end.service, 'cinder.backup.drivers.fake.FakeBackupDriver');
  } finally {
    await consumer.stop();
  }
});

test('3.47: a volume created from a backup holds its data; the volume is creating and the backup restoring until the restore ends', async () => {
  const v = await availableVolume(cloud, cloud.alpha, { size: 2, name: 'origin', metadata: { color: 'blue' } });
  const content = data(2 * CHUNK + 7, 11);
  fakeVolume(v.id).content = content;
  const b = await backup(cloud.alpha, { volume_id: v.id });
  const create = (volume: Record<string, unknown>, version = '3.47', user: TestUser = cloud.alpha) => cloud.request('POST', '/volumes', { user, version, payload: { volume } });
  expectFault(await create({ backup_id: b.id }, '3.46'), 400, "Invalid input received: Volume size 'None' must be an integer and greater than 0", 'badRequest');
  expectFault(await create({ backup_id: MISSING }), 404, `Backup ${MISSING} could not be found.`);
  expectFault(await create({ backup_id: b.id }, '3.47', cloud.beta), 404, `Backup ${b.id} could not be found.`);
  expectFault(await create({ backup_id: b.id, size: 1 }), 400, 'Invalid input received: Volume size 1GB cannot be smaller than the backup size 2GB. It must be >= backup size.');
  expectFault(await create({ backup_id: b.id, snapshot_id: MISSING }), 404, `Snapshot ${MISSING} could not be found.`);

  const gate = drivers['fake-a'].block('openRestoreTarget');
  const gateB = drivers['fake-b'].block('openRestoreTarget');
  const res = await create({ backup_id: b.id, name: 'from backup' });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.equal(res.body.volume.size, 2, 'the backup size by default');
  await Promise.race([gate.reached, gateB.reached]);
  assert.equal((await cloud.request('GET', `/volumes/${res.body.volume.id}`)).body.volume.status, 'creating');
  assert.equal((await cloud.request('GET', `/backups/${b.id}`)).body.backup.status, 'restoring');
  expectFault(await create({ backup_id: b.id }), 400, "Invalid backup: Originating backup status must be one of 'available' values");
  gate.release();
  gateB.release();
  delete drivers['fake-a'].hooks.openRestoreTarget;
  delete drivers['fake-b'].hooks.openRestoreTarget;
  const made = await cloud.waitVolume(res.body.volume.id, (x) => x.status !== 'creating');
  assert.equal(made.status, 'available');
  assert.equal(made.name, 'from backup');
  assert.equal(made.metadata.color, 'blue');
  assert.deepEqual(fakeVolume(made.id).content, content);
  assert.equal((await waitBackup(b.id, (x) => x?.status !== 'restoring'))?.status, 'available');

  // A backup another driver made cannot be restored here: the new volume is error, the backup available again.
  await cloud.volume.db.updateTable('backup').set({ service: 'cinder.backup.drivers.nfs.NFSBackupDriver' }).where('id', '=', b.id).execute();
  const broken = await create({ backup_id: b.id });
  const failed = await cloud.waitVolume(broken.body.volume.id, (x) => x.status !== 'creating');
  assert.equal(failed.status, 'error');
  assert.equal((await waitBackup(b.id, (x) => x?.status !== 'restoring'))?.status, 'available');
  const messages = (await cloud.request('GET', '/messages', { user: cloud.alpha, version: '3.3' })).body.messages;
  assert.ok(messages.some((m: any) => m.resource_uuid === b.id && m.event_id === 'VOLUME_VOLUME_BACKUP_015_026'), JSON.stringify(messages));
});
