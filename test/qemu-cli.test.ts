import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { Cloud, type ServerView } from './cloud.js';

/**
 * Real virtual machines through Debian's `openstack` CLI: `stratus up` with
 * the qemu driver boots the test guest image (built by
 * images/build-test-image.sh) under QEMU, and every lifecycle action is
 * checked on the real process: its QMP `query-status` (on the operators'
 * monitor socket each guest has), the process list, the files in its
 * instance directory and its tap device. The guest reads its host name and
 * key from the config drive (guests have no DHCP server until the Linux
 * network driver) and reports them, and hot-plugged disks, on its serial
 * console, which `console log show` gives back.
 */
let cloud: Cloud;
let work: string;
let fingerprint: string;

before(async () => {
  cloud = await Cloud.create('e2e-admin-secret', {
    STRATUS_COMPUTE__VIRT_DRIVER: 'qemu',
    STRATUS_COMPUTE__TEST_IMAGE__BUILD: 'true',
    STRATUS_COMPUTE__QEMU__FORCE_CONFIG_DRIVE: 'true',
  });
  await cloud.start();
  work = path.join(path.dirname(cloud.dataDir), 'work');
  fs.mkdirSync(work);
  cloud.json(['network', 'create', 'vm-net']);
  cloud.json(['subnet', 'create', '--network', 'vm-net', '--subnet-range', '10.30.0.0/24', 'vm-sub']);
  const key = path.join(work, 'id_ed25519');
  const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'e2e', '-f', key], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  fingerprint = cloud.json<{ fingerprint: string }>(['keypair', 'create', '--public-key', `${key}.pub`, 'vm-key']).fingerprint;
});

after(async () => {
  // Whatever a failed step left: no guest outlives the test.
  for (const pid of guestPids()) spawnSync('kill', ['-9', String(pid)]);
  await cloud.stop();
  fs.rmSync(path.dirname(cloud.dataDir), { recursive: true, force: true });
});

const ok = (args: string[]): string => cloud.ok(args);
const waitFor = (name: string, status: string): Promise<ServerView> => cloud.waitForServer(name, status);

async function waitVolume(name: string, status: string): Promise<void> {
  let volume = cloud.json<{ status: string }>(['volume', 'show', name]);
  for (let i = 0; i < 120 && volume.status !== status; i++) {
    await sleep(250);
    volume = cloud.json<{ status: string }>(['volume', 'show', name]);
  }
  assert.equal(volume.status, status, `volume ${name} status`);
}

function instanceDir(uuid: string): string {
  return path.join(cloud.dataDir, 'compute', 'instances', uuid);
}

/** The pids of qemu processes of this cloud's guests (`uuid` given: of that guest), from /proc. */
function guestPids(uuid?: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmdline.includes('qemu-system')) continue;
    if (!cmdline.includes(uuid ?? path.join(cloud.dataDir, 'compute', 'instances'))) continue;
    pids.push(Number(entry));
  }
  return pids;
}

