import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { clearVolumes, insertSnapshot, insertVolume } from '../catalog-fixtures.test-util.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud();
});
afterEach(async () => {
  await clearVolumes(cloud);
  await cloud.volume.db.deleteFrom('quota').execute();
  await cloud.volume.db.deleteFrom('quota_class').execute();
});
after(async () => {
  await cloud.close();
});

const GLOBAL = ['volumes', 'per_volume_gigabytes', 'snapshots', 'gigabytes', 'backups', 'backup_gigabytes'];

test('show: every resource, per-type ones, groups; usage=True gives limit, in_use, reserved', async () => {
  const project = cloud.alpha.projectId;
  const res = await cloud.request('GET', `/os-quota-sets/${project}`, { user: cloud.alpha });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.quota_set, {
    id: project,
    volumes: 10,
    per_volume_gigabytes: -1,
    snapshots: 10,
    gigabytes: 1000,
    backups: 10,
    backup_gigabytes: 1000,
    volumes___DEFAULT__: -1,
    gigabytes___DEFAULT__: -1,
    snapshots___DEFAULT__: -1,
    groups: 10,
  });
  const v = await insertVolume(cloud, { project_id: project, size: 3 });
  await insertSnapshot(cloud, v);
  const usage = await cloud.request('GET', `/os-quota-sets/${project}?usage=True`, { user: cloud.alphaReader });
  assert.equal(usage.status, 200);
  assert.deepEqual(usage.body.quota_set.volumes, { limit: 10, in_use: 1, reserved: 0 });
  assert.deepEqual(usage.body.quota_set.gigabytes, { limit: 1000, in_use: 6, reserved: 0 });
  assert.deepEqual(usage.body.quota_set.snapshots, { limit: 10, in_use: 1, reserved: 0 });
  assert.deepEqual(usage.body.quota_set.per_volume_gigabytes, { limit: -1, in_use: 0, reserved: 0 });
  assert.deepEqual(usage.body.quota_set.volumes___DEFAULT__, { limit: -1, in_use: 1, reserved: 0 });
  assert.equal((await cloud.request('GET', `/os-quota-sets/${project}?usage=maybe`)).status, 400);
  // Another project's quotas are not the member's to see.
  const other = await cloud.request('GET', `/os-quota-sets/${cloud.beta.projectId}`, { user: cloud.alpha });
  assert.equal(other.status, 403);
  assert.equal(other.body.forbidden.message, "Policy doesn't allow volume_extension:quotas:show to be performed.");
});

