import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cloud, type Account } from './cloud.js';

/**
 * Compute (Nova v2.1) and placement driven by Debian's real `openstack` CLI
 * against a `stratus up` with two fake hypervisor hosts: flavors, keypairs,
 * a server booted on a tenant network with its port's address, every
 * lifecycle action the CLI has, a snapshot landing in the image service,
 * anti-affinity over the two hosts with the third server refused by the
 * scheduler, the instances quota, and who may list every project's servers.
 */
let cloud: Cloud;
let work: string;

const accounts: Record<'a' | 'b', Account> = {
  a: { user: 'vm-user-a', password: 'vm-pw-a-1', project: 'vm-project-a', projectId: '' },
  b: { user: 'vm-user-b', password: 'vm-pw-b-1', project: 'vm-project-b', projectId: '' },
};

before(async () => {
  cloud = await Cloud.create();
  cloud.env.STRATUS_COMPUTE__FAKE_HOSTS = '2';
  await cloud.start();
  work = path.join(path.dirname(cloud.dataDir), 'work');
  fs.mkdirSync(work);
  for (const account of Object.values(accounts)) cloud.addMember(account);
  // A small qcow2 disk as the public image every project boots from.
  const disk = path.join(work, 'disk.qcow2');
  const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  cloud.json(['image', 'create', '--public', '--disk-format', 'qcow2', '--container-format', 'bare', '--file', disk, 'e2e-image']);
  for (const [key, account] of Object.entries(accounts)) {
    cloud.asUserJson(account, ['network', 'create', `net-${key}`]);
    cloud.asUserJson(account, ['subnet', 'create', '--network', `net-${key}`, '--subnet-range', '10.20.0.0/24', `sub-${key}`]);
  }
});

after(async () => {
  await cloud.stop();
  fs.rmSync(path.dirname(cloud.dataDir), { recursive: true, force: true });
});

type Server = { id: string; name: string; status: string; addresses: unknown; flavor: string; key_name: string; fault?: { code: number; message: string } } & Record<string, unknown>;

/** `server show` as the account (or as admin), parsed. */
function show(account: Account | null, name: string): Server {
  return account ? cloud.asUserJson<Server>(account, ['server', 'show', name]) : cloud.json<Server>(['server', 'show', name]);
}

/** Polls `server show` until the status is `status` (fails on ERROR, or after 60 polls). */
async function waitFor(account: Account, name: string, status: string): Promise<Server> {
  let server = show(account, name);
  for (let i = 0; i < 60 && server.status !== status; i++) {
    assert.notEqual(server.status, 'ERROR', `${name} went to ERROR waiting for ${status}: ${JSON.stringify(server.fault)}`);
    await sleep(250);
    server = show(account, name);
  }
  assert.equal(server.status, status, `${name} status`);
  return server;
}

/** Runs `openstack ...` as the account and expects success. */
function ok(account: Account, args: string[]): string {
  const res = cloud.asUser(account, args);
  assert.equal(res.status, 0, `openstack ${args.join(' ')}: ${res.stderr}${res.stdout}`);
  return res.stdout;
}

/** The address of the server on a network, from the CLI's `addresses` field (a dict, or "net=ip" text). */
function addressOn(server: Server, network: string): string | undefined {
  const value = server.addresses;
  if (typeof value === 'string') return new RegExp(`${network}=([0-9.]+)`).exec(value)?.[1];
  const list = (value as Record<string, (string | { addr: string })[]>)[network] ?? [];
  const first = list[0];
  return typeof first === 'string' ? first : first?.addr;
}

test('flavor list and a generated keypair whose fingerprint matches its private key', () => {
  const flavors = cloud.asUserJson<{ Name: string; RAM: number; VCPUs: number; Disk: number }[]>(accounts.a, ['flavor', 'list']);
  const tiny = flavors.find((f) => f.Name === 'm1.tiny');
  assert.deepEqual(tiny && [tiny.RAM, tiny.VCPUs, tiny.Disk], [512, 1, 1], `m1.tiny in ${JSON.stringify(flavors)}`);
  const privateKey = ok(accounts.a, ['keypair', 'create', 'kp-a']);
  assert.match(privateKey, /-----BEGIN (OPENSSH|RSA) PRIVATE KEY-----/, 'the CLI prints the generated private key');
  const keyFile = path.join(work, 'kp-a');
  fs.writeFileSync(keyFile, privateKey, { mode: 0o600 });
  const publicKey = spawnSync('ssh-keygen', ['-y', '-f', keyFile], { encoding: 'utf8' });
  assert.equal(publicKey.status, 0, publicKey.stderr);
  fs.writeFileSync(`${keyFile}.pub`, publicKey.stdout);
  const md5 = /MD5:([0-9a-f:]+)/.exec(spawnSync('ssh-keygen', ['-l', '-E', 'md5', '-f', `${keyFile}.pub`], { encoding: 'utf8' }).stdout)?.[1];
  const shown = cloud.asUserJson<{ fingerprint: string; type: string }>(accounts.a, ['keypair', 'show', 'kp-a']);
  assert.equal(shown.fingerprint, md5, 'Nova-style MD5 fingerprint of the public key');
  assert.equal(shown.type, 'ssh');
});

