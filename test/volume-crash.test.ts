import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cloud } from './cloud.js';

/**
 * A crash in the middle of a volume create: `stratus up` (every role,
 * the volume agent with its `file` backend among them) is killed with
 * SIGKILL while a volume is being copied from a 512 MiB image, then started
 * again on the same data directory. The volume must end in `error` (or
 * `available`, had the agent finished it), never stay `creating`, and the
 * backend's directory must hold no file that no volume owns.
 */
let cloud: Cloud;
let work: string;

before(async () => {
  cloud = await Cloud.create();
  await cloud.start();
  work = path.join(path.dirname(cloud.dataDir), 'work');
  fs.mkdirSync(work);
});

after(async () => {
  await cloud.stop();
  fs.rmSync(path.dirname(cloud.dataDir), { recursive: true, force: true });
});

test('a crash mid-create leaves the volume in error (never creating) and no orphaned file', async () => {
  const image = path.join(work, 'big.raw');
  fs.writeFileSync(image, Buffer.alloc(512 * 1024 * 1024, 'crash-test-'));
  cloud.json(['image', 'create', '--disk-format', 'raw', '--container-format', 'bare', '--file', image, 'big-image']);
  fs.rmSync(image);
  const volume = cloud.json<{ id: string }>(['volume', 'create', '--size', '1', '--image', 'big-image', 'v-crash']);
  const backendDir = path.join(cloud.dataDir, 'volumes', 'file');
  const ownFiles = (): string[] => (fs.existsSync(backendDir) ? fs.readdirSync(backendDir).filter((f) => f.includes(volume.id)) : []);
  // Kill as soon as the agent has begun writing the volume's file.
  let status = 'creating';
  for (let i = 0; i < 2000 && ownFiles().length === 0; i++) {
    status = cloud.json<{ status: string }>(['volume', 'show', volume.id]).status;
    assert.equal(status, 'creating', 'the create is still running when its file appears');
    await sleep(10);
  }
  assert.ok(ownFiles().length > 0, 'the agent began writing the volume');
  await cloud.kill();
  assert.ok(ownFiles().length > 0, 'a partial file is left by the crash');

  await cloud.start();
  let shown = cloud.json<{ status: string }>(['volume', 'show', volume.id]);
  for (let i = 0; i < 240 && shown.status === 'creating'; i++) {
    await sleep(250);
    shown = cloud.json<{ status: string }>(['volume', 'show', volume.id]);
  }
  assert.ok(['error', 'available'].includes(shown.status), `after the restart the volume is error or available, not ${shown.status}`);
  const volumes = cloud.json<{ ID: string }[]>(['volume', 'list', '--all-projects']).map((v) => v.ID);
  const orphans = fs.readdirSync(backendDir).filter((f) => !volumes.some((id) => f.includes(id)));
  assert.deepEqual(orphans, [], 'no file without a volume');
  if (shown.status === 'error') assert.deepEqual(ownFiles(), [], 'an errored create leaves no file');
  // The volume can be deleted, and the backend creates again.
  const deleted = cloud.openstack(['--os-cloud', 'stratus', 'volume', 'delete', volume.id]);
  assert.equal(deleted.status, 0, deleted.stderr);
  const fresh = cloud.json<{ id: string }>(['volume', 'create', '--size', '1', 'v-after']);
  let after = cloud.json<{ status: string }>(['volume', 'show', fresh.id]);
  for (let i = 0; i < 240 && after.status === 'creating'; i++) {
    await sleep(250);
    after = cloud.json<{ status: string }>(['volume', 'show', fresh.id]);
  }
  assert.equal(after.status, 'available');
});
