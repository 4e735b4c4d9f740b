import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { roleLogger } from '../../../core/logging.js';
import { startQemuAgent } from '../../roles.js';
import { addBootFixtures, createTestCloud, type TestCloud } from '../../test-cloud/testing.js';
import { processAlive } from '../../../core/host-commands.js';
import { deleteTap } from './taps.js';
import { testImage } from './test-image.test-util.js';

/**
 * A compute agent with the qemu driver in a small cloud (identity, image,
 * network, placement, compute): a server booted through the compute API
 * is a real guest built from the image service's image; its console output
 * comes through the API; a guest killed behind the agent's back becomes
 * SHUTOFF (the lifecycle listener); a snapshot is streamed to the image
 * service as qcow2; delete leaves nothing on the host.
 */

let cloud: TestCloud;
let agent: { stop(): Promise<void> } | null = null;
let imageId = '';
let networkId = '';

before(async () => {
  const img = await testImage();
  cloud = await createTestCloud({ hosts: [], overrides: { 'compute.virt_driver': 'qemu', 'compute.qemu.accel': 'tcg', 'compute.qemu.shutdown_timeout': 10, 'compute.qemu.force_config_drive': true, 'compute.vif_plugging_timeout': 0 } });
  // The nova service user's password of test clouds (createTestCloud).
  agent = await startQemuAgent(cloud.config, cloud.bus, { host: 'qemu-host', identity: { authUrl: cloud.urls.identity, password: 'nova-secret' }, log: roleLogger('compute-agent') });
  networkId = (await addBootFixtures(cloud, '10.77.0.0/24')).networkId;
  const image = await cloud.call('image', 'POST', '/v2/images', { user: cloud.admin, payload: { name: 'stratus-test', disk_format: 'qcow2', container_format: 'bare', visibility: 'public' } });
  assert.equal(image.status, 201, JSON.stringify(image.body));
  imageId = image.body.id as string;
  const upload = await fetch(`${cloud.urls.image}/v2/images/${imageId}/file`, {
    method: 'PUT',
    headers: { 'X-Auth-Token': cloud.admin.token, 'Content-Type': 'application/octet-stream' },
    body: Readable.toWeb(createReadStream(img.image)) as unknown as RequestInit['body'],
    duplex: 'half',
  } as RequestInit & { duplex: 'half' });
  assert.equal(upload.status, 204);
});

