import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cloud, type Account, type CliResult } from './cloud.js';

/**
 * Object storage driven by the real clients against `stratus up` (one node,
 * three device directories, three replicas): Debian's `swift` CLI
 * (python-swiftclient), the `openstack container/object` commands, `curl` for
 * temporary URLs and anonymous reads, and the AWS CLI for S3 with EC2
 * credentials from identity.
 */
let cloud: Cloud;
let work: string;

const account: Account = { user: 'obj-user', password: 'obj-pw-1', project: 'obj-project', projectId: '' };

before(async () => {
  cloud = await Cloud.create();
  await cloud.start();
  work = path.join(path.dirname(cloud.dataDir), 'work');
  fs.mkdirSync(work);
  cloud.addMember(account);
});

after(async () => {
  await cloud.stop();
  fs.rmSync(path.dirname(cloud.dataDir), { recursive: true, force: true });
});

/** Runs a client with the account's `OS_*` variables (what sourcing an openrc gives the `swift` CLI). */
function client(command: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): CliResult {
  const env = { PATH: process.env.PATH, HOME: work, ...cloud.rc(account), ...extraEnv };
  const res = spawnSync(command, args, { env, cwd: work, encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  return { status: res.status ?? 1, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
}

/** `swift ...` as the account; expects success and returns its output. */
function swift(...args: string[]): string {
  const res = client('swift', args);
  assert.equal(res.status, 0, `swift ${args.join(' ')}: ${res.stderr}${res.stdout}`);
  return res.stdout;
}

/** A file of `size` random bytes under the work directory. */
function randomFile(name: string, size: number): string {
  const file = path.join(work, name);
  const fd = fs.openSync(file, 'w');
  for (let written = 0; written < size; written += 1024 * 1024) fs.writeSync(fd, randomBytes(Math.min(1024 * 1024, size - written)));
  fs.closeSync(fd);
  return file;
}

function md5(file: string): string {
  return createHash('md5').update(fs.readFileSync(file)).digest('hex');
}

function curl(...args: string[]): { status: number; body: string } {
  const res = spawnSync('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', ...args], { encoding: 'utf8', timeout: 60_000 });
  const out = res.stdout ?? '';
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

test('swift post, upload, list --prefix, stat and download round-trip the bytes', () => {
  swift('post', 'docs');
  const small = randomFile('notes.txt', 100_000);
  fs.mkdirSync(path.join(work, 'dir'));
  fs.writeFileSync(path.join(work, 'dir', 'a.txt'), 'alpha\n');
  fs.writeFileSync(path.join(work, 'dir', 'b.txt'), 'beta\n');
  swift('upload', 'docs', 'notes.txt');
  swift('upload', 'docs', 'dir');
  assert.deepEqual(swift('list', 'docs').trim().split('\n'), ['dir/a.txt', 'dir/b.txt', 'notes.txt']);
  assert.deepEqual(swift('list', 'docs', '--prefix', 'dir/').trim().split('\n'), ['dir/a.txt', 'dir/b.txt']);
  const stat = swift('stat', 'docs');
  assert.match(stat, /Objects: 3/);
  assert.match(stat, new RegExp(`Bytes: ${100_000 + 11}`));
  const accountStat = swift('stat');
  assert.match(accountStat, new RegExp(`Account: AUTH_${account.projectId}`));
  assert.match(accountStat, /Containers: 1/);
  const objectStat = swift('stat', 'docs', 'notes.txt');
  assert.match(objectStat, /Content Length: 100000/);
  assert.match(objectStat, new RegExp(`ETag: ${md5(small)}`));
  swift('download', 'docs', 'notes.txt', '-o', 'notes.copy');
  assert.equal(md5(path.join(work, 'notes.copy')), md5(small));
  swift('delete', 'docs', 'dir/a.txt');
  assert.deepEqual(swift('list', 'docs').trim().split('\n'), ['dir/b.txt', 'notes.txt']);
});

test('swift upload --segment-size makes dynamic and static large objects that download byte for byte', () => {
  const big = randomFile('big.bin', 5 * 1024 * 1024 + 12345);
  swift('upload', '--segment-size', '1M', 'large', 'big.bin', '--object-name', 'dlo.bin');
  swift('upload', '--segment-size', '1M', '--use-slo', 'large', 'big.bin', '--object-name', 'slo.bin');
  const dlo = swift('stat', 'large', 'dlo.bin');
  assert.match(dlo, /Manifest: large_segments\/dlo\.bin\//);
  const slo = swift('stat', 'large', 'slo.bin');
  assert.match(slo, new RegExp(`Content Length: ${5 * 1024 * 1024 + 12345}`));
  // Six segments each (five of 1 MiB, one of the rest), in the segments container.
  const segments = swift('list', 'large_segments').trim().split('\n');
  assert.equal(segments.filter((name) => name.startsWith('dlo.bin/')).length, 6);
  assert.equal(segments.filter((name) => name.startsWith('slo.bin/')).length, 6);
  swift('download', 'large', 'dlo.bin', '-o', 'dlo.copy');
  swift('download', 'large', 'slo.bin', '-o', 'slo.copy');
  assert.equal(md5(path.join(work, 'dlo.copy')), md5(big));
  assert.equal(md5(path.join(work, 'slo.copy')), md5(big));
  // Deleting the SLO through the CLI removes its segments too.
  swift('delete', 'large', 'slo.bin');
  assert.equal(swift('list', 'large_segments').split('\n').filter((name) => name.startsWith('slo.bin/')).length, 0);
});

test('a temporary URL made by swift tempurl is fetched with curl, and refused once tampered with', () => {
  swift('post', '-m', 'Temp-URL-Key:e2e-tempurl-key');
  swift('post', 'shared');
  fs.writeFileSync(path.join(work, 'report.txt'), 'quarterly numbers\n');
  swift('upload', 'shared', 'report.txt');
  const objectPath = `/v1/AUTH_${account.projectId}/shared/report.txt`;
  const signed = swift('tempurl', 'GET', '300', objectPath, 'e2e-tempurl-key').trim();
  const got = curl(`${cloud.objectUrl}${signed}`);
  assert.equal(got.status, 200);
  assert.equal(got.body, 'quarterly numbers\n');
  const forgedPath = signed.replace(/temp_url_sig=([0-9a-f])/, (_all, first: string) => `temp_url_sig=${first === '0' ? '1' : '0'}`);
  assert.notEqual(forgedPath, signed);
  const forged = curl(`${cloud.objectUrl}${forgedPath}`);
  assert.equal(forged.status, 401);
  assert.equal(curl(`${cloud.objectUrl}${objectPath}`).status, 401, 'without the signature or a token the object is not served');
});

test("swift post -r '.r:*' opens a container to anonymous reads, and only reads", () => {
  swift('post', 'public');
  fs.writeFileSync(path.join(work, 'index.html'), '<h1>hello</h1>\n');
  swift('upload', 'public', 'index.html');
  const url = `${cloud.objectUrl}/v1/AUTH_${account.projectId}/public/index.html`;
  assert.equal(curl(url).status, 401);
  swift('post', '-r', '.r:*', 'public');
  const got = curl(url);
  assert.equal(got.status, 200);
  assert.equal(got.body, '<h1>hello</h1>\n');
  assert.equal(curl('-X', 'PUT', '--data-binary', 'x', url).status, 401, 'anonymous writes stay refused');
  assert.equal(curl(`${cloud.objectUrl}/v1/AUTH_${account.projectId}/public`).status, 401, 'listing needs .rlistings');
});

test('openstack container and object commands', () => {
  const created = cloud.asUserJson<{ container: string }[]>(account, ['container', 'create', 'osc']);
  assert.equal(created[0]?.container, 'osc');
  fs.writeFileSync(path.join(work, 'osc.txt'), 'from the openstack cli\n');
  const res = client('openstack', ['object', 'create', 'osc', 'osc.txt', '-f', 'json']);
  assert.equal(res.status, 0, res.stderr);
  const listed = cloud.asUserJson<{ Name: string }[]>(account, ['object', 'list', 'osc']);
  assert.deepEqual(listed.map((o) => o.Name), ['osc.txt']);
  const shown = cloud.asUserJson<Record<string, string>>(account, ['object', 'show', 'osc', 'osc.txt']);
  assert.equal(shown['content-length'], '23');
  const containers = cloud.asUserJson<{ Name: string }[]>(account, ['container', 'list']);
  assert.ok(containers.some((c) => c.Name === 'osc'));
  const saved = client('openstack', ['object', 'save', '--file', 'osc.copy', 'osc', 'osc.txt']);
  assert.equal(saved.status, 0, saved.stderr);
  assert.equal(fs.readFileSync(path.join(work, 'osc.copy'), 'utf8'), 'from the openstack cli\n');
  const refused = client('openstack', ['container', 'delete', 'osc']);
  assert.notEqual(refused.status, 0, 'a container with objects is not deleted');
  assert.equal(client('openstack', ['object', 'delete', 'osc', 'osc.txt']).status, 0);
  assert.equal(client('openstack', ['container', 'delete', 'osc']).status, 0);
});

test('S3 with EC2 credentials: mb, cp up (multipart) and down, ls, presign, rm', () => {
  const credentials = cloud.asUserJson<{ access: string; secret: string }>(account, ['ec2', 'credentials', 'create']);
  assert.ok(credentials.access && credentials.secret, `ec2 credentials: ${JSON.stringify(credentials)}`);
  const awsEnv: NodeJS.ProcessEnv = {
    AWS_ACCESS_KEY_ID: credentials.access,
    AWS_SECRET_ACCESS_KEY: credentials.secret,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  const aws = (...args: string[]): string => {
    const res = client('aws', ['--endpoint-url', cloud.objectUrl, ...args], awsEnv);
    assert.equal(res.status, 0, `aws ${args.join(' ')}: ${res.stderr}${res.stdout}`);
    return res.stdout;
  };
  aws('s3', 'mb', 's3://bucket-one');
  const big = randomFile('s3-big.bin', 100 * 1024 * 1024);
  aws('s3', 'cp', big, 's3://bucket-one/data/big.bin');
  fs.writeFileSync(path.join(work, 's3-small.txt'), 'small s3 object\n');
  aws('s3', 'cp', path.join(work, 's3-small.txt'), 's3://bucket-one/small.txt');
  const listing = aws('s3', 'ls', 's3://bucket-one/');
  assert.match(listing, /PRE data\//);
  assert.match(listing, /\s16 small\.txt/);
  assert.match(aws('s3', 'ls', 's3://bucket-one/data/'), new RegExp(`${100 * 1024 * 1024} big\\.bin`));
  assert.match(aws('s3', 'ls'), /bucket-one/);
  // The multipart upload is one object to Swift too: the bucket is a container of the project's account.
  assert.match(swift('list', 'bucket-one'), /data\/big\.bin/);
  aws('s3', 'cp', 's3://bucket-one/data/big.bin', path.join(work, 's3-big.copy'));
  assert.equal(md5(path.join(work, 's3-big.copy')), md5(big));
  const presigned = aws('s3', 'presign', 's3://bucket-one/small.txt', '--expires-in', '300').trim();
  const got = curl(presigned);
  assert.equal(got.status, 200);
  assert.equal(got.body, 'small s3 object\n');
  aws('s3', 'rm', 's3://bucket-one/small.txt');
  aws('s3', 'rm', 's3://bucket-one/data/big.bin');
  assert.equal(aws('s3', 'ls', 's3://bucket-one/').trim(), '');
  aws('s3', 'rb', 's3://bucket-one');
  assert.doesNotMatch(aws('s3', 'ls'), /bucket-one/);
});
