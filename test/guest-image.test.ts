import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../src/core/testing.js';
import { ROOT } from './cloud.js';

/**
 * The test guest image of `images/build-test-image.sh`, booted by a bare
 * qemu-system-x86_64 under TCG (as the QEMU driver may have to): it reads
 * its config drive or the metadata service, sets its host name, installs
 * root's key (ssh logs in with it), runs DHCP, reports hot-plugged disks and
 * interfaces and powers off on the ACPI power button, each said by a
 * `stratus-guest:` marker on its serial console. The probe kernel and initrd
 * print `stratus-probe: ok` and power off.
 *
 * The image is built into `$TMPDIR/stratus-test-image-cache/` (shared with the
 * QEMU driver's tests; the script only rebuilds when its inputs change), or
 * STRATUS_TEST_IMAGE names a built one (probe-vmlinuz and probe-initrd beside it).
 */

/** How long a guest may take to print a marker before the test gives up (a hang guard, not a measure). */
const HANG_GUARD_MS = 180_000;

let tmp: string;
let image: string;
let keyFile: string;
/** `ssh-keygen -l -E md5` of the key, without `MD5:` (as `openstack keypair show` prints it). */
let keyFingerprint: string;
const guests: Guest[] = [];

/** Runs a command to its end; throws with its output when it fails. */
function run(command: string, args: string[]): string {
  const res = spawnSync(command, args, { encoding: 'utf8' });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${res.status}): ${res.stdout}${res.stderr}`);
  return res.stdout;
}

/** A minimal QMP client on a unix socket: one command at a time, events skipped. */
class Qmp {
  private buffer = '';
  private readonly waiters: ((line: Record<string, unknown>) => void)[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(this.buffer.slice(0, nl)) as Record<string, unknown>;
        this.buffer = this.buffer.slice(nl + 1);
        if ('event' in line) continue;
        this.waiters.shift()?.(line);
      }
    });
  }

  /** Connects (polling until QEMU listens) and leaves capabilities negotiation mode. */
  static async connect(socketPath: string): Promise<Qmp> {
    for (const deadline = Date.now() + HANG_GUARD_MS; ; ) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(socketPath, () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(socket);
        await qmp.next(); // the greeting
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Runs a command; resolves with its `return`, rejects with its `error`. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.next();
    this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    const line = await reply;
    if ('error' in line) throw new Error(`QMP ${command}: ${JSON.stringify(line.error)}`);
    return line.return;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A qemu-system-x86_64 under TCG whose serial console goes to a file. */
class Guest {
  readonly log: string;
  readonly qmpPath: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  qmp: Qmp | null = null;

  /** `display`: `-display none` (a VGA card, as the driver's VNC guests have) or `-nographic` (none: the firmware writes to the serial port too). */
  constructor(name: string, args: string[], display = ['-display', 'none']) {
    this.log = path.join(tmp, `${name}.log`);
    this.qmpPath = path.join(tmp, `${name}.qmp`);
    const argv = ['-accel', 'tcg', '-m', '256', ...display, '-monitor', 'none', '-serial', `file:${this.log}`, '-qmp', `unix:${this.qmpPath},server=on,wait=off`, ...args];
    this.child = spawn('qemu-system-x86_64', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    this.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    void this.exited.then((code) => {
      if (code !== 0 && stderr) process.stderr.write(`qemu (${name}) exited with ${code}: ${stderr}\n`);
    }, () => undefined);
    guests.push(this);
  }

  /** The serial console's lines so far (they end with CR LF). */
  lines(): string[] {
    if (!fs.existsSync(this.log)) return [];
    return fs.readFileSync(this.log, 'latin1').split('\n').map((l) => l.replace(/\r$/, ''));
  }

  /** The `stratus-guest:` markers so far, without the prefix. */
  markers(): string[] {
    return this.lines().flatMap((l) => (l.startsWith('stratus-guest: ') ? [l.slice('stratus-guest: '.length)] : []));
  }

  /** Polls the console until a line matches; fails if QEMU exits first. */
  async waitForLine(match: (line: string) => boolean, what: string): Promise<string> {
    for (const deadline = Date.now() + HANG_GUARD_MS; ; ) {
      const found = this.lines().find(match);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null || Date.now() > deadline) {
        assert.fail(`no ${what} on the console (qemu ${this.child.exitCode === null ? 'still running' : `exited ${this.child.exitCode}`}):\n${this.lines().join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits for the marker `stratus-guest: <text>` (exactly, or starting with `<text> ` when `prefix`). */
  async waitForMarker(text: string, prefix = false): Promise<string> {
    const line = await this.waitForLine((l) => l === `stratus-guest: ${text}` || (prefix && l.startsWith(`stratus-guest: ${text} `)), `"stratus-guest: ${text}"`);
    return line.slice('stratus-guest: '.length);
  }

  async connect(): Promise<Qmp> {
    this.qmp ??= await Qmp.connect(this.qmpPath);
    return this.qmp;
  }

  async kill(): Promise<void> {
    this.qmp?.close();
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Writes a config drive (ISO 9660, label config-2) holding `files` (paths under the drive's root). */
function configDrive(name: string, files: Record<string, string>): string {
  const dir = path.join(tmp, `${name}-content`);
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), content);
  }
  const iso = path.join(tmp, `${name}.iso`);
  run('genisoimage', ['-quiet', '-V', 'config-2', '-J', '-r', '-o', iso, dir]);
  return iso;
}