test('a server boots on a tenant network with its port address, then every action the CLI has', async () => {
  const a = accounts.a;
  const created = cloud.asUserJson<Server>(a, ['server', 'create', '--image', 'e2e-image', '--flavor', 'm1.tiny', '--network', 'net-a', '--key-name', 'kp-a', '--wait', 'vm-a']);
  assert.equal(created.status, 'ACTIVE', `created: ${JSON.stringify(created)}`);
  const server = show(a, 'vm-a');
  const address = addressOn(server, 'net-a');
  assert.match(address ?? '', /^10\.20\.0\.\d+$/, `an address on net-a in ${JSON.stringify(server.addresses)}`);
  assert.equal(server.key_name, 'kp-a');
  const ports = cloud.asUserJson<{ ID: string; 'Fixed IP Addresses': unknown }[]>(a, ['port', 'list', '--server', created.id]);
  assert.equal(ports.length, 1, 'one port of the server in the network service');
  assert.match(JSON.stringify(ports[0]?.['Fixed IP Addresses']), new RegExp(address?.replaceAll('.', '\\.') ?? 'none'), 'the port holds the address the server shows');
  const asAdmin = show(null, created.id);
  assert.match(String(asAdmin['OS-EXT-SRV-ATTR:host']), /^fake-[12]$/, 'admins see the host');
  assert.equal(server['OS-EXT-SRV-ATTR:host'], undefined, 'members do not');

  ok(a, ['server', 'stop', 'vm-a']);
  await waitFor(a, 'vm-a', 'SHUTOFF');
  ok(a, ['server', 'start', 'vm-a']);
  await waitFor(a, 'vm-a', 'ACTIVE');
  ok(a, ['server', 'reboot', '--wait', 'vm-a']);
  await waitFor(a, 'vm-a', 'ACTIVE');
  ok(a, ['server', 'reboot', '--hard', '--wait', 'vm-a']);
  await waitFor(a, 'vm-a', 'ACTIVE');
  ok(a, ['server', 'pause', 'vm-a']);
  await waitFor(a, 'vm-a', 'PAUSED');
  ok(a, ['server', 'unpause', 'vm-a']);
  await waitFor(a, 'vm-a', 'ACTIVE');
  ok(a, ['server', 'suspend', 'vm-a']);
  await waitFor(a, 'vm-a', 'SUSPENDED');
  ok(a, ['server', 'resume', 'vm-a']);
  await waitFor(a, 'vm-a', 'ACTIVE');

  ok(a, ['server', 'resize', '--flavor', 'm1.small', '--wait', 'vm-a']);
  await waitFor(a, 'vm-a', 'VERIFY_RESIZE');
  ok(a, ['server', 'resize', 'confirm', 'vm-a']);
  const resized = await waitFor(a, 'vm-a', 'ACTIVE');
  assert.match(String(resized.flavor), /m1\.small/, `flavor after the resize: ${String(resized.flavor)}`);

  ok(a, ['server', 'rebuild', '--image', 'e2e-image', '--wait', 'vm-a']);
  await waitFor(a, 'vm-a', 'ACTIVE');

  ok(a, ['server', 'image', 'create', '--name', 'snap-a', '--wait', 'vm-a']);
  const snapshot = cloud.asUserJson<{ status: string; owner: string; properties?: Record<string, unknown> }>(a, ['image', 'show', 'snap-a']);
  assert.equal(snapshot.status, 'active', 'the snapshot is an active image in the image service');
  assert.equal(snapshot.owner, a.projectId, 'owned by the server’s project');

  const locked = cloud.asUser(a, ['server', 'lock', 'vm-a']);
  assert.equal(locked.status, 0, locked.stderr);
  const refused = cloud.asUser(a, ['server', 'stop', 'vm-a']);
  assert.notEqual(refused.status, 0, 'a locked server refuses actions');
  assert.match(refused.stderr, /locked/i, refused.stderr);
  ok(a, ['server', 'unlock', 'vm-a']);

  const log = ok(a, ['console', 'log', 'show', 'vm-a']);
  assert.ok(log.length > 0, 'console output');

  ok(a, ['server', 'delete', '--wait', 'vm-a']);
  const gone = cloud.asUser(a, ['server', 'show', 'vm-a']);
  assert.notEqual(gone.status, 0, 'the server is gone');
  // The project has no other server now: no port of a server is left.
  assert.deepEqual(cloud.asUserJson(a, ['port', 'list', '--device-owner', 'compute:nova']), [], 'its port is deleted');
});