after(async () => {
  const instances = path.join(cloud.config.data_dir, 'compute', 'instances');
  for (const pid of await fs.readdir('/proc')) {
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('qemu-system') && cmdline.includes(instances)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  // And the taps the driver made for guests a failed step left behind.
  for (const name of await fs.readdir(instances).catch(() => [] as string[])) {
    const record = await fs.readFile(path.join(instances, name, 'guest.json'), 'utf8').catch(() => '{}');
    for (const nic of (JSON.parse(record) as { nics?: { devName: string; tapCreated: boolean }[] }).nics ?? []) {
      if (nic.tapCreated) await deleteTap(nic.devName).catch(() => undefined);
    }
  }
  await agent?.stop();
  await cloud.close();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type Server = { id: string; status: string; 'OS-EXT-STS:power_state': number; 'OS-EXT-STS:vm_state': string; 'OS-EXT-STS:task_state': string | null; fault?: unknown };

async function server(id: string): Promise<Server> {
  const res = await cloud.request('GET', `/servers/${id}`, { user: cloud.admin, version: '2.93' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.server as Server;
}

async function waitStatus(id: string, status: string): Promise<Server> {
  let s = await server(id);
  for (let i = 0; i < 1200 && s.status !== status; i++) {
    assert.notEqual(s.status, 'ERROR', JSON.stringify(s.fault));
    await sleep(100);
    s = await server(id);
  }
  assert.equal(s.status, status);
  return s;
}

async function action(id: string, body: Record<string, unknown>): Promise<{ status: number; body: any }> {
  return cloud.request('POST', `/servers/${id}/action`, { user: cloud.alpha, payload: body, version: '2.93' });
}

async function consoleShows(id: string, text: string): Promise<string> {
  let out = '';
  for (let i = 0; i < 1200; i++) {
    const res = await action(id, { 'os-getConsoleOutput': { length: 100 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    out = res.body.output as string;
    if (out.includes(text)) return out;
    await sleep(100);
  }
  assert.fail(`the console never showed '${text}':\n${out}`);
}

function guestDir(id: string): string {
  return path.join(cloud.config.data_dir, 'compute', 'instances', id);
}

async function guestPid(id: string): Promise<number | null> {
  const pid = Number(await fs.readFile(path.join(guestDir(id), 'qemu.pid'), 'utf8').catch(() => '0'));
  return pid > 0 && (await processAlive(pid, id)) ? pid : null;
}

test('a server of the compute API is a real guest: boot, console, lifecycle, snapshot, delete', async () => {
  const hypervisors = await cloud.request('GET', '/os-hypervisors/detail', { user: cloud.admin, version: '2.88' });
  assert.equal(hypervisors.status, 200, JSON.stringify(hypervisors.body));
  assert.equal(hypervisors.body.hypervisors[0]?.hypervisor_type, 'QEMU');

  const created = await cloud.request('POST', '/servers', { user: cloud.alpha, version: '2.93', payload: { server: { name: 'qemu-vm', imageRef: imageId, flavorRef: '1', networks: [{ uuid: networkId }] } } });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.server.id as string;
  const active = await waitStatus(id, 'ACTIVE');
  assert.equal(active['OS-EXT-STS:power_state'], 1);
  const pid = await guestPid(id);
  assert.ok(pid);
  const out = await consoleShows(id, 'stratus-guest: ready');
  assert.match(out, /stratus-guest: hostname qemu-vm/);

  // Killed behind the agent's back: the lifecycle event makes the server SHUTOFF.
  process.kill(pid, 'SIGKILL');
  const stopped = await waitStatus(id, 'SHUTOFF');
  assert.equal(stopped['OS-EXT-STS:power_state'], 4);
  assert.equal(stopped['OS-EXT-STS:vm_state'], 'stopped');

  assert.equal((await action(id, { 'os-start': null })).status, 202);
  await waitStatus(id, 'ACTIVE');
  assert.ok(await guestPid(id));

  const snap = await action(id, { createImage: { name: 'qemu-vm-snap' } });
  assert.equal(snap.status, 202, JSON.stringify(snap.body));
  const snapId = snap.body.image_id as string;
  let image = await cloud.call('image', 'GET', `/v2/images/${snapId}`, { user: cloud.alpha });
  for (let i = 0; i < 1200 && image.body.status !== 'active'; i++) {
    assert.notEqual(image.body.status, 'killed');
    await sleep(100);
    image = await cloud.call('image', 'GET', `/v2/images/${snapId}`, { user: cloud.alpha });
  }
  assert.equal(image.body.status, 'active');
  assert.equal(image.body.disk_format, 'qcow2');
  assert.ok((image.body.size as number) > 0);
  for (let i = 0; i < 1200 && (await server(id))['OS-EXT-STS:task_state'] !== null; i++) await sleep(100);
  assert.equal((await server(id)).status, 'ACTIVE');
  assert.deepEqual((await fs.readdir(guestDir(id))).filter((f) => f.startsWith('snapshot')), [], 'the snapshot file is gone after the upload');

  const running = await guestPid(id);
  assert.equal((await cloud.request('DELETE', `/servers/${id}`, { user: cloud.alpha })).status, 204);
  for (let i = 0; i < 1200; i++) {
    const res = await cloud.request('GET', `/servers/${id}`, { user: cloud.admin });
    if (res.status === 404) break;
    await sleep(100);
  }
  assert.equal((await cloud.request('GET', `/servers/${id}`, { user: cloud.admin })).status, 404);
  assert.equal(await processAlive(running ?? 0, id), false);
  await assert.rejects(fs.access(guestDir(id)));
});
