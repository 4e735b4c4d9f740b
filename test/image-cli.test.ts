import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { Cloud, type Account, type CliResult } from './cloud.js';

/**
 * The image service (Glance v2) driven by Debian's real clients against a
 * `stratus up` on a fresh data directory: `openstack` for everything it can
 * do, and `glance` (python3-glanceclient, which `openstack` depends on) to
 * upload into an existing image, which `openstack` 6.0 cannot.
 */
let cloud: Cloud;
/** Scratch files of this test file: the qcow2 and what is downloaded. */
let work: string;
/** A 64 MiB qcow2 with 1 MiB of data written into it, and its digests. */
let qcow2: string;
let qcow2Digests: { size: number; md5: string; sha512: string; sha256: string };

/** Members of three projects; A owns the images, B is shared with, C is not. */
const accounts: Record<'a' | 'b' | 'c', Account> = {
  a: { user: 'img-user-a', password: 'img-pw-a-1', project: 'img-project-a', projectId: '' },
  b: { user: 'img-user-b', password: 'img-pw-b-1', project: 'img-project-b', projectId: '' },
  c: { user: 'img-user-c', password: 'img-pw-c-1', project: 'img-project-c', projectId: '' },
};

const MiB = 1024 * 1024;

before(async () => {
  cloud = await Cloud.create();
  work = path.join(path.dirname(cloud.dataDir), 'files');
  fs.mkdirSync(work, { recursive: true });
  await cloud.start();
  qcow2 = path.join(work, 'disk.qcow2');
  const made = spawnSync('qemu-img', ['create', '-f', 'qcow2', qcow2, '64M'], { encoding: 'utf8' });
  assert.equal(made.status, 0, `qemu-img create: ${made.stderr}`);
  // Real data in the image, when qemu-io is there (qemu-utils ships it); an empty qcow2 otherwise.
  const written = spawnSync('qemu-io', ['-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0xa5 32M 512k', qcow2], { encoding: 'utf8' });
  if (written.error === undefined) assert.equal(written.status, 0, `qemu-io: ${written.stderr}`);
  qcow2Digests = digests(qcow2);
  for (const account of Object.values(accounts)) cloud.addMember(account);
});

after(async () => {
  await cloud.stop();
  fs.rmSync(path.dirname(cloud.dataDir), { recursive: true, force: true });
});

function digests(file: string): { size: number; md5: string; sha512: string; sha256: string } {
  const data = fs.readFileSync(file);
  const hex = (algorithm: string): string => createHash(algorithm).update(data).digest('hex');
  return { size: data.length, md5: hex('md5'), sha512: hex('sha512'), sha256: hex('sha256') };
}

/**
 * `glance ...` as an account. Standard input is closed: glanceclient uploads
 * whatever a readable standard input holds, and `image-create` must leave
 * the image queued.
 */