test('anti-affinity spreads a group over the two hosts; a third member is refused with No valid host', async () => {
  const a = accounts.a;
  const group = cloud.asUserJson<{ id: string; policy?: string; policies?: string }>(a, ['server', 'group', 'create', '--policy', 'anti-affinity', 'spread']);
  const hosts = new Set<string>();
  for (const name of ['spread-1', 'spread-2']) {
    const s = cloud.asUserJson<Server>(a, ['server', 'create', '--image', 'e2e-image', '--flavor', 'm1.tiny', '--network', 'net-a', '--hint', `group=${group.id}`, '--wait', name]);
    assert.equal(s.status, 'ACTIVE', `${name}: ${JSON.stringify(s.fault)}`);
    hosts.add(String(show(null, s.id)['OS-EXT-SRV-ATTR:host']));
  }
  assert.deepEqual([...hosts].sort(), ['fake-1', 'fake-2'], 'one member on each host');
  const third = cloud.asUser(a, ['server', 'create', '--image', 'e2e-image', '--flavor', 'm1.tiny', '--network', 'net-a', '--hint', `group=${group.id}`, '--wait', 'spread-3']);
  // OSC 6.0 says so, and exits with SystemExit() (status 0).
  assert.match(`${third.stdout}${third.stderr}`, /Error creating server/, 'the CLI reports the failed build');
  const failed = show(a, 'spread-3');
  assert.equal(failed.status, 'ERROR');
  assert.match(failed.fault?.message ?? '', /No valid host was found/, `fault: ${JSON.stringify(failed.fault)}`);
  const members = cloud.asUserJson<{ members?: string | string[]; Members?: string | string[] }>(a, ['server', 'group', 'show', 'spread']);
  assert.equal(String(members.members ?? members.Members).split(/[,\s]+/).filter(Boolean).length, 3, 'the failed server is still a member until deleted');
  ok(a, ['server', 'delete', '--wait', 'spread-1', 'spread-2', 'spread-3']);
  ok(a, ['server', 'group', 'delete', 'spread']);
});

test('quota set --instances 2: the third server is refused with Nova’s quota error', () => {
  const b = accounts.b;
  const set = cloud.openstack(['--os-cloud', 'stratus', 'quota', 'set', '--instances', '2', b.project]);
  assert.equal(set.status, 0, set.stderr);
  const quota = cloud.json<Record<string, unknown>>(['quota', 'show', b.project]);
  assert.equal(quota.instances, 2, `quota show: ${JSON.stringify(quota)}`);
  for (const name of ['q-1', 'q-2']) cloud.asUserJson(b, ['server', 'create', '--image', 'e2e-image', '--flavor', 'm1.tiny', '--network', 'net-b', name]);
  const third = cloud.asUser(b, ['server', 'create', '--image', 'e2e-image', '--flavor', 'm1.tiny', '--network', 'net-b', 'q-3']);
  assert.notEqual(third.status, 0, 'refused');
  assert.match(third.stderr, /Quota exceeded for instances/, third.stderr);
  assert.match(third.stderr, /HTTP 403/, third.stderr);
  const names = cloud.asUserJson<{ Name: string }[]>(b, ['server', 'list']).map((s) => s.Name).sort();
  assert.deepEqual(names, ['q-1', 'q-2'], 'nothing was made for the refused request');
});

test('server list --all-projects is for admins only', async () => {
  const b = accounts.b;
  for (const name of ['q-1', 'q-2']) await waitFor(b, name, 'ACTIVE');
  const all = cloud.json<{ Name: string }[]>(['server', 'list', '--all-projects']).map((s) => s.Name);
  assert.ok(['q-1', 'q-2'].every((n) => all.includes(n)), `admin sees project b's servers: ${all.join(', ')}`);
  const own = cloud.asUserJson<{ Name: string }[]>(accounts.a, ['server', 'list']).map((s) => s.Name);
  assert.ok(!own.includes('q-1'), 'a member sees only their project');
  const refused = cloud.asUser(accounts.a, ['server', 'list', '--all-projects']);
  assert.notEqual(refused.status, 0, 'a member may not list every project');
  assert.match(refused.stderr, /HTTP 403/, refused.stderr);
  ok(b, ['server', 'delete', '--wait', 'q-1', 'q-2']);
  const usage = cloud.json<{ Resource: string; 'In Use': number; Limit: number }[]>(['quota', 'list', '--detail', '--compute', '--project', b.project]);
  const instances = usage.find((u) => u.Resource === 'instances');
  assert.deepEqual(instances && [instances['In Use'], instances.Limit], [0, 2], `instances in use after the deletes: ${JSON.stringify(usage)}`);
});
