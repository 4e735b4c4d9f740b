import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { QmpClient, QmpClosed, QmpError } from './qmp.js';

let dir = '';
let qemu: ChildProcess | null = null;
let sock = '';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function connectWhenListening(file: string): Promise<QmpClient> {
  for (let i = 0; ; i++) {
    try {
      return await QmpClient.connect(file);
    } catch (err) {
      if (i > 200) throw err;
      await sleep(25);
    }
  }
}

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-qmp-'));
  sock = path.join(dir, 'qmp.sock');
  qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
});

after(async () => {
  if (qemu && qemu.exitCode === null) qemu.kill('SIGKILL');
  await fs.rm(dir, { recursive: true, force: true });
});

test('QMP against a real qemu: greeting, commands, errors, events, close', async () => {
  const qmp = await connectWhenListening(sock);
  assert.equal(typeof (qmp.greeting.version as { qemu?: { major?: number } }).qemu?.major, 'number');

  const status = await qmp.execute<{ status: string; running: boolean }>('query-status');
  assert.equal(typeof status.running, 'boolean');

  await assert.rejects(qmp.execute('no-such-command'), (err: unknown) => err instanceof QmpError && err.errorClass === 'CommandNotFound');

  // Answers match their commands whatever the order they are sent in.
  const [a, b] = await Promise.all([qmp.execute<{ name?: string }>('query-name'), qmp.execute<{ qemu: { major: number } }>('query-version')]);
  assert.deepEqual(a, {});
  assert.equal(typeof b.qemu.major, 'number');

  const stopped = qmp.waitForEvent('STOP', () => true, 10_000);
  await qmp.execute('stop');
  assert.equal((await stopped)?.event, 'STOP');
  assert.equal((await qmp.execute<{ status: string }>('query-status')).status, 'paused');
  const resumed = qmp.waitForEvent('RESUME', () => true, 10_000);
  await qmp.execute('cont');
  assert.equal((await resumed)?.event, 'RESUME');

  const shutdown = qmp.waitForEvent('SHUTDOWN', () => true, 10_000);
  const closed = qmp.whenClosed();
  await qmp.execute('quit').catch((err: unknown) => assert.ok(err instanceof QmpClosed));
  assert.equal((await shutdown)?.event, 'SHUTDOWN');
  await closed;
  assert.equal(qmp.isClosed, true);
  await assert.rejects(qmp.execute('query-status'), QmpClosed);
  // Nothing listens any more.
  await assert.rejects(QmpClient.connect(sock, { timeoutMs: 1000 }));
});
