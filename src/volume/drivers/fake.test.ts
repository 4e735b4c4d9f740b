import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { FakeVolumeDriver } from './fake.js';
import { driverSuite, rawImage } from './driver-suite.test-util.js';

driverSuite('fake driver', {
  make: async () => new FakeVolumeDriver({ capacityGb: 100 }),
  tooBigImage: async () => {
    const fixture = rawImage(1024);
    return { ...fixture, image: { ...fixture.image, disk_format: 'qcow2', virtual_size: 2 * 1024 ** 3 } };
  },
});

test('fake driver: capacity comes from the configuration (1000 GiB by default)', async () => {
  assert.equal((await new FakeVolumeDriver().stats()).total_capacity_gb, 1000);
  const driver = new FakeVolumeDriver({ capacityGb: 10 });
  await driver.createVolume({ id: randomUUID(), size: 4, provider_location: null });
  const stats = await driver.stats();
  assert.equal(stats.total_capacity_gb, 10);
  assert.equal(stats.free_capacity_gb, 6);
});

test('fake driver: failNext fails one call; a blocked create fails when the driver stops and leaves a partial volume that cleanup removes', async () => {
  const driver = new FakeVolumeDriver();
  driver.failNext('createVolume', 'disk on fire');
  const v = { id: randomUUID(), size: 1, provider_location: null };
  await assert.rejects(driver.createVolume(v), /disk on fire/);
  const blocked = driver.block('createVolume');
  const create = driver.createVolume(v);
  assert.equal(await blocked.reached, v.id);
  assert.equal(driver.volumes.get(v.id)?.partial, true);
  await driver.stop();
  await assert.rejects(create, /stopped/);
  await driver.cleanup([v.id], []);
  assert.equal(driver.volumes.has(v.id), false, 'the partial volume is gone even though its id is known');
  await driver.createVolume(v);
  assert.equal(driver.volumes.get(v.id)?.partial, false, 'the driver works again after a stop');
});

test('fake driver: a released block lets the operation finish', async () => {
  const driver = new FakeVolumeDriver();
  const blocked = driver.block('createSnapshot');
  const v = { id: randomUUID(), size: 1, provider_location: null };
  await driver.createVolume(v);
  const snapshot = driver.createSnapshot({ id: randomUUID(), volume_id: v.id, volume_size: 1, provider_location: null }, v);
  await blocked.reached;
  blocked.release();
  assert.match(String((await snapshot).provider_location), /^fake:snapshot-/);
});