/** Nova's meta_data.json for a guest with this host name and the test key. */
function metaData(hostname: string): string {
  const publicKey = fs.readFileSync(`${keyFile}.pub`, 'utf8').trim();
  return JSON.stringify({
    uuid: '6f6c7d8e-1a2b-4c3d-9e8f-0a1b2c3d4e5f',
    meta: { hostname: 'not-this-one' },
    public_keys: { k: `${publicKey}\n` },
    keys: [{ name: 'k', type: 'ssh', data: publicKey }],
    hostname,
    name: hostname.split('.')[0],
    launch_index: 0,
    availability_zone: 'nova',
    project_id: 'p',
    devices: [],
  });
}

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-guest-image-'));
  if (process.env.STRATUS_TEST_IMAGE) {
    image = process.env.STRATUS_TEST_IMAGE;
  } else {
    // The cache the QEMU driver's tests share: the script returns at once when its inputs did not change.
    image = path.join(os.tmpdir(), 'stratus-test-image-cache', 'stratus-test.qcow2');
    const out = run(path.join(ROOT, 'images', 'build-test-image.sh'), [image]);
    assert.equal(out.trim().split('\n').at(-1), image, 'the build prints where it wrote');
  }
  keyFile = path.join(tmp, 'key');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'k', '-f', keyFile]);
  // "256 MD5:68:64:...:e6 k (ED25519)"
  keyFingerprint = run('ssh-keygen', ['-l', '-E', 'md5', '-f', `${keyFile}.pub`]).split(' ')[1]?.replace(/^MD5:/, '') ?? '';
  assert.match(keyFingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
});

after(async () => {
  for (const guest of guests) await guest.kill();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the image is a small qcow2 with the probe files beside it', () => {
  const info = JSON.parse(run('qemu-img', ['info', '--output=json', image])) as { format: string; 'virtual-size': number };
  assert.equal(info.format, 'qcow2');
  assert.ok(fs.statSync(image).size < 64 * 1024 * 1024, `${fs.statSync(image).size} bytes`);
  for (const file of ['probe-vmlinuz', 'probe-initrd']) assert.ok(fs.statSync(path.join(path.dirname(image), file)).size > 0, file);
});

test('the probe kernel and initrd print the probe marker and power off', async () => {
  const dir = path.dirname(image);
  const guest = new Guest('probe', ['-no-reboot', '-nic', 'none', '-kernel', path.join(dir, 'probe-vmlinuz'), '-initrd', path.join(dir, 'probe-initrd'), '-append', 'console=ttyS0 quiet loglevel=3 panic=-1']);
  await guest.waitForLine((l) => l === 'stratus-probe: ok', '"stratus-probe: ok"');
  assert.equal(await guest.exited, 0, 'the probe guest powers off by itself');
});