function glance(account: Account, args: string[]): CliResult {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...cloud.rc(account) };
  const res = spawnSync('sh', ['-c', 'exec glance "$@" <&-', 'glance', ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { status: res.status ?? 1, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
}

/**
 * The HTTP status that `openstack --debug` logged for a request: the
 * `RESP: [nnn]` after the `REQ: curl ... -X METHOD <url>` whose URL ends with
 * `urlEnd`. Null when there was no such request.
 */
function loggedStatus(debug: string, method: string, urlEnd: string): number | null {
  const lines = debug.split('\n');
  let found: number | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const request = /^REQ: curl .* -X (\S+) (\S+)/.exec(line);
    if (!request || request[1] !== method || !(request[2] ?? '').endsWith(urlEnd)) continue;
    for (let j = i + 1; j < lines.length; j++) {
      const response = /^RESP: \[(\d{3})\]/.exec(lines[j] ?? '');
      if (response) {
        found = Number(response[1]);
        break;
      }
      if ((lines[j] ?? '').startsWith('REQ: ')) break;
    }
  }
  return found;
}

interface ShownImage {
  id: string;
  name: string;
  status: string;
  size?: number | null;
  checksum?: string | null;
  virtual_size?: number | null;
  visibility: string;
  protected: boolean;
  owner: string;
  tags: string[];
  disk_format: string;
  properties: Record<string, unknown>;
}

/** A field of `image show`: base ones are top-level, others (os_hash_*) are under `properties`. */
function field(image: ShownImage, name: string): unknown {
  return (image as unknown as Record<string, unknown>)[name] ?? image.properties[name];
}

function show(account: Account | null, id: string): ShownImage {
  return account ? cloud.asUserJson<ShownImage>(account, ['image', 'show', id]) : cloud.json<ShownImage>(['image', 'show', id]);
}

function list(account: Account | null, args: string[] = []): { ID: string; Name: string; Status: string }[] {
  return account ? cloud.asUserJson(account, ['image', 'list', ...args]) : cloud.json(['image', 'list', ...args]);
}

/** Polls `image show` until the image has `status`; bounded by a number of polls. */
async function waitForStatus(account: Account | null, id: string, status: string, polls = 150): Promise<ShownImage> {
  let image = show(account, id);
  for (let i = 0; i < polls && image.status !== status; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    image = show(account, id);
  }
  assert.equal(image.status, status, `image ${id} did not become ${status}: ${JSON.stringify(image)}`);
  return image;
}

/** A token for an account, for the few checks the CLIs cannot show (an HTTP status behind a generic message). */
function token(account: Account): string {
  return cloud.asUserJson<{ id: string }>(account, ['token', 'issue']).id;
}

/** The files of an image in the default (file) store: the data, or a partial write. */
function storedFiles(imageId: string): string[] {
  const dir = path.join(cloud.dataDir, 'images', 'file');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.startsWith(imageId)) : [];
}

/** Deletes the images at the end of a test, as admin, unprotecting them first; checks they are gone. */
function cleanup(t: TestContext, ids: string[]): void {
  t.after(() => {
    for (const id of ids) {
      if (cloud.openstack(['--os-cloud', 'stratus', 'image', 'show', id]).status !== 0) continue;
      cloud.openstack(['--os-cloud', 'stratus', 'image', 'set', '--unprotected', id]);
      const deleted = cloud.openstack(['--os-cloud', 'stratus', 'image', 'delete', id]);
      assert.equal(deleted.status, 0, `cleanup: image delete ${id}: ${deleted.stderr}`);
      assert.deepEqual(storedFiles(id), [], `cleanup: the data of ${id} is removed with it`);
    }
  });
}

/** Uploads the qcow2 as a new image with `image create --file`; returns its id. */
function createQcow2(account: Account | null, name: string, extra: string[] = []): string {
  const args = ['image', 'create', '--file', qcow2, '--disk-format', 'qcow2', '--container-format', 'bare', ...extra, name];
  const created = account ? cloud.asUserJson<{ id: string }>(account, args) : cloud.json<{ id: string }>(args);
  assert.match(created.id, /^[0-9a-f-]{36}$/, `image create returns an id: ${JSON.stringify(created)}`);
  return created.id;
}

function saveAndCompare(account: Account | null, id: string, name: string): void {
  const out = path.join(work, name);
  const res = account ? cloud.asUser(account, ['image', 'save', '--file', out, id]) : cloud.openstack(['--os-cloud', 'stratus', 'image', 'save', '--file', out, id]);
  assert.equal(res.status, 0, `image save: ${res.stderr}`);
  assert.equal(digests(out).sha256, qcow2Digests.sha256, 'the downloaded image is byte-identical to the uploaded file');
  fs.rmSync(out);
}

function assertActiveQcow2(image: ShownImage): void {
  assert.equal(image.status, 'active', `status: ${JSON.stringify(image)}`);
  assert.equal(image.size, qcow2Digests.size, 'size is the size of the file');
  assert.equal(image.checksum, qcow2Digests.md5, 'checksum is the MD5 of the file');
  assert.equal(field(image, 'os_hash_algo'), 'sha512', 'os_hash_algo');
  assert.equal(field(image, 'os_hash_value'), qcow2Digests.sha512, 'os_hash_value is the SHA-512 of the file');
  assert.equal(image.virtual_size, 64 * MiB, 'virtual_size is the qcow2 disk size (64 MiB)');
  assert.equal(image.disk_format, 'qcow2', 'disk_format');
}