test('update: admin only, answers the limits without id; Cinder validation; delete restores the defaults', async () => {
  const project = cloud.alpha.projectId;
  const values = { gigabytes: 1009, volumes: 11, snapshots: 11, backups: 11, backup_gigabytes: 1009, per_volume_gigabytes: 1009 };
  const res = await cloud.request('PUT', `/os-quota-sets/${project}`, { payload: { quota_set: values } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal('id' in res.body.quota_set, false);
  for (const [k, v] of Object.entries(values)) assert.equal(res.body.quota_set[k], v);
  // Strings of digits are integers too.
  assert.equal((await cloud.request('PUT', `/os-quota-sets/${project}`, { payload: { quota_set: { volumes: '12' } } })).body.quota_set.volumes, 12);

  for (const [payload, message] of [
    [{ quota_set: { volumes: -2 } }, 'volumes must be >= -1'],
    [{ quota_set: { volumes: 'many' } }, 'volumes must be an integer'],
    [{ quota_set: { volumes: 1.5 } }, 'volumes must be an integer'],
    [{ quota_set: { bogus: 1 } }, 'Invalid input received: Bad key(s) in quota set: bogus'],
    [{ quota_set: {} }, 'Invalid input for field/attribute quota_set. Value: {}. {} does not have enough properties'],
    [{ quota_set: { volumes: 1 }, extra: 1 }, "Additional properties are not allowed ('extra' was unexpected)"],
    [{ volumes: 1 }, "'quota_set' is a required property"],
  ] as const) {
    const bad = await cloud.request('PUT', `/os-quota-sets/${project}`, { payload });
    assert.equal(bad.status, 400, JSON.stringify(payload));
    assert.equal(bad.body.badRequest.message, message);
  }
  const denied = await cloud.request('PUT', `/os-quota-sets/${project}`, { user: cloud.alpha, payload: { quota_set: { volumes: 100 } } });
  assert.equal(denied.status, 403);
  assert.equal((await cloud.request('GET', `/os-quota-sets/${project}`)).body.quota_set.volumes, 12, 'refused updates changed nothing');

  // Below the usage: refused only where the project has its own limit (as Cinder).
  await insertVolume(cloud, { project_id: project });
  await insertVolume(cloud, { project_id: project });
  const below = await cloud.request('PUT', `/os-quota-sets/${project}`, { payload: { quota_set: { volumes: 1 } } });
  assert.equal(below.status, 400);
  assert.equal(below.body.badRequest.message, 'Quota volumes limit must be equal or greater than existing resources. Current usage is 2 and the requested limit is 1.');
  assert.equal((await cloud.request('PUT', `/os-quota-sets/${project}`, { payload: { quota_set: { volumes: -1, snapshots_gold: 1 } } })).status, 400, 'unknown type');
  assert.equal((await cloud.request('PUT', `/os-quota-sets/${project}`, { payload: { quota_set: { volumes___DEFAULT__: 5 } } })).body.quota_set.volumes___DEFAULT__, 5);

  const del = await cloud.request('DELETE', `/os-quota-sets/${project}`);
  assert.equal(del.status, 200);
  const shown = await cloud.request('GET', `/os-quota-sets/${project}`);
  assert.equal(shown.body.quota_set.volumes, 10);
  assert.equal(shown.body.quota_set.volumes___DEFAULT__, -1);
  assert.equal((await cloud.request('DELETE', `/os-quota-sets/${project}`, { user: cloud.alpha })).status, 403);
});

test('defaults and quota classes: the default class overrides the configuration for every project', async () => {
  const shown = await cloud.request('GET', '/os-quota-class-sets/default');
  assert.equal(shown.status, 200);
  assert.equal(shown.body.quota_class_set.id, 'default');
  assert.equal(shown.body.quota_class_set.volumes, 10);
  const upd = await cloud.request('PUT', '/os-quota-class-sets/default', { payload: { quota_class_set: { volumes: 15, gigabytes___DEFAULT__: '7' } } });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  assert.equal('id' in upd.body.quota_class_set, false);
  assert.equal(upd.body.quota_class_set.volumes, 15);
  assert.equal(upd.body.quota_class_set.gigabytes___DEFAULT__, 7);
  for (const project of [cloud.alpha.projectId, 'a-project-nobody-configured']) {
    const defaults = await cloud.request('GET', `/os-quota-sets/${project}/defaults`);
    assert.equal(defaults.body.quota_set.id, project);
    assert.equal(defaults.body.quota_set.volumes, 15);
    assert.equal(defaults.body.quota_set.gigabytes___DEFAULT__, 7);
  }
  assert.equal((await cloud.request('GET', `/os-quota-sets/${cloud.alpha.projectId}`)).body.quota_set.volumes, 15);
  const bad = await cloud.request('PUT', '/os-quota-class-sets/default', { payload: { quota_class_set: { nothing: 1 } } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.badRequest.message, 'Invalid input received: Bad key(s) in quota class set: nothing');
  assert.equal((await cloud.request('PUT', '/os-quota-class-sets/default', { payload: { quota_class_set: { volumes: '-1' } } })).status, 400);
  assert.equal((await cloud.request('PUT', '/os-quota-class-sets/default', { payload: { quota_class_set: { volumes: -2 } } })).status, 400);
  assert.equal((await cloud.request('GET', '/os-quota-class-sets/default', { user: cloud.alpha })).status, 403);
  assert.equal((await cloud.request('PUT', '/os-quota-class-sets/default', { user: cloud.alpha, payload: { quota_class_set: { volumes: 1 } } })).status, 403);
});

test('limits: absolute limits and usage of the caller; an admin may ask for another project from 3.39', async () => {
  const project = cloud.alpha.projectId;
  await insertVolume(cloud, { project_id: project, size: 4 });
  await cloud.request('PUT', `/os-quota-sets/${project}`, { payload: { quota_set: { volumes: 5 } } });
  const res = await cloud.request('GET', '/limits', { user: cloud.alpha });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, {
    limits: {
      rate: [],
      absolute: {
        maxTotalVolumeGigabytes: 1000,
        maxTotalBackupGigabytes: 1000,
        maxTotalVolumes: 5,
        maxTotalSnapshots: 10,
        maxTotalBackups: 10,
        totalVolumesUsed: 1,
        totalGigabytesUsed: 4,
        totalSnapshotsUsed: 0,
        totalBackupsUsed: 0,
        totalBackupGigabytesUsed: 0,
      },
    },
  });
  const old = await cloud.request('GET', `/limits?project_id=${project}`, { version: '3.38' });
  assert.equal(old.body.limits.absolute.maxTotalVolumes, 10, 'before 3.39 the admin sees its own project');
  const other = await cloud.request('GET', `/limits?project_id=${project}`, { version: '3.39' });
  assert.equal(other.body.limits.absolute.maxTotalVolumes, 5);
  assert.equal(other.body.limits.absolute.totalVolumesUsed, 1);
  const memberTries = await cloud.request('GET', `/limits?project_id=${cloud.beta.projectId}`, { user: cloud.alpha, version: '3.39' });
  assert.equal(memberTries.body.limits.absolute.maxTotalVolumes, 5, 'a member always gets its own project');
});

test('the global resources are always present', async () => {
  const res = await cloud.request('GET', `/os-quota-sets/${cloud.beta.projectId}`, { user: cloud.beta });
  for (const key of [...GLOBAL, 'groups']) assert.equal(typeof res.body.quota_set[key], 'number', key);
});