test('config drive: hostname, key, host key and ready; hot-plugged disk; power button', async () => {
  const iso = configDrive('cd', {
    'openstack/latest/meta_data.json': metaData('probe-host.novalocal'),
    'openstack/latest/user_data': '#!/bin/sh\necho user-data-ran-on-$(hostname)\n',
  });
  const guest = new Guest('cd', ['-drive', `file=${image},if=virtio,snapshot=on`, '-drive', `file=${iso},media=cdrom`, '-nic', 'none'], ['-nographic']);
  await guest.waitForMarker('ready');
  const markers = guest.markers();
  assert.deepEqual(
    markers.map((m) => m.replace(/^host-key SHA256:[A-Za-z0-9+/]{43}$/, 'host-key SHA256:<fingerprint>')),
    ['booting', 'metadata config-drive', 'hostname probe-host', `key ${keyFingerprint}`, 'host-key SHA256:<fingerprint>', 'ready'],
  );
  assert.ok(guest.lines().includes('user-data-ran-on-probe-host'), 'the user data script ran');

  const qmp = await guest.connect();
  const disk = path.join(tmp, 'hotplug.qcow2');
  run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
  await qmp.execute('blockdev-add', { 'node-name': 'hp0', driver: 'qcow2', file: { driver: 'file', filename: disk } });
  await qmp.execute('device_add', { driver: 'virtio-blk-pci', drive: 'hp0', id: 'hpdisk0' });
  assert.equal(await guest.waitForMarker('disk-added', true), `disk-added vdb ${64 * 1024 * 1024}`);
  await qmp.execute('device_del', { id: 'hpdisk0' });
  assert.equal(await guest.waitForMarker('disk-removed', true), 'disk-removed vdb');

  await qmp.execute('system_powerdown');
  await guest.waitForMarker('powering-off');
  assert.equal(await guest.exited, 0, 'QEMU exits when the guest powers off');
});

test('metadata service over DHCP: address, hostname, key (ssh logs in with it), hot-plugged NIC', async () => {
  // The metadata service: each connection to 169.254.169.254:80 runs a tiny HTTP server on the files below.
  const served = path.join(tmp, 'served');
  fs.mkdirSync(path.join(served, 'openstack', 'latest'), { recursive: true });
  fs.writeFileSync(path.join(served, 'openstack', 'latest', 'meta_data.json'), metaData('md-host.example.org'));
  const server = path.join(tmp, 'metadata-server.sh');
  fs.writeFileSync(
    server,
    [
      '#!/bin/sh',
      'read -r method target version',
      'while read -r line; do [ -z "$(printf %s "$line" | tr -d \'\\r\')" ] && break; done',
      `file="${served}$target"`,
      'if [ -f "$file" ]; then printf "HTTP/1.0 200 OK\\r\\nContent-Length: %s\\r\\n\\r\\n" "$(wc -c <"$file")"; cat "$file"',
      'else printf "HTTP/1.0 404 Not Found\\r\\nContent-Length: 0\\r\\n\\r\\n"; fi',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const sshPort = await freePort();
  const netdev = `user,id=n0,net=169.254.0.0/16,host=169.254.169.1,dhcpstart=169.254.0.15,guestfwd=tcp:169.254.169.254:80-cmd:${server},hostfwd=tcp:127.0.0.1:${sshPort}-:22`;
  const guest = new Guest('md', ['-drive', `file=${image},if=virtio,snapshot=on`, '-netdev', netdev, '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01']);
  await guest.waitForMarker('ready');
  const markers = guest.markers();
  assert.ok(markers.includes('metadata metadata-service'), markers.join('\n'));
  assert.ok(markers.includes('hostname md-host'), markers.join('\n'));
  assert.ok(markers.includes(`key ${keyFingerprint}`), markers.join('\n'));
  assert.ok(markers.includes('address eth0 169.254.0.15/16'), markers.join('\n'));

  const ssh = spawnSync('ssh', ['-i', keyFile, '-p', String(sshPort), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', 'hostname'], { encoding: 'utf8' });
  assert.equal(ssh.status, 0, ssh.stderr);
  assert.equal(ssh.stdout.trim(), 'md-host');

  const qmp = await guest.connect();
  await qmp.execute('netdev_add', { type: 'user', id: 'n1' });
  await qmp.execute('device_add', { driver: 'virtio-net-pci', netdev: 'n1', id: 'hpnic1', mac: '52:54:00:00:00:02' });
  assert.equal(await guest.waitForMarker('nic-added', true), 'nic-added eth1 52:54:00:00:00:02');
  assert.equal(await guest.waitForMarker('address eth1', true), 'address eth1 10.0.2.15/24');
  await qmp.execute('device_del', { id: 'hpnic1' });
  assert.equal(await guest.waitForMarker('nic-removed', true), 'nic-removed eth1');
  await qmp.execute('system_powerdown');
  await guest.waitForMarker('powering-off');
  assert.equal(await guest.exited, 0);
});
