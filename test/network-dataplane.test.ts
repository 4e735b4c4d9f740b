import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cloud, cleanupCloud, realNetworkEnv, type ServerView } from './cloud.js';

/**
 * Real networking through Debian's `openstack` CLI: `stratus up` with the
 * qemu virt driver and the linux network driver. Two test guests on a
 * project network get their addresses by DHCP (dnsmasq in `qdhcp-<net>`)
 * and their SSH key from the metadata service through the router's proxy
 * (no config drive); a router (`qrouter-<router>`) with the external
 * gateway gives them floating IPs the host reaches over the external bridge;
 * security groups open and close port 22; and every host resource goes with
 * its resource. This cloud's external bridge, address range and filter
 * prefix are its own (`realNetworkEnv`), so that it meets nothing else on
 * the host, and `stratus cleanup` removes what is left at the end.
 */
const { env, chainPrefix, externalBridge } = realNetworkEnv();

let cloud: Cloud;
let work: string;
let key: string;
let fingerprint: string;

before(async () => {
  cloud = await Cloud.create('e2e-admin-secret', env);
  await cloud.start();
  work = path.join(path.dirname(cloud.dataDir), 'work');
  fs.mkdirSync(work);
  key = path.join(work, 'id_ed25519');
  const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'e2e', '-f', key], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  fingerprint = cloud.json<{ fingerprint: string }>(['keypair', 'create', '--public-key', `${key}.pub`, 'net-key']).fingerprint;
});

after(async () => {
  await cloud.stop();
  // The documented clean slate: guests, namespaces, devices and rules of this cloud.
  cleanupCloud(cloud);
  assert.equal(linkExists(externalBridge), false, 'cleanup removed the external bridge');
  assert.equal(ourRules(), '', 'cleanup removed every chain and table of this cloud');
  fs.rmSync(path.dirname(cloud.dataDir), { recursive: true, force: true });
});

const ok = (args: string[]): string => cloud.ok(args);
const waitFor = (name: string, status: string): Promise<ServerView> => cloud.waitForServer(name, status);

/** Polls the console log until `pattern` matches. */
async function waitConsole(name: string, pattern: RegExp): Promise<string> {
  let log = ok(['console', 'log', 'show', name]);
  for (let i = 0; i < 600 && !pattern.test(log); i++) {
    await sleep(250);
    log = ok(['console', 'log', 'show', name]);
  }
  assert.match(log, pattern, `the console of ${name}:\n${log.slice(-3000)}`);
  return log;
}

function linkExists(dev: string): boolean {
  return spawnSync('ip', ['link', 'show', dev], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[]): { status: number; out: string } {
  const res = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: res.status ?? 1, out: `${res.stdout ?? ''}${res.stderr ?? ''}` };
}

/** The lines of the host's iptables, ip6tables and nftables rulesets that name this cloud's prefix. */
function ourRules(): string {
  const text = [run('iptables-save', []).out, run('ip6tables-save', []).out, run('nft', ['list', 'ruleset']).out].join('\n');
  return text
    .split('\n')
    .filter((line) => line.includes(chainPrefix))
    .join('\n');
}

/** The arguments of `ssh root@address command` with the test's key, bounded by a 5 s connect timeout. */
function sshArgs(address: string, command: string): string[] {
  return ['-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR', `root@${address}`, command];
}

function ssh(address: string, command: string): { status: number; out: string } {
  return run('ssh', sshArgs(address, command));
}

/** Runs `attempt` until it returns true, at most `tries` times a second apart; its last result. */
async function eventually(tries: number, attempt: () => boolean): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (attempt()) return true;
    await sleep(1000);
  }
  return false;
}

function fixedIp(server: ServerView, network: string): string {
  const addresses = server.addresses as Record<string, string[]> | string;
  const list = typeof addresses === 'string' ? (/=\s*([\d.]+)/.exec(addresses)?.[1] ?? '') : (addresses[network]?.[0] ?? '');
  assert.ok(list, `a fixed address of ${server.name} on ${network}: ${JSON.stringify(server.addresses)}`);
  return list;
}