test('image create --file uploads a qcow2; list, show, set, save', (t) => {
  const id = createQcow2(null, 'e2e-qcow2');
  cleanup(t, [id]);
  const shown = show(null, id);
  assertActiveQcow2(shown);
  assert.equal(shown.name, 'e2e-qcow2', 'name');
  assert.equal(field(shown, 'container_format'), 'bare', 'container_format');
  assert.deepEqual(storedFiles(id), [id], 'the data is one file named after the image, no partial write left');

  const listed = list(null).find((i) => i.ID === id);
  assert.deepEqual(listed, { ID: id, Name: 'e2e-qcow2', Status: 'active' }, 'image list shows the image');

  const set = cloud.openstack(['--os-cloud', 'stratus', 'image', 'set', '--property', 'k=v', '--tag', 't', 'e2e-qcow2']);
  assert.equal(set.status, 0, `image set: ${set.stderr}`);
  const updated = show(null, id);
  assert.equal(updated.properties.k, 'v', `property k=v: ${JSON.stringify(updated.properties)}`);
  assert.deepEqual(updated.tags, ['t'], 'tag t');
  assert.equal(updated.checksum, qcow2Digests.md5, 'metadata changes leave the data alone');

  saveAndCompare(null, 'e2e-qcow2', 'saved.qcow2');
});

test('sharing: the owner adds a project, its member accepts, downloads; another project sees nothing', async (t) => {
  const { a, b, c } = accounts;
  const id = createQcow2(a, 'e2e-shared', ['--shared']);
  cleanup(t, [id]);
  assert.equal(show(a, id).visibility, 'shared', 'visibility shared');

  const member = cloud.asUserJson<{ member_id: string; status: string }>(a, ['image', 'add', 'project', id, b.projectId]);
  assert.equal(member.member_id, b.projectId, 'member_id');
  assert.equal(member.status, 'pending', 'a new member is pending');
  assert.ok(!list(b).some((i) => i.ID === id), 'a pending member does not list the image');

  const accept = cloud.asUser(b, ['image', 'set', '--accept', id]);
  assert.equal(accept.status, 0, `image set --accept: ${accept.stderr}`);
  assert.ok(list(b).some((i) => i.ID === id && i.Status === 'active'), 'once accepted, the member lists the image');
  assertActiveQcow2(show(b, id));
  saveAndCompare(b, id, 'shared.qcow2');

  assert.ok(!list(c).some((i) => i.ID === id), 'another project does not list the image');
  const hidden = cloud.asUser(c, ['image', 'show', id]);
  assert.notEqual(hidden.status, 0, 'another project cannot show the image');
  assert.match(hidden.stderr, /No Image found/, hidden.stderr);
  // openstack turns the 404 into "No Image found"; the status itself:
  const res = await fetch(`${cloud.imageUrl}/v2/images/${id}`, { headers: { 'X-Auth-Token': token(c) } });
  assert.equal(res.status, 404, 'GET /v2/images/{id} is 404 for a project the image is not shared with');
  await res.body?.cancel();
  const denied = await fetch(`${cloud.imageUrl}/v2/images/${id}/file`, { headers: { 'X-Auth-Token': token(c) } });
  assert.equal(denied.status, 404, 'and so is its data');
  await denied.body?.cancel();
});

