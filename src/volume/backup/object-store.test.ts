import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { ServiceClient } from '../../core/auth/service-client.js';
import { freePort } from '../../core/testing.js';
import { startObjectProxy, type RunningObjectProxy } from '../../object/proxy/server.js';
import { createStorageCluster, type StorageCluster } from '../../object/storage/testing.js';
import { expectFault } from '../api/volume-fixtures.test-util.js';
import type { FileVolumeDriver } from '../drivers/file.js';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { createVolumeTestCloud, type TestUser, type TestVolumeCloud } from '../testing.js';
import { ChunkedBackupDriver, type BackupMetadata } from './chunked.js';
import type { BackupRecord } from './driver.js';
import { accountUrl, swiftStores } from './swift.js';

/**
 * Backups kept in a real object store: the object proxy and a storage
 * cluster of three nodes on identity's catalog (`object-store`), the volume
 * service with a `file` backend (qcow2 volumes made by qemu-img) and the
 * `object` backup driver, driven through the Block Storage API.
 */

const run = promisify(execFile);
const CHUNK = 256 * 1024;
let cloud: TestVolumeCloud;
let cluster: StorageCluster;
let proxy: RunningObjectProxy;
let proxyUrl: string;

before(async () => {
  const port = await freePort();
  proxyUrl = `http://127.0.0.1:${port}`;
  cloud = await createVolumeTestCloud({
    overrides: {
      'volume.backends': { file: { driver: 'file', volume_backend_name: '', path: '', format: 'qcow2', capacity_gb: 0, availability_zone: '' } },
      'volume.backup_driver': 'object',
      'volume.backup_chunk_size': CHUNK,
    },
    services: [{ type: 'object-store', name: 'swift', url: `${proxyUrl}/v1/AUTH_$(project_id)s` }],
    serviceUsers: [{ name: 'swift', password: 'swift-secret' }],
  });
  cluster = await createStorageCluster({ devices: 3, replicas: 3, partPower: 6 });
  proxy = await startObjectProxy(cloud.config, { identity: { authUrl: cloud.urls.identity, password: 'swift-secret' }, port, host: '127.0.0.1', storage: cluster.client, rings: cluster.rings, salt: cluster.salt });
});
after(async () => {
  await proxy?.stop();
  await cluster?.close();
  await cloud?.close();
});

