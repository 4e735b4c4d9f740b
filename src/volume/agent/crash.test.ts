import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { FileVolumeDriver } from '../drivers/file.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

/**
 * A crash of the volume agents in the middle of a create, through the API
 * and the real file driver: `qemu-img create` is made to hang after writing
 * its `.part` file (a wrapper script), the agents are stopped as a crash
 * and started again.
 */
let cloud: TestVolumeCloud;
let dir: string;
let bin: string;

before(async () => {
  bin = fs.mkdtempSync('/tmp/stratus-qemu-img-');
  const wrapper = path.join(bin, 'qemu-img');
  fs.writeFileSync(wrapper, '#!/bin/sh\nif [ "$1" = create ]; then qemu-img "$@" && exec sleep 600; fi\nexec qemu-img "$@"\n', { mode: 0o755 });
  cloud = await createVolumeTestCloud({
    overrides: {
      'volume.qemu_img': wrapper,
      'volume.backends': { file: { driver: 'file', volume_backend_name: '', path: '', format: 'qcow2', capacity_gb: 0, availability_zone: '' } },
    },
  });
  dir = (cloud.agents.agents[0]!.driver as FileVolumeDriver).dir;
});
after(async () => {
  await cloud.close();
  fs.rmSync(bin, { recursive: true, force: true });
});

test('agents stopped while qemu-img writes a volume leave it error (never creating) and no file once restarted', async () => {
  const res = await cloud.request('POST', '/volumes', { payload: { volume: { size: 1, name: 'crash' } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const id = String(res.body.volume.id);
  for (let i = 0; i < 500 && !fs.existsSync(path.join(dir, `volume-${id}.qcow2.part`)); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(fs.existsSync(path.join(dir, `volume-${id}.qcow2.part`)), 'the create is under way');
  assert.equal((await cloud.request('GET', `/volumes/${id}`)).body.volume.status, 'creating');
  await cloud.restartAgents();
  const volume = await cloud.waitVolume(id, (v) => v.status !== 'creating');
  assert.equal(volume.status, 'error');
  assert.deepEqual(fs.readdirSync(dir), [], 'the partial file is removed');
});
