import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { VolumeError } from './errors.js';
import { checkQuotaAfterInsert, classLimits, projectLimits, projectUsage, QUOTA_RESOURCES, reserveQuota } from './quotas.js';
import { clearVolumes, insertSnapshot, insertVolume } from './catalog-fixtures.test-util.js';
import { createVolumeTestCloud, type TestVolumeCloud } from './testing.js';

let cloud: TestVolumeCloud;
let project: string;
before(async () => {
  cloud = await createVolumeTestCloud();
  project = cloud.alpha.projectId;
});
afterEach(async () => {
  await clearVolumes(cloud);
  await cloud.volume.db.deleteFrom('quota').execute();
  await cloud.volume.db.deleteFrom('quota_class').execute();
});
after(async () => {
  await cloud.close();
});

async function setLimit(resource: string, limit: number): Promise<void> {
  await cloud.volume.db.insertInto('quota').values({ project_id: project, resource, hard_limit: limit }).execute();
}

/** The 413 a quota check throws (message, and Retry-After as Cinder sends it). */
async function overLimit(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof VolumeError, String(err));
    assert.equal(err.status, 413);
    assert.equal(err.headers['Retry-After'], '0');
    return err.message;
  }
  assert.fail('expected a 413');
}

test('limits: configuration, then the default class, then the project; per-type limits unlimited by default', async () => {
  const defaults = await classLimits(cloud.volume);
  for (const r of QUOTA_RESOURCES) assert.equal(typeof defaults[r], 'number', r);
  assert.equal(defaults.volumes, 10);
  assert.equal(defaults.per_volume_gigabytes, -1);
  assert.equal(defaults.volumes___DEFAULT__, -1);
  await cloud.volume.db.insertInto('quota_class').values({ class_name: 'default', resource: 'volumes', hard_limit: 20 }).execute();
  assert.equal((await projectLimits(cloud.volume, project)).volumes, 20);
  await setLimit('volumes', 3);
  assert.equal((await projectLimits(cloud.volume, project)).volumes, 3);
  assert.equal((await projectLimits(cloud.volume, cloud.beta.projectId)).volumes, 20);
});

test('usage counts volumes, snapshots, and gigabytes of both, per type too', async () => {
  const v = await insertVolume(cloud, { project_id: project, size: 5 });
  await insertSnapshot(cloud, v);
  await insertVolume(cloud, { project_id: project, size: 2 });
  await insertVolume(cloud, { project_id: cloud.beta.projectId, size: 7 });
  const used = await projectUsage(cloud.volume, project);
  assert.equal(used.volumes, 2);
  assert.equal(used.snapshots, 1);
  assert.equal(used.gigabytes, 12);
  assert.equal(used.volumes___DEFAULT__, 2);
  assert.equal(used.gigabytes___DEFAULT__, 12);
  assert.equal(used.snapshots___DEFAULT__, 1);
});

test('reserveQuota: Cinder 413s for volumes, gigabytes, snapshots, per-type and per-volume limits; nothing when unlimited', async () => {
  await reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 500 }, '__DEFAULT__').catch((err: unknown) => assert.fail(String(err)));
  await insertVolume(cloud, { project_id: project, size: 4 });

  await setLimit('volumes', 1);
  assert.equal(await overLimit(reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 1 }, null)), "Maximum number of volumes allowed (1) exceeded for quota 'volumes'.");
  await cloud.volume.db.updateTable('quota').set({ hard_limit: -1 }).execute();

  await setLimit('gigabytes', 10);
  assert.equal(
    await overLimit(reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 7 }, null)),
    'Requested volume or snapshot exceeds allowed gigabytes quota. Requested 7G, quota is 10G and 4G has been consumed.',
  );
  // An extend counts its growth.
  await reserveQuota(cloud.volume, project, { gigabytes: 6 }, null);
  await overLimit(reserveQuota(cloud.volume, project, { gigabytes: 7 }, null));
  await cloud.volume.db.deleteFrom('quota').execute();

  await setLimit('snapshots', 0);
  assert.equal(await overLimit(reserveQuota(cloud.volume, project, { snapshots: 1, gigabytes: 4 }, null)), 'Maximum number of snapshots allowed (0) exceeded');
  await cloud.volume.db.deleteFrom('quota').execute();

  await setLimit('volumes___DEFAULT__', 1);
  assert.equal(await overLimit(reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 1 }, '__DEFAULT__')), "Maximum number of volumes allowed (1) exceeded for quota 'volumes___DEFAULT__'.");
  // Another type is not limited by it.
  await reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 1 }, 'other');
  await setLimit('gigabytes___DEFAULT__', 5);
  // Gigabytes come first in name order, as Cinder reports them.
  assert.match(await overLimit(reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 2 }, '__DEFAULT__')), /allowed gigabytes___DEFAULT__ quota\. Requested 2G, quota is 5G and 4G/);
  await cloud.volume.db.deleteFrom('quota').execute();

  await setLimit('per_volume_gigabytes', 3);
  assert.equal(await overLimit(reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 4 }, null)), 'Requested volume size 4G is larger than maximum allowed limit 3G.');
  // An extend names the new size.
  assert.equal(await overLimit(reserveQuota(cloud.volume, project, { gigabytes: 1 }, null, { size: 5 })), 'Requested volume size 5G is larger than maximum allowed limit 3G.');
  await reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 3 }, null);
});

test('checkQuotaAfterInsert counts the new rows: once two racing creates are both in, the check sees the overshoot', async () => {
  await setLimit('volumes', 1);
  await reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 1 }, '__DEFAULT__');
  await reserveQuota(cloud.volume, project, { volumes: 1, gigabytes: 1 }, '__DEFAULT__');
  // Both passed the check before inserting; after one insert the count is right ...
  await insertVolume(cloud, { project_id: project });
  await checkQuotaAfterInsert(cloud.volume, project, { volumes: 1, gigabytes: 1 }, '__DEFAULT__');
  // ... and after the second, each sees the overshoot.
  await insertVolume(cloud, { project_id: project });
  assert.equal(await overLimit(checkQuotaAfterInsert(cloud.volume, project, { volumes: 1, gigabytes: 1 }, '__DEFAULT__')), "Maximum number of volumes allowed (1) exceeded for quota 'volumes'.");
});