/** A request to the object store as `user`. */
async function swift(user: TestUser, method: string, pathAndQuery: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${proxyUrl}/v1/AUTH_${user.projectId}${pathAndQuery}`, { method, headers: { 'X-Auth-Token': user.token } });
  return { status: res.status, text: await res.text() };
}

/** The names in a container of the user's account with that prefix. */
async function listing(user: TestUser, container: string, prefix: string): Promise<string[]> {
  const res = await swift(user, 'GET', `/${container}?format=json&prefix=${encodeURIComponent(prefix)}`);
  if (res.status === 404 || res.status === 204) return [];
  assert.equal(res.status, 200, res.text);
  return (JSON.parse(res.text) as { name: string }[]).map((o) => o.name);
}

/** An active raw image holding `data`. */
async function image(data: Buffer): Promise<string> {
  const created = await cloud.image('POST', '/v2/images', { payload: { name: 'backup source', container_format: 'bare', disk_format: 'raw', visibility: 'public' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const put = await cloud.image('PUT', `/v2/images/${created.body.id}/file`, { payload: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(put.status, 204);
  return String(created.body.id);
}

async function waitBackup(id: string, done: (b: Record<string, any> | null) => boolean): Promise<Record<string, any> | null> {
  let last: Record<string, any> | null = null;
  for (let i = 0; i < 1500; i++) {
    const res = await cloud.request('GET', `/backups/${id}`);
    last = res.status === 404 ? null : (res.body.backup ?? null);
    if (done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`backup ${id} did not reach the expected state; last seen: ${JSON.stringify(last)}`);
}

/** The first `n` bytes of a volume's file, as raw data. */
async function volumeBytes(volumeId: string, n: number): Promise<Buffer> {
  const driver = cloud.agents.agents[0]?.driver as FileVolumeDriver;
  const raw = path.join(cloud.config.data_dir, `check-${randomUUID()}.raw`);
  await run('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', driver.volumePath(volumeId), raw]);
  try {
    const handle = await fs.promises.open(raw, 'r');
    try {
      const buffer = Buffer.alloc(n);
      await handle.read(buffer, 0, n, 0);
      return buffer;
    } finally {
      await handle.close();
    }
  } finally {
    fs.rmSync(raw, { force: true });
  }
}

test('accountUrl puts the project in the endpoint after the reseller prefix', () => {
  assert.equal(accountUrl('http://h:8080/v1/AUTH_abc', 'def'), 'http://h:8080/v1/AUTH_def');
  assert.equal(accountUrl('http://h:8080/v1/AUTH_abc/', null), 'http://h:8080/v1/AUTH_abc');
  assert.equal(accountUrl('http://h:8080/v1/KEY_abc', 'x y'), 'http://h:8080/v1/KEY_x%20y');
  assert.equal(accountUrl('http://h:8080/v1', 'p'), 'http://h:8080/v1/AUTH_p');
});

test('a volume is backed up into the project account, restored byte for byte, incrementally too, and deleted', async () => {
  const data = randomBytes(3 * CHUNK + 1000);
  const imageId = await image(data);
  const made = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1, imageRef: imageId, metadata: { tier: 'gold' } } } });
  assert.equal(made.status, 202, JSON.stringify(made.body));
  const volume = await cloud.waitVolume(made.body.volume.id, (v) => v.status !== 'creating');
  assert.equal(volume.status, 'available');

  const res = await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: volume.id, name: 'full', container: 'tempest-like' } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const full = await waitBackup(res.body.backup.id, (b) => b?.status !== 'creating');
  assert.equal(full?.status, 'available', JSON.stringify(full));
  assert.equal(full?.object_count, 4);
  const prefix = `${volume.id}/backup_${full?.id}/`;
  const names = await listing(cloud.alpha, 'tempest-like', prefix);
  assert.deepEqual(names, ['00000', '00001', '00002', '00003', 'metadata'].map((n) => `${prefix}${n}`), 'the objects are in the account of alpha\'s project');
  const meta = JSON.parse((await swift(cloud.alpha, 'GET', `/tempest-like/${prefix}metadata`)).text) as BackupMetadata;
  assert.equal(meta.backup_id, full?.id);
  assert.equal(meta.chunk_size, CHUNK);
  assert.equal(meta.objects.length, 4);
  assert.equal(meta.objects[0]?.compression, 'gzip');
  assert.deepEqual((meta.volume_meta as Record<string, unknown>)['volume-metadata'], { tier: 'gold' });
  assert.equal((await cloud.waitVolume(volume.id, (v) => v.status !== 'backing-up')).status, 'available');

  const restore = await cloud.request('POST', `/backups/${full?.id}/restore`, { user: cloud.alpha, payload: { restore: {} } });
  assert.equal(restore.status, 202, JSON.stringify(restore.body));
  const restored = await cloud.waitVolume(restore.body.restore.volume_id, (v) => v.status !== 'restoring-backup');
  assert.equal(restored.status, 'available');
  assert.equal(restored.bootable, 'true', 'the image metadata came back with the data');
  assert.equal(restored.metadata.tier, 'gold');
  assert.deepEqual(await volumeBytes(restored.id, data.length + 4096), Buffer.concat([data, Buffer.alloc(4096)]));

  // A second volume whose data differs in one chunk: its full backup, then an incremental one with nothing new.
  const changed = Buffer.from(data);
  randomBytes(10).copy(changed, CHUNK + 5);
  const second = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 1, imageRef: await image(changed) } } });
  const secondVolume = await cloud.waitVolume(second.body.volume.id, (v) => v.status !== 'creating');
  const baseRes = await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: secondVolume.id, container: 'tempest-like' } } });
  const base = await waitBackup(baseRes.body.backup.id, (b) => b?.status !== 'creating');
  assert.equal(base?.status, 'available');
  const incRes = await cloud.request('POST', '/backups', { user: cloud.alpha, payload: { backup: { volume_id: secondVolume.id, incremental: true, container: 'tempest-like' } } });
  const inc = await waitBackup(incRes.body.backup.id, (b) => b?.status !== 'creating');
  assert.equal(inc?.status, 'available', JSON.stringify(inc));
  assert.equal(inc?.object_count, 0, 'nothing changed since its parent');
  const target = await cloud.request('POST', '/volumes', { user: cloud.alpha, payload: { volume: { size: 2 } } });
  const targetVolume = await cloud.waitVolume(target.body.volume.id, (v) => v.status !== 'creating');
  await cloud.request('POST', `/backups/${inc?.id}/restore`, { user: cloud.alpha, payload: { restore: { volume_id: targetVolume.id } } });
  assert.equal((await cloud.waitVolume(targetVolume.id, (v) => v.status !== 'restoring-backup')).status, 'available');
  assert.deepEqual(await volumeBytes(targetVolume.id, changed.length), changed);

  for (const id of [inc?.id, base?.id, full?.id]) {
    assert.equal((await cloud.request('DELETE', `/backups/${id}`, { user: cloud.alpha })).status, 202);
    await waitBackup(String(id), (b) => b === null);
  }
  assert.deepEqual(await listing(cloud.alpha, 'tempest-like', ''), [], 'every object is gone');
  const driver = cloud.agents.agents[0]?.driver as FileVolumeDriver;
  assert.deepEqual(
    fs.readdirSync(driver.dir).filter((f) => f.endsWith('.part')),
    [],
    'no temporary copy is left',
  );
});

test('an administrator of another project deletes a backup with the cinder token when its own is refused; without rights it is error_deleting', async () => {
  const made = await cloud.request('POST', '/volumes', { user: cloud.beta, payload: { volume: { size: 1 } } });
  const volume = await cloud.waitVolume(made.body.volume.id, (v) => v.status !== 'creating');
  const res = await cloud.request('POST', '/backups', { user: cloud.beta, payload: { backup: { volume_id: volume.id } } });
  const b = await waitBackup(res.body.backup.id, (x) => x?.status !== 'creating');
  assert.equal(b?.status, 'available', JSON.stringify(b));
  assert.deepEqual(await listing(cloud.beta, 'volumebackups', `${volume.id}/`), [`${volume.id}/backup_${b?.id}/metadata`], 'an empty volume stores its metadata only');
  // The admin's token is refused on beta's account, and so is the cinder user's (it is no reseller administrator here).
  assert.equal((await cloud.request('DELETE', `/backups/${b?.id}`)).status, 202);
  const failed = await waitBackup(String(b?.id), (x) => x?.status !== 'deleting');
  assert.equal(failed?.status, 'error_deleting');
  assert.match(String(failed?.fail_reason), /Object storage refused to list container volumebackups \(403\)/);
  assert.equal((await cloud.request('DELETE', `/backups/${b?.id}`, { user: cloud.beta })).status, 400, 'error_deleting is not deletable without force');
  await cloud.request('POST', `/backups/${b?.id}/action`, { payload: { 'os-reset_status': { status: 'error' } } });
  assert.equal((await cloud.request('DELETE', `/backups/${b?.id}`, { user: cloud.beta })).status, 202);
  await waitBackup(String(b?.id), (x) => x === null);
  assert.deepEqual(await listing(cloud.beta, 'volumebackups', `${volume.id}/`), []);
});

test('the driver alone: the service account (single_user), a missing metadata object, and a refused user token', async () => {
  const client = new ServiceClient({ authUrl: cloud.urls.identity, username: 'swift', password: 'swift-secret', projectName: 'service' });
  const driver = new ChunkedBackupDriver({ service: 'test', stores: swiftStores(client), defaultContainer: 'own', chunkSize: CHUNK, compression: 'zlib', perProject: false });
  const fake = new FakeVolumeDriver();
  const volume = { id: randomUUID(), size: 1, provider_location: null };
  await fake.createVolume(volume);
  const content = randomBytes(CHUNK + 10);
  const record = fake.volumes.get(volume.id);
  assert.ok(record);
  record.content = content;
  const backup: BackupRecord = { id: randomUUID(), volume_id: volume.id, project_id: cloud.alpha.projectId, snapshot_id: null, parent_id: null, display_name: null, display_description: null, container: null, service_metadata: null, created_at: new Date().toISOString() };
  const reader = await fake.openBackupSource({ volume });
  // Beta's token may not write into the service's account: the store goes on with the service's own token.
  const outcome = await driver.backup(backup, reader, { parent: null, volumeMeta: {}, access: { userToken: cloud.beta.token } });
  assert.equal(outcome.container, 'own');
  assert.equal(outcome.object_count, 2);
  assert.deepEqual(JSON.parse(outcome.service_metadata), { prefix: `${volume.id}/backup_${backup.id}`, project: null });
  const done = { ...backup, container: outcome.container, service_metadata: outcome.service_metadata };
  const target = { id: randomUUID(), size: 1, provider_location: null };
  await fake.createVolume(target);
  const writer = await fake.openRestoreTarget(target, { isNew: true });
  await driver.restore(done, writer, { isNew: true, access: { userToken: null } });
  await writer.commit();
  assert.deepEqual(fake.volumes.get(target.id)?.content, content);
  await driver.verify(done, { access: { userToken: null } });
  await driver.delete(done, { access: { userToken: null } });
  await assert.rejects(driver.verify(done, { access: { userToken: null } }), /The metadata of backup .* is missing from container own/);
  await driver.delete(done, { access: { userToken: null } });
  expectFault(await cloud.request('GET', `/backups/${backup.id}`), 404);
});
