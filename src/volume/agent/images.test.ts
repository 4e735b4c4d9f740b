import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { FileVolumeDriver } from '../drivers/file.js';
import { AgentRpc } from '../rpc.js';
import { messagesOf, scheduleVolume, settled, waitRow } from '../scheduler/backend-fixtures.test-util.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

const run = promisify(execFile);
let cloud: TestVolumeCloud;
let driver: FileVolumeDriver;

before(async () => {
  cloud = await createVolumeTestCloud({
    overrides: { 'volume.backends': { file: { driver: 'file', volume_backend_name: '', path: '', format: 'qcow2', capacity_gb: 0, availability_zone: '' } } },
  });
  driver = cloud.agents.agents[0]!.driver as FileVolumeDriver;
});
after(async () => {
  await cloud.close();
});

/** An active image with `data`. */
async function image(data: Buffer, fields: Record<string, unknown>): Promise<string> {
  const created = await cloud.image('POST', '/v2/images', { payload: { name: 'test image', container_format: 'bare', ...fields } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = String(created.body.id);
  const put = await cloud.image('PUT', `/v2/images/${id}/file`, { payload: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(put.status, 204, JSON.stringify(put.body));
  return id;
}

test('the file backend runs the file driver and reports its file system', async () => {
  assert.equal(driver.type, 'file');
  assert.equal(driver.dir, path.resolve(cloud.config.data_dir, 'volumes', 'file'));
  const row = await cloud.volume.db.selectFrom('service').select('capabilities').where('host', '=', 'test-host@file').executeTakeFirstOrThrow();
  const report = JSON.parse(row.capabilities ?? '{}');
  assert.equal(report.volume_backend_name, 'file');
  assert.equal(report.pools[0].thin_provisioning_support, true);
  assert.ok(report.pools[0].total_capacity_gb > 0);
});

test('a volume from an image holds its data, is bootable, and records the image metadata', async () => {
  const data = randomBytes(300 * 1024);
  const imageId = await image(data, { disk_format: 'raw', hw_disk_bus: 'scsi', min_disk: 1 });
  const volume = await scheduleVolume(cloud, { image_id: imageId }, { source: { kind: 'image', image_id: imageId } });
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'available');
  assert.equal(row.bootable, 1);
  assert.equal(row.provider_location, driver.volumePath(volume.id));
  const meta = Object.fromEntries((await cloud.volume.db.selectFrom('volume_glance_metadata').select(['key', 'value']).where('volume_id', '=', volume.id).execute()).map((m) => [m.key, m.value]));
  assert.deepEqual(
    { ...meta, checksum: meta.checksum ? 'set' : 'unset' },
    { image_id: imageId, image_name: 'test image', disk_format: 'raw', container_format: 'bare', min_disk: '1', min_ram: '0', size: String(data.length), checksum: 'set', hw_disk_bus: 'scsi' },
  );
  const source = path.join(cloud.config.data_dir, 'source.raw');
  fs.writeFileSync(source, data);
  const compared = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', source, driver.volumePath(volume.id)]);
  assert.match(compared.stdout, /Images are identical/);
});

test('an image whose disk does not fit is error with the image message, not rescheduled, and leaves no file', async () => {
  const qcow2 = path.join(cloud.config.data_dir, 'big.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '2G']);
  const imageId = await image(fs.readFileSync(qcow2), { disk_format: 'qcow2' });
  const volume = await scheduleVolume(cloud, { image_id: imageId }, { source: { kind: 'image', image_id: imageId } });
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'error');
  assert.deepEqual(JSON.parse(row.scheduling_attempts ?? '[]'), ['test-host@file']);
  assert.deepEqual((await messagesOf(cloud, volume.id)).map((m) => m.event_id), ['VOLUME_VOLUME_005_007']);
  assert.deepEqual(fs.readdirSync(driver.dir).filter((n) => n.includes(volume.id)), []);
});

test('an image that is gone fails the create without a reschedule', async () => {
  const volume = await scheduleVolume(cloud, {}, { source: { kind: 'image', image_id: '7a0d9d8d-0000-4000-8000-000000000000' } });
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'error');
  assert.deepEqual((await messagesOf(cloud, volume.id)).map((m) => m.event_id), ['VOLUME_VOLUME_005_001']);
});

test('upload to image streams the volume converted to the image format, and restores the volume status', async () => {
  const volume = await scheduleVolume(cloud, { size: 1 });
  const row = await settled(cloud, volume.id);
  assert.equal(row.status, 'available');
  await cloud.volume.db.updateTable('volume').set({ status: 'uploading' }).where('id', '=', volume.id).execute();
  const created = await cloud.image('POST', '/v2/images', { payload: { name: 'from volume', disk_format: 'qcow2', container_format: 'bare' } });
  const imageId = String(created.body.id);
  const agentVolume = { id: row.id, size: row.size, host: String(row.host), provider_location: row.provider_location, project_id: row.project_id };
  await new AgentRpc(cloud.bus).copyVolumeToImage(agentVolume, { id: imageId, disk_format: 'qcow2', container_format: 'bare' }, 'available');
  await waitRow(cloud, volume.id, (r) => r?.status === 'available');
  const shown = await cloud.image('GET', `/v2/images/${imageId}`);
  assert.equal(shown.body.status, 'active');
  assert.equal(shown.body.virtual_size ?? 1024 ** 3, 1024 ** 3);
  const res = await fetch(`${cloud.urls.image}/v2/images/${imageId}/file`, { headers: { 'X-Auth-Token': cloud.admin.token } });
  const head = Buffer.from(await res.arrayBuffer()).subarray(0, 4);
  assert.deepEqual(head, Buffer.from([0x51, 0x46, 0x49, 0xfb]));
  assert.deepEqual(fs.readdirSync(driver.dir).filter((n) => n.startsWith('upload-')), [], 'the temporary file is gone');
});

test('a failed upload restores the status, records a message and deletes the image', async () => {
  const volume = await scheduleVolume(cloud, { size: 1 });
  const row = await settled(cloud, volume.id);
  await cloud.volume.db.updateTable('volume').set({ status: 'uploading' }).where('id', '=', volume.id).execute();
  const created = await cloud.image('POST', '/v2/images', { payload: { name: 'bad format', disk_format: 'ova', container_format: 'bare' } });
  const imageId = String(created.body.id);
  await new AgentRpc(cloud.bus).copyVolumeToImage({ id: row.id, size: row.size, host: String(row.host), provider_location: row.provider_location, project_id: row.project_id }, { id: imageId, disk_format: 'ova', container_format: 'bare' }, 'available');
  await waitRow(cloud, volume.id, (r) => r?.status === 'available');
  assert.deepEqual((await messagesOf(cloud, volume.id)).map((m) => m.event_id), ['VOLUME_VOLUME_003_004']);
  for (let i = 0; i < 100 && (await cloud.image('GET', `/v2/images/${imageId}`)).status !== 404; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal((await cloud.image('GET', `/v2/images/${imageId}`)).status, 404);
});
