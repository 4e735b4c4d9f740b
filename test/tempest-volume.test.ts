import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cloud } from './cloud.js';
import { baseConf, runTempest } from './tempest.js';

/**
 * Tempest's block storage API tests (`tempest.api.volume`) against
 * `./stratus up` with two `file` backends (real raw files made by
 * qemu-img, raw so that attached volumes can grow; the multi-backend and
 * retype tests need two) and two fake
 * hypervisor hosts for the tests that attach volumes to servers.
 * [volume-feature-enabled] says what the cloud does and does not do; the
 * tests of what it does not are skipped (the report of each run lists them).
 */
let cloud: Cloud;
let workspace: string;

before(async () => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-tempest-volume-'));
  const config = path.join(workspace, 'stratus.yaml');
  fs.writeFileSync(
    config,
    ['volume:', '  backends:', '    backend-1: { driver: file, format: raw, volume_backend_name: backend-1 }', '    backend-2: { driver: file, format: raw, volume_backend_name: backend-2 }', ''].join('\n'),
  );
  cloud = await Cloud.create('tempest-admin-secret', { STRATUS_COMPUTE__FAKE_HOSTS: '2', STRATUS_CONFIG: config });
  await cloud.start();
});
after(async () => {
  await cloud.stop();
});

/** A public qcow2 image of 16 MiB virtual size with 1 MiB of data; its id. */
function uploadImage(name: string): string {
  const raw = path.join(workspace, `${name}.raw`);
  const fd = fs.openSync(raw, 'w');
  fs.writeSync(fd, Buffer.alloc(1024 * 1024, name));
  fs.ftruncateSync(fd, 16 * 1024 * 1024);
  fs.closeSync(fd);
  const file = path.join(workspace, `${name}.qcow2`);
  const made = spawnSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  return cloud.json<{ id: string }>(['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--public', '--file', file, name]).id;
}

/** A flavor's id by name (the bootstrap's defaults). */
function flavorId(name: string): string {
  return cloud.json<{ id: string }>(['flavor', 'show', name]).id;
}

function tempestConf(options: { image: string; imageAlt: string; flavor: string; flavorAlt: string; publicNetworkId: string }): string {
  return `${baseConf(cloud, workspace, { services: ['nova', 'glance', 'neutron', 'cinder'] })}
[network]
endpoint_type = public
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
public_network_id = ${options.publicNetworkId}
floating_network_name = public

[validation]
# Fake servers run no guest: nothing to log in to.
run_validation = False

[compute]
endpoint_type = publicURL
image_ref = ${options.image}
image_ref_alt = ${options.imageAlt}
flavor_ref = ${options.flavor}
flavor_ref_alt = ${options.flavorAlt}
build_interval = 1
build_timeout = 60
min_microversion = 2.1
max_microversion = 2.93

[compute-feature-enabled]
attach_encrypted_volume = False
volume_multiattach = False

[volume]
catalog_type = volumev3
endpoint_type = publicURL
build_interval = 1
build_timeout = 120
backend_names = backend-1,backend-2
storage_protocol = NBD
vendor_name = Open Source
disk_format = qcow2
volume_size = 1
min_microversion = 3.0
max_microversion = 3.70

[volume-feature-enabled]
multi_backend = True
snapshot = True
clone = True
# Backups go to object storage (the object service of the same cloud).
backup = True
manage_snapshot = False
manage_volume = False
extend_attached_volume = True
extend_attached_encrypted_volume = False
api_extensions = all
`;
}

test('Tempest block storage API tests: at least 85% of those that run pass', async () => {
  const conf = tempestConf({
    image: uploadImage('tempest-image'),
    imageAlt: uploadImage('tempest-image-alt'),
    flavor: flavorId('m1.tiny'),
    flavorAlt: flavorId('m1.small'),
    publicNetworkId: cloud.json<{ id: string }>(['network', 'show', 'public']).id,
  });
  const { passed, failed, skipped, output } = await runTempest(workspace, conf, '^tempest\\.api\\.volume\\.', { concurrency: 4 });
  process.stdout.write(`tempest volume: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  const failures = output.split('\n').filter((line) => /\.\.\. FAILED/.test(line));
  if (failures.length > 0) process.stdout.write(`${failures.join('\n')}\n`);
  assert.ok(passed > 0, `nothing passed:\n${output.slice(-3000)}`);
  assert.ok(passed / (passed + failed) >= 0.85, `only ${passed} of ${passed + failed} passed:\n${output.slice(-8000)}`);
});