test('image set --public: refused (403) for a member owner, done by admin', (t) => {
  const { a, c } = accounts;
  const id = createQcow2(a, 'e2e-public');
  cleanup(t, [id]);
  const before = show(a, id).visibility;
  const refused = cloud.asUser(a, ['image', 'set', '--public', id]);
  assert.notEqual(refused.status, 0, 'a project member cannot publicize');
  assert.match(refused.stderr, /403/, refused.stderr);
  assert.equal(show(a, id).visibility, before, 'the visibility is unchanged');
  assert.ok(!list(c).some((i) => i.ID === id), 'and other projects still do not see it');

  const done = cloud.openstack(['--os-cloud', 'stratus', 'image', 'set', '--public', id]);
  assert.equal(done.status, 0, `admin image set --public: ${done.stderr}`);
  assert.equal(show(a, id).visibility, 'public', 'now public');
  assert.ok(list(c).some((i) => i.ID === id), 'every project lists a public image');
});

test('qcow2 data in a raw image is refused (400) and the image stays queued for a retry', (t) => {
  const { a } = accounts;
  // openstack: image create refuses; the SDK then deletes the image it made.
  const created = cloud.asUser(a, ['image', 'create', '--file', qcow2, '--disk-format', 'raw', '--container-format', 'bare', 'e2e-mismatch']);
  assert.notEqual(created.status, 0, 'image create fails');
  assert.match(created.stderr, /400/, created.stderr);
  assert.match(created.stderr, /does not match/, created.stderr);
  const left = list(a, ['--name', 'e2e-mismatch']);
  cleanup(t, left.map((i) => i.ID));
  assert.ok(left.every((i) => i.Status === 'queued'), `no image is left active or saving with the refused data: ${JSON.stringify(left)}`);

  // glance: the image is created first, then the upload is refused, and the image waits, queued.
  const made = glance(a, ['image-create', '--disk-format', 'raw', '--container-format', 'bare', '--name', 'e2e-retry']);
  assert.equal(made.status, 0, `glance image-create: ${made.stderr}`);
  const id = /\|\s*id\s*\|\s*([0-9a-f-]{36})\s*\|/.exec(made.stdout)?.[1] ?? '';
  cleanup(t, [id]);
  assert.equal(show(a, id).status, 'queued', 'created without data: queued');
  const refused = glance(a, ['image-upload', '--file', qcow2, id]);
  assert.notEqual(refused.status, 0, 'glance image-upload of qcow2 data into a raw image fails');
  const queued = show(a, id);
  assert.equal(queued.status, 'queued', 'the image is queued again');
  assert.equal(queued.size ?? null, null, 'with no size');
  assert.equal(queued.checksum ?? null, null, 'and no checksum');
  assert.deepEqual(storedFiles(id), [], 'no data is left in the store');

  const fixed = cloud.asUser(a, ['image', 'set', '--disk-format', 'qcow2', id]);
  assert.equal(fixed.status, 0, `image set --disk-format on a queued image: ${fixed.stderr}`);
  const retried = glance(a, ['image-upload', '--file', qcow2, id]);
  assert.equal(retried.status, 0, `the retry succeeds: ${retried.stderr}`);
  assertActiveQcow2(show(a, id));
});

test('a protected image cannot be deleted until unprotected', (t) => {
  const { a } = accounts;
  const id = createQcow2(a, 'e2e-protected');
  cleanup(t, [id]);
  assert.equal(cloud.asUser(a, ['image', 'set', '--protected', id]).status, 0, 'image set --protected');
  assert.equal(show(a, id).protected, true, 'protected');
  const refused = cloud.asUser(a, ['image', 'delete', id]);
  assert.notEqual(refused.status, 0, 'image delete of a protected image fails');
  assert.match(refused.stderr, /403/, refused.stderr);
  assert.match(refused.stderr, /protected/, refused.stderr);
  assertActiveQcow2(show(a, id));

  assert.equal(cloud.asUser(a, ['image', 'set', '--unprotected', id]).status, 0, 'image set --unprotected');
  const deleted = cloud.asUser(a, ['image', 'delete', id]);
  assert.equal(deleted.status, 0, `image delete: ${deleted.stderr}`);
  const gone = cloud.asUser(a, ['image', 'show', id]);
  assert.notEqual(gone.status, 0, 'image show of a deleted image fails');
  assert.match(gone.stderr, /No Image found/, gone.stderr);
  assert.deepEqual(storedFiles(id), [], 'the data went with the image');
});