/** One QMP command on the guest's operators' monitor socket. */
async function qmp(uuid: string, execute: string, args?: Record<string, unknown>): Promise<any> {
  const socket = net.connect(path.join(instanceDir(uuid), 'qmp-ops.sock'));
  let buffer = '';
  const messages: any[] = [];
  let wake: (() => void) | null = null;
  socket.on('data', (chunk) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line) messages.push(JSON.parse(line));
    }
    wake?.();
  });
  const next = async (): Promise<any> => {
    for (;;) {
      const message = messages.shift();
      if (message && !message.event) return message;
      await new Promise<void>((resolve, reject) => {
        wake = resolve;
        socket.once('error', reject);
      });
    }
  };
  try {
    assert.ok((await next()).QMP, 'QMP greeting');
    socket.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
    await next();
    socket.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}) })}\n`);
    const reply = await next();
    assert.equal(reply.error, undefined, `QMP ${execute}: ${JSON.stringify(reply.error)}`);
    return reply.return;
  } finally {
    socket.destroy();
  }
}

async function status(uuid: string): Promise<string> {
  return (await qmp(uuid, 'query-status')).status as string;
}

function consoleLog(name: string): string {
  return ok(['console', 'log', 'show', name]);
}

/** Polls the console log until `pattern` has matched `count` times. */
async function waitConsole(name: string, pattern: RegExp, count = 1): Promise<string> {
  let log = consoleLog(name);
  const matches = (): number => log.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
  for (let i = 0; i < 600 && matches() < count; i++) {
    await sleep(250);
    log = consoleLog(name);
  }
  assert.ok(matches() >= count, `${pattern} ${count} time(s) in the console of ${name}:\n${log.slice(-3000)}`);
  return log;
}

function tapOf(uuid: string): string[] {
  const guest = JSON.parse(fs.readFileSync(path.join(instanceDir(uuid), 'guest.json'), 'utf8')) as { spec?: { vifs?: { devName: string }[] } };
  return (guest.spec?.vifs ?? []).map((v) => v.devName);
}

function linkExists(dev: string): boolean {
  return spawnSync('ip', ['link', 'show', dev], { stdio: 'ignore' }).status === 0;
}

test('a real guest: create, console, stop/start, hard reboot, pause, suspend/resume, resize, snapshot, volume hot-plug, VNC, delete', async (t) => {
  ok(['server', 'create', '--image', 'stratus-test', '--flavor', 'm1.tiny', '--key-name', 'vm-key', '--network', 'vm-net', '--wait', 'vm1']);
  const server = await waitFor('vm1', 'ACTIVE');
  const uuid = server.id;
  const taps = tapOf(uuid);

  await t.test('ACTIVE is a running QEMU whose guest read its metadata', async () => {
    assert.equal(guestPids(uuid).length, 1, 'one qemu process');
    assert.equal(await status(uuid), 'running');
    assert.equal(taps.length, 1, 'one tap for the one port');
    assert.ok(linkExists(taps[0] ?? ''), 'the tap exists');
    const log = await waitConsole('vm1', /stratus-guest: ready/);
    assert.match(log, /stratus-guest: metadata config-drive/);
    assert.match(log, /stratus-guest: hostname vm1\b/);
    assert.ok(log.includes(`stratus-guest: key ${fingerprint}`), `the key fingerprint ${fingerprint} in:\n${log}`);
    const hypervisors = cloud.json<{ 'Hypervisor Type': string }[]>(['hypervisor', 'list']);
    assert.deepEqual(hypervisors.map((h) => h['Hypervisor Type']).filter((type) => type !== 'QEMU' && type !== 'KVM'), [], 'the host says QEMU (TCG) or KVM');
  });

  await t.test('stop powers the guest off (no process) and start boots it again', async () => {
    ok(['server', 'stop', 'vm1']);
    await waitFor('vm1', 'SHUTOFF');
    assert.deepEqual(guestPids(uuid), [], 'no qemu process once stopped');
    ok(['server', 'start', 'vm1']);
    await waitFor('vm1', 'ACTIVE');
    assert.equal(guestPids(uuid).length, 1);
    assert.equal(await status(uuid), 'running');
    await waitConsole('vm1', /stratus-guest: ready/, 2);
  });

  await t.test('reboot --hard starts a new process', async () => {
    const [before] = guestPids(uuid);
    ok(['server', 'reboot', '--hard', '--wait', 'vm1']);
    await waitFor('vm1', 'ACTIVE');
    const after = guestPids(uuid);
    assert.equal(after.length, 1);
    assert.notEqual(after[0], before, 'a new qemu process');
    assert.equal(await status(uuid), 'running');
  });

  await t.test('pause stops the vCPUs, unpause runs them', async () => {
    ok(['server', 'pause', 'vm1']);
    await waitFor('vm1', 'PAUSED');
    assert.equal(await status(uuid), 'paused');
    ok(['server', 'unpause', 'vm1']);
    await waitFor('vm1', 'ACTIVE');
    assert.equal(await status(uuid), 'running');
  });

  await t.test('suspend saves the guest to disk and ends the process; resume restores it', async () => {
    ok(['server', 'suspend', 'vm1']);
    await waitFor('vm1', 'SUSPENDED');
    assert.deepEqual(guestPids(uuid), [], 'no qemu process while suspended');
    ok(['server', 'resume', 'vm1']);
    await waitFor('vm1', 'ACTIVE');
    assert.equal(guestPids(uuid).length, 1);
    assert.equal(await status(uuid), 'running');
  });

  await t.test('resize --confirm gives the guest the new flavor', async () => {
    ok(['server', 'resize', '--flavor', 'm1.small', '--wait', 'vm1']);
    await waitFor('vm1', 'VERIFY_RESIZE');
    ok(['server', 'resize', 'confirm', 'vm1']);
    const resized = await waitFor('vm1', 'ACTIVE');
    assert.match(JSON.stringify(resized.flavor), /m1\.small/);
    const memory = await qmp(uuid, 'query-memory-size-summary');
    assert.equal(memory['base-memory'], 2048 * 1024 * 1024, 'm1.small has 2048 MB');
  });

  await t.test('a volume hot-plugs into the running guest and out again', async () => {
    ok(['volume', 'create', '--size', '1', 'vm-vol']);
    await waitVolume('vm-vol', 'available');
    ok(['server', 'add', 'volume', 'vm1', 'vm-vol']);
    await waitConsole('vm1', /stratus-guest: disk-added vdb 1073741824/);
    const blocks = JSON.stringify(await qmp(uuid, 'query-block'));
    assert.match(blocks, /vm-vol|volume/i, 'QMP lists the volume');
    ok(['server', 'remove', 'volume', 'vm1', 'vm-vol']);
    await waitConsole('vm1', /stratus-guest: disk-removed vdb/);
    await waitVolume('vm-vol', 'available');
    ok(['volume', 'delete', 'vm-vol']);
  });

  await t.test('the noVNC console: a websocket through the proxy with the token speaks RFB; the token works once', async () => {
    const url = cloud.json<{ url: string }>(['console', 'url', 'show', '--novnc', 'vm1']).url;
    const token = new URL(url).searchParams.get('token') ?? new URLSearchParams(decodeURIComponent(new URL(url).searchParams.get('path') ?? '').replace(/^\?/, '')).get('token');
    assert.ok(token, `a token in ${url}`);
    const proxy = `ws://127.0.0.1:${cloud.env.STRATUS_COMPUTE__VNC__PROXY_PORT}/websockify?token=${token}`;
    const origin = `http://127.0.0.1:${cloud.env.STRATUS_COMPUTE__VNC__PROXY_PORT}`;
    const handshake = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(proxy, ['binary'], { origin });
      let step = 0;
      ws.on('message', (data: Buffer) => {
        if (step === 0) {
          assert.match(data.toString('latin1'), /^RFB 003\.00\d\n/);
          ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
          step = 1;
        } else {
          // The security types: a count and that many types (1 = None with QEMU's default VNC).
          ws.close();
          resolve(data.toString('hex'));
        }
      });
      ws.on('error', reject);
    });
    assert.ok(handshake.length >= 4, 'security types received');
    const second = await new Promise<string>((resolve) => {
      const ws = new WebSocket(proxy, ['binary'], { origin });
      ws.on('message', () => resolve('served'));
      ws.on('unexpected-response', (_req, res) => resolve(`refused ${res.statusCode}`));
      ws.on('error', () => resolve('refused'));
      ws.on('close', () => resolve('closed'));
    });
    assert.notEqual(second, 'served', 'a used token is refused');
  });

  await t.test('a snapshot is an image that boots as a new server', async () => {
    ok(['server', 'image', 'create', '--name', 'vm1-snap', '--wait', 'vm1']);
    const image = cloud.json<{ status: string; disk_format: string }>(['image', 'show', 'vm1-snap']);
    assert.equal(image.status, 'active');
    assert.equal(image.disk_format, 'qcow2');
    ok(['server', 'create', '--image', 'vm1-snap', '--flavor', 'm1.tiny', '--key-name', 'vm-key', '--network', 'vm-net', '--wait', 'vm2']);
    const vm2 = await waitFor('vm2', 'ACTIVE');
    const log = await waitConsole('vm2', /stratus-guest: ready/);
    assert.match(log, /stratus-guest: hostname vm2\b/);
    ok(['server', 'delete', '--wait', 'vm2']);
    assert.deepEqual(guestPids(vm2.id), []);
  });

  await t.test('the guest keeps running while `stratus up` restarts, and is controlled again after', async () => {
    const [pid] = guestPids(uuid);
    await cloud.stop();
    assert.deepEqual(guestPids(uuid), [pid], 'the same qemu process while the cloud is down');
    await cloud.start();
    assert.equal((await waitFor('vm1', 'ACTIVE')).id, uuid);
    assert.deepEqual(guestPids(uuid), [pid], 'the same qemu process after the restart');
    ok(['server', 'pause', 'vm1']);
    await waitFor('vm1', 'PAUSED');
    assert.equal(await status(uuid), 'paused', 'the new agent controls the old process');
    ok(['server', 'unpause', 'vm1']);
    await waitFor('vm1', 'ACTIVE');
  });

  await t.test('delete leaves no process, socket, overlay or tap', async () => {
    ok(['server', 'delete', '--wait', 'vm1']);
    assert.deepEqual(guestPids(uuid), [], 'no qemu process');
    assert.equal(fs.existsSync(instanceDir(uuid)), false, 'no instance directory (overlay, sockets, console log)');
    for (const tap of taps) assert.equal(linkExists(tap), false, `no tap ${tap}`);
  });
});
