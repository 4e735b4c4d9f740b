import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceClient } from '../core/auth/service-client.js';
import type { Logger } from '../core/logging.js';

/** The repository root (this file is dist/src/compute/test-image.js). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const IMAGES = path.join(ROOT, 'images');

/** Where a built test image and the KVM probe's kernel and initramfs are. */
export interface TestImageFiles {
  image: string;
  probeKernel: string;
  probeInitrd: string;
}

/** Every file under `dir`, sorted, relative to it. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full).map((f) => path.join(entry.name, f)));
    else if (!entry.name.endsWith('.test.ts')) out.push(entry.name);
  }
  return out.sort();
}

/** A digest of the image's recipe (the build script and the guest's files): a new recipe is a new image. */
export function testImageRecipe(): string {
  const hash = crypto.createHash('sha256');
  for (const file of filesUnder(IMAGES)) {
    hash.update(file).update('\0').update(fs.readFileSync(path.join(IMAGES, file))).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The build cache: one directory per recipe under `$STRATUS_IMAGE_CACHE`,
 * else `$XDG_CACHE_HOME/stratus/test-image`, else `~/.cache/stratus/test-image`.
 * Shared by every data directory of the machine (tests make many).
 */
export function testImageCacheDir(): string {
  const base = process.env.STRATUS_IMAGE_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'stratus', 'test-image');
  return path.join(base, testImageRecipe());
}

/** The files of the current recipe, whether built or not. */
export function testImageFiles(dir = testImageCacheDir()): TestImageFiles {
  return { image: path.join(dir, 'stratus-test.qcow2'), probeKernel: path.join(dir, 'probe-vmlinuz'), probeInitrd: path.join(dir, 'probe-initrd') };
}

/** Builds (once per recipe and machine) are shared by concurrent callers of this process. */
let building: Promise<TestImageFiles> | null = null;

/**
 * Builds the test guest image with `images/build-test-image.sh` unless this
 * recipe is built already; the result (image and probe files) is in the
 * cache directory. The script itself makes concurrent builds of one file
 * wait for each other (flock, released when a builder dies) and returns at
 * once when its inputs are unchanged; its stamp file, written last, marks a
 * finished build, so a built recipe starts no process at all.
 */
export async function ensureTestImage(log: Logger): Promise<TestImageFiles> {
  building ??= buildOnce(log).finally(() => {
    building = null;
  });
  return building;
}

async function buildOnce(log: Logger): Promise<TestImageFiles> {
  const files = testImageFiles();
  if (fs.existsSync(`${files.image}.stamp`)) return files;
  log.info({ dir: path.dirname(files.image) }, 'building the test guest image (images/build-test-image.sh)');
  const started = Date.now();
  const output: string[] = [];
  const status = await new Promise<number>((resolve, reject) => {
    const child = spawn('bash', [path.join(IMAGES, 'build-test-image.sh'), files.image], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      output.push(chunk.toString());
      if (output.length > 200) output.shift();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (code) => resolve(code ?? 1));
  });
  if (status !== 0) throw new Error(`images/build-test-image.sh failed (exit ${status}): ${output.join('').slice(-2000)}`);
  for (const file of Object.values(files)) if (!fs.existsSync(file)) throw new Error(`images/build-test-image.sh did not write ${file}`);
  log.info({ dir: path.dirname(files.image), seconds: Math.round((Date.now() - started) / 1000) }, 'test guest image built');
  return files;
}

/** What `registerTestImage` needs of a client: `ServiceClient.request` against the image service. */
export type ImageRequests = Pick<ServiceClient, 'request'>;

/**
 * Registers the test image in the image service as a public qcow2 image
 * named `name` unless an active image of that name and checksum is there.
 * `client` acts as a service user with the admin role (glance's).
 *
 * An older build of that name is not deleted: servers booted from it still
 * need it to rebuild, resize, unshelve or be evacuated. It is renamed
 * `<name> (superseded <created_at>)` and hidden (`os_hidden`), so
 * `--image <name>` means the new build and default listings show one.
 */
export async function registerTestImage(client: ImageRequests, name: string, file: string, log: Logger): Promise<string> {
  const data = fs.readFileSync(file);
  const md5 = crypto.createHash('md5').update(data).digest('hex');
  const listed = await client.request<{ images: { id: string; checksum: string | null; status: string; created_at: string }[] }>('image', 'GET', `/v2/images?name=${encodeURIComponent(name)}&visibility=public`);
  if (listed.status >= 400) throw new Error(`could not list images: ${listed.status}`);
  const same = listed.body.images.find((i) => i.status === 'active' && i.checksum === md5);
  if (same) return same.id;
  const created = await client.request<{ id: string }>('image', 'POST', '/v2/images', {
    body: { name, disk_format: 'qcow2', container_format: 'bare', visibility: 'public', min_disk: 1, min_ram: 128, os_distro: 'debian', os_type: 'linux', hw_disk_bus: 'virtio', hw_vif_model: 'virtio' },
  });
  if (created.status >= 400) throw new Error(`could not create the image ${name}: ${created.status}`);
  const put = await client.request('image', 'PUT', `/v2/images/${created.body.id}/file`, { body: data, raw: true, headers: { 'Content-Type': 'application/octet-stream' } });
  if (put.status >= 400) throw new Error(`could not upload the image ${name}: ${put.status}`);
  for (const old of listed.body.images) {
    const ops = [
      { op: 'replace', path: '/name', value: `${name} (superseded ${old.created_at})` },
      { op: 'replace', path: '/os_hidden', value: true },
    ];
    const moved = await client.request('image', 'PATCH', `/v2/images/${old.id}`, { body: ops, headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' } });
    if (moved.status >= 400 && moved.status !== 404) log.warn({ image_id: old.id, status: moved.status }, 'could not set an older test image aside');
  }
  log.info({ image_id: created.body.id, name }, 'test guest image registered');
  return created.body.id;
}