test('an unknown disk format is refused with a clear message', async () => {
  const { a } = accounts;
  const cli = cloud.asUser(a, ['image', 'create', '--file', qcow2, '--disk-format', 'qcow3', 'e2e-bad-format']);
  assert.notEqual(cli.status, 0, 'openstack refuses an unknown disk format');
  assert.match(cli.stderr, /invalid choice: 'qcow3'/, cli.stderr);
  const viaGlance = glance(a, ['image-create', '--disk-format', 'qcow3', '--container-format', 'bare', '--name', 'e2e-bad-format']);
  assert.notEqual(viaGlance.status, 0, 'glance refuses it from the schema the server publishes');
  assert.match(`${viaGlance.stderr}${viaGlance.stdout}`, /'qcow3' is not one of/, viaGlance.stderr);
  // The server refuses it too, whatever the client checks.
  const res = await fetch(`${cloud.imageUrl}/v2/images`, {
    method: 'POST',
    headers: { 'X-Auth-Token': token(a), 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ name: 'e2e-bad-format', disk_format: 'qcow3', container_format: 'bare' }),
  });
  assert.equal(res.status, 400, 'POST /v2/images with an unknown disk_format is 400');
  const body = (await res.json()) as { message: string };
  assert.match(body.message, /qcow3/, body.message);
  assert.deepEqual(list(a, ['--name', 'e2e-bad-format']), [], 'no image was created');
});

test('a deactivated image cannot be downloaded by a project member (403) until reactivated', (t) => {
  const { a } = accounts;
  const id = createQcow2(a, 'e2e-deactivate');
  cleanup(t, [id]);
  const deactivated = cloud.asUser(a, ['image', 'set', '--deactivate', id]);
  assert.equal(deactivated.status, 0, `image set --deactivate: ${deactivated.stderr}`);
  assert.equal(show(a, id).status, 'deactivated', 'deactivated');

  const out = path.join(work, 'deactivated.qcow2');
  const refused = cloud.asUser(a, ['--debug', 'image', 'save', '--file', out, id]);
  assert.notEqual(refused.status, 0, 'image save of a deactivated image fails for a member');
  assert.equal(loggedStatus(refused.stderr, 'GET', `/v2/images/${id}/file`), 403, 'GET .../file is 403');
  fs.rmSync(out, { force: true });
  // Administrators still can (Glance's rule).
  saveAndCompare(null, id, 'deactivated-admin.qcow2');

  const activated = cloud.asUser(a, ['image', 'set', '--activate', id]);
  assert.equal(activated.status, 0, `image set --activate: ${activated.stderr}`);
  assertActiveQcow2(show(a, id));
  saveAndCompare(a, id, 'reactivated.qcow2');
});

test('image create --import stages the data and imports it with glance-direct', async (t) => {
  const { a } = accounts;
  const res = cloud.asUser(a, ['--debug', 'image', 'create', '--import', '--file', qcow2, '--disk-format', 'qcow2', '--container-format', 'bare', 'e2e-import', '-f', 'json']);
  assert.equal(res.status, 0, `image create --import: ${res.stderr.slice(-2000)}`);
  const id = (JSON.parse(res.stdout) as { id: string }).id;
  cleanup(t, [id]);
  assert.equal(loggedStatus(res.stderr, 'PUT', `/v2/images/${id}/stage`), 204, 'the data was staged');
  assert.equal(loggedStatus(res.stderr, 'PUT', `/v2/images/${id}/file`), null, 'not uploaded directly');
  assert.equal(loggedStatus(res.stderr, 'POST', `/v2/images/${id}/import`), 202, 'the import was accepted');
  const image = await waitForStatus(a, id, 'active');
  assertActiveQcow2(image);
  assert.equal(field(image, 'os_glance_failed_import'), '', 'no store failed');
  assert.equal(fs.existsSync(path.join(cloud.dataDir, 'images', 'staging', id)), false, 'the staged data is removed after the import');
  saveAndCompare(a, id, 'imported.qcow2');
});
