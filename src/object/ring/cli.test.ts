import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { builderFile } from './builder.js';
import { parseDeviceSpec, registerRingCommand } from './cli.js';
import { Ring, ringFile } from './ring.js';

const HOUR = 3_600_000;

/** Runs `stratus ring ...` in this process with captured output. */
function cli(dataDir: string, clock: { now: number }) {
  return async (...args: string[]): Promise<{ out: string; failed: string | null }> => {
    const lines: string[] = [];
    let failed: string | null = null;
    const program = new Command('stratus').exitOverride();
    registerRingCommand(program, { out: (l) => lines.push(l), fail: (m) => (failed = m) }, () => clock.now);
    await program.parseAsync(['ring', ...args, '--data', dataDir], { from: 'user' });
    return { out: lines.join('\n'), failed };
  };
}

describe('stratus ring', () => {
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-ring-cli-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('parses Swift device syntax', () => {
    assert.deepEqual(parseDeviceSpec('r2z3-10.0.0.1:6200/sdb1_fast ssd', 50), { region: 2, zone: 3, ip: '10.0.0.1', port: 6200, device: 'sdb1', weight: 50, meta: 'fast ssd' });
    assert.deepEqual(parseDeviceSpec('z1-[::1]:6201/d1', 1), { region: 1, zone: 1, ip: '::1', port: 6201, device: 'd1', weight: 1, meta: '' });
    assert.deepEqual(parseDeviceSpec('r1z1-storage-1.example:6202/d1', 1).ip, 'storage-1.example');
    assert.throws(() => parseDeviceSpec('r1-10.0.0.1:6200/d1', 1), /invalid device/);
    assert.throws(() => parseDeviceSpec('r1z1-10.0.0.1/d1', 1), /invalid device/);
    assert.throws(() => parseDeviceSpec('r1z1-10.0.0.1:6200R10.0.1.1:6300/d1', 1), /replication addresses/);
  });

  it('creates, adds, rebalances, shows, sets weights and removes', async () => {
    const clock = { now: Date.UTC(2024, 0, 1) };
    const run = cli(dir, clock);
    const rings = path.join(dir, 'object', 'rings');

    assert.match((await run('create', 'object', '8', '3', '1')).out, /256 partitions, 3 replicas, min_part_hours 1/);
    assert.ok(fs.existsSync(builderFile(rings, 'object')));
    assert.match((await run('create', 'object', '8', '3', '1')).failed ?? '', /already exists/);

    const added = await run('add', 'object', 'r1z1-127.0.0.1:6200/d1', '100', 'r1z2-127.0.0.1:6200/d2', '100');
    assert.equal(added.failed, null);
    assert.match(added.out, /Device d0r1z1-127\.0\.0\.1:6200\/d1 with 100 weight got id 0/);
    assert.match(added.out, /got id 1/);
    const flagged = await run('add', 'object', '--zone', '3', '--ip', '127.0.0.1', '--port', '6200', '--device', 'd3', '--weight', '100');
    assert.match(flagged.out, /d2r1z3-127\.0\.0\.1:6200\/d3 with 100 weight got id 2/);

    const first = await run('rebalance', 'object');
    assert.equal(first.failed, null);
    assert.match(first.out, /Reassigned 256 \(100\.00%\) partitions\. Balance is now 0\.00\.  Dispersion is now 0\.00/);
    const ring = Ring.load(ringFile(rings, 'object'), { prefix: '', suffix: 'x' });
    assert.equal(ring.version, 1);
    assert.equal(ring.getNodes('AUTH_a', 'c', 'o').nodes.length, 3);

    const shown = (await run('show', 'object')).out;
    assert.match(shown, /256 partitions, 3\.000000 replicas, 1 regions, 3 zones, 3 devices, 0\.00 balance, 0\.00 dispersion/);
    assert.match(shown, /is up-to-date/);
    assert.match(shown, /\n\s+0\s+1\s+1\s+127\.0\.0\.1:6200\s+d1\s+100\.00\s+256\s+0\.00/);

    // A fourth device: nothing may move within min_part_hours.
    await run('add', 'object', 'r1z4-127.0.0.1:6200/d4', '100');
    assert.match((await run('show', 'object')).out, /is obsolete/);
    const early = await run('rebalance', 'object');
    assert.match(early.out, /No partitions could be reassigned/);
    clock.now += 2 * HOUR;
    const later = await run('rebalance', 'object');
    assert.match(later.out, /Reassigned \d+ \(\d+\.\d\d%\) partitions/);
    assert.equal(Ring.load(ringFile(rings, 'object'), { prefix: '', suffix: 'x' }).devices.length, 4);

    assert.match((await run('set-weight', 'object', '3', '50')).out, /d3r1z4-127\.0\.0\.1:6200\/d4 weight set to 50/);
    assert.match((await run('remove', 'object', 'd1')).out, /d1r1z2-127\.0\.0\.1:6200\/d2 marked for removal/);
    assert.match((await run('show', 'object')).out, /DEL/);
    clock.now += 2 * HOUR;
    assert.match((await run('rebalance', 'object')).out, /Reassigned/);
    const final = Ring.load(ringFile(rings, 'object'), { prefix: '', suffix: 'x' });
    assert.deepEqual(final.devices.map((d) => d.id), [0, 2, 3]);
    assert.ok(fs.readdirSync(path.join(rings, 'backups')).length > 0);
  });

  it('refuses bad input with a message and changes nothing', async () => {
    const run = cli(dir, { now: Date.now() });
    const before = fs.readFileSync(builderFile(path.join(dir, 'object', 'rings'), 'object'), 'utf8');
    assert.match((await run('add', 'bucket', 'r1z1-127.0.0.1:6200/d9', '1')).failed ?? '', /account, container or object/);
    assert.match((await run('add', 'object', 'r1z1-127.0.0.1:6200/d9')).failed ?? '', /needs a weight/);
    assert.match((await run('add', 'object', 'r1z1-127.0.0.1:6200/d9', 'heavy')).failed ?? '', /weight must be a number/);
    assert.match((await run('add', 'object', 'r1z1-127.0.0.1:6200/d1', '1')).failed ?? '', /already uses/);
    assert.match((await run('set-weight', 'object', '42', '1')).failed ?? '', /no device with id 42/);
    assert.match((await run('remove', 'object', 'x')).failed ?? '', /device id must be a whole number/);
    assert.match((await run('show', 'container')).failed ?? '', /no ring builder/);
    assert.match((await run('create', 'account', '30', '3', '1')).failed ?? '', /partition power/);
    assert.equal(fs.readFileSync(builderFile(path.join(dir, 'object', 'rings'), 'object'), 'utf8'), before);
  });

  it('runs as a command: output on stdout, a refusal on stderr with exit status 1', () => {
    // The same registration as src/cli/main.ts, in a process of its own (main.ts loads every service).
    const cliModule = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cli.js');
    const entry = `import { Command } from 'commander'; import { registerRingCommand } from ${JSON.stringify(cliModule)};
      const program = new Command('stratus'); registerRingCommand(program); await program.parseAsync(process.argv.slice(1), { from: "user" });`;
    const data = path.join(dir, 'spawned');
    const stratus = (...args: string[]) =>
      spawnSync(process.execPath, ['--input-type=module', '-e', entry, 'ring', ...args, '--data', data], { encoding: 'utf8', cwd: path.dirname(cliModule) });
    assert.equal(stratus('create', 'account', '6', '1', '0').status, 0);
    assert.equal(stratus('add', 'account', 'r1z1-127.0.0.1:6202/d1', '1').status, 0);
    const rebalanced = stratus('rebalance', 'account');
    assert.equal(rebalanced.status, 0, rebalanced.stderr);
    assert.match(rebalanced.stdout, /Reassigned 64 \(100\.00%\) partitions/);
    const bad = stratus('set-weight', 'account', '5', '1');
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr, 'stratus ring: no device with id 5\n');
  });
});