test('two guests on a routed network: DHCP, metadata through the proxy, floating IPs, security groups, and nothing left after the deletes', async (t) => {
  const network = cloud.json<{ id: string }>(['network', 'create', 'dp-net']);
  const subnet = cloud.json<{ id: string }>(['subnet', 'create', '--network', 'dp-net', '--subnet-range', '10.41.0.0/24', 'dp-sub']);
  const router = cloud.json<{ id: string }>(['router', 'create', 'dp-router']);
  ok(['router', 'set', '--external-gateway', 'public', 'dp-router']);
  ok(['router', 'add', 'subnet', 'dp-router', 'dp-sub']);
  // No config drive: the key can only come from the metadata service.
  for (const name of ['dp-a', 'dp-b']) ok(['server', 'create', '--image', 'stratus-test', '--flavor', 'm1.tiny', '--key-name', 'net-key', '--network', 'dp-net', name]);
  const a = await waitFor('dp-a', 'ACTIVE');
  const b = await waitFor('dp-b', 'ACTIVE');
  const ipA = fixedIp(a, 'dp-net');
  const ipB = fixedIp(b, 'dp-net');
  const ports = cloud.json<{ ID: string }[]>(['port', 'list', '--network', 'dp-net']).map((p) => p.ID);

  await t.test('each guest got its address by DHCP and its key from the metadata service', async () => {
    for (const [name, ip] of [
      ['dp-a', ipA],
      ['dp-b', ipB],
    ] as const) {
      const log = await waitConsole(name, /stratus-guest: ready/);
      assert.match(log, new RegExp(`stratus-guest: address eth0 ${ip.replaceAll('.', '\\.')}/24`), `${name} leased ${ip}`);
      assert.match(log, /stratus-guest: metadata metadata-service/, `${name} read the metadata service (no config drive)`);
      assert.match(log, new RegExp(`stratus-guest: hostname ${name}\\b`));
      assert.ok(log.includes(`stratus-guest: key ${fingerprint}`), `${name} installed the key ${fingerprint}`);
    }
    assert.ok(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(`qdhcp-${network.id}`), 'the network has its DHCP namespace');
    assert.ok(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes(`qrouter-${router.id}`), 'the router has its namespace');
  });

  const fipA = cloud.json<{ floating_ip_address: string; id: string }>(['floating', 'ip', 'create', 'public']);
  const fipB = cloud.json<{ floating_ip_address: string; id: string }>(['floating', 'ip', 'create', 'public']);
  ok(['server', 'add', 'floating', 'ip', 'dp-a', fipA.floating_ip_address]);
  ok(['server', 'add', 'floating', 'ip', 'dp-b', fipB.floating_ip_address]);
  const pingB = `ping -c 3 -W 2 ${ipB}`;

  await t.test('port 22 is closed by the default security group, and open once a rule allows it', async () => {
    // The router needs a moment for the floating IP; closed means no answer however long we try here.
    const closed = ssh(fipA.floating_ip_address, pingB);
    assert.notEqual(closed.status, 0, `ssh got through a closed port 22: ${closed.out}`);
    const project = cloud.json<{ id: string }>(['project', 'show', 'admin']).id;
    const group = cloud.json<{ ID: string; Name: string; Project: string }[]>(['security', 'group', 'list', '--project', project]).find((g) => g.Name === 'default');
    assert.ok(group, 'the project has its default group');
    ok(['security', 'group', 'rule', 'create', '--ingress', '--protocol', 'tcp', '--dst-port', '22', group.ID]);
    let last = { status: 1, out: '' };
    const opened = await eventually(30, () => {
      last = ssh(fipA.floating_ip_address, pingB);
      return last.status === 0;
    });
    assert.ok(opened, `ssh to ${fipA.floating_ip_address} and ping ${ipB}: ${last.out}`);
    assert.match(last.out, /3 packets transmitted, 3 packets received/, 'the first guest pings the second on their network');
    assert.equal(ssh(fipB.floating_ip_address, 'hostname').out.trim(), 'dp-b', "the second guest's floating IP reaches it");
  });

  await t.test("a restart of `stratus up` (its agents rebuild their state) keeps the guests' traffic: an SSH session open across it finishes", async () => {
    const session = spawn('ssh', sshArgs(fipB.floating_ip_address, 'echo started; sleep 8; echo still-here'), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    session.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    session.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const ended = new Promise<number | null>((resolve) => session.once('exit', resolve));
    for (let i = 0; i < 100 && !out.includes('started'); i++) await sleep(100);
    assert.match(out, /started/, 'the session is open');
    await cloud.stop();
    await cloud.start();
    const killer = setTimeout(() => session.kill('SIGKILL'), 60_000);
    const code = await ended;
    clearTimeout(killer);
    assert.equal(code, 0, `the session ended badly: ${out}`);
    assert.match(out, /still-here/, 'the session lived through the restart');
    assert.equal(ssh(fipA.floating_ip_address, 'hostname').out.trim(), 'dp-a', 'new sessions work after it');
  });

  await t.test('after floating ip unset the address no longer answers', async () => {
    ok(['floating', 'ip', 'unset', '--port', fipA.floating_ip_address]);
    const gone = await eventually(30, () => ssh(fipA.floating_ip_address, 'true').status !== 0);
    assert.ok(gone, `${fipA.floating_ip_address} still answers after floating ip unset`);
  });

  await t.test('after the deletes no namespace, bridge port or rule of theirs is left', async () => {
    ok(['server', 'delete', '--wait', 'dp-a', 'dp-b']);
    ok(['floating', 'ip', 'delete', fipA.id, fipB.id]);
    ok(['router', 'remove', 'subnet', 'dp-router', 'dp-sub']);
    ok(['router', 'unset', '--external-gateway', 'dp-router']);
    ok(['router', 'delete', 'dp-router']);
    ok(['subnet', 'delete', subnet.id]);
    ok(['network', 'delete', network.id]);
    const leftovers = (): string[] => {
      const found: string[] = [];
      const namespaces = run('ip', ['netns', 'list']).out;
      if (namespaces.includes(network.id)) found.push(`namespace qdhcp-${network.id}`);
      if (namespaces.includes(router.id)) found.push(`namespace qrouter-${router.id}`);
      const links = run('bridge', ['link']).out;
      for (const port of ports) if (links.includes(`tap${port.slice(0, 11)}`)) found.push(`bridge port tap${port.slice(0, 11)}`);
      if (links.includes(`master ${externalBridge}`)) found.push(`a port on ${externalBridge}`);
      if (linkExists(`brq${network.id.slice(0, 11)}`)) found.push(`bridge brq${network.id.slice(0, 11)}`);
      const rules = ourRules();
      if (rules) found.push(`rules:\n${rules}`);
      return found;
    };
    let left: string[] = [];
    await eventually(30, () => (left = leftovers()).length === 0);
    assert.deepEqual(left, []);
  });
});
