/**
 * Helpers for the tests that need a real RabbitMQ (bus.test.ts,
 * amqp-reconnect.test.ts, and any other test using `amqp://`).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';

/** A logger for bus tests: silent unless `STRATUS_TEST_LOG_LEVEL` (e.g. `debug`) says otherwise. */
export function testLogger(): Logger {
  return pino({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? 'silent', base: { component: 'bus' } });
}

/**
 * The broker URL of the AMQP tests, from `STRATUS_TEST_AMQP_URL`. Throws, so
 * that the test FAILS (never skips), when the variable is not set.
 */
export function amqpTestUrl(): string {
  const url = process.env.STRATUS_TEST_AMQP_URL;
  if (!url) {
    throw new Error(
      'STRATUS_TEST_AMQP_URL is not set: the AMQP bus tests need a RabbitMQ broker. Run the tests through `./stratus test` ' +
        '(which starts one), or start RabbitMQ yourself and set STRATUS_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/',
    );
  }
  return url;
}

/** Runs one rabbitmqctl binary; rejects on failure, ENOENT included. */
function execCtl(binary: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    execFile(binary, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { message: `${binary} ${args.join(' ')} failed: ${err.message}\n${stderr}` }));
      else resolve(stdout);
    });
  });
}

async function ctl(args: string[], timeoutMs: number): Promise<string> {
  const binaries = process.env.STRATUS_TEST_RABBITMQCTL ? [process.env.STRATUS_TEST_RABBITMQCTL] : ['rabbitmqctl', '/usr/sbin/rabbitmqctl'];
  let lastError: unknown;
  for (const binary of binaries) {
    try {
      return await execCtl(binary, args, timeoutMs);
    } catch (err) {
      lastError = err;
      if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
    }
  }
  throw lastError;
}

let nodeArgs: Promise<string[]> | undefined;

/** `-n <node>` for rabbitmqctl: the configured node, else whichever of the default node and rabbit@localhost answers. */
function rabbitNode(): Promise<string[]> {
  nodeArgs ??= (async () => {
    const configured = process.env.STRATUS_TEST_RABBITMQ_NODE ?? process.env.RABBITMQ_NODENAME;
    if (configured) return ['-n', configured];
    for (const args of [[], ['-n', 'rabbit@localhost']]) {
      const ok = await ctl([...args, '-q', 'status'], 30_000).then(
        () => true,
        () => false,
      );
      if (ok) return args;
    }
    return [];
  })();
  return nodeArgs;
}

/**
 * Runs `rabbitmqctl [-n <node>] <args...>`, failing after `timeoutMs`, and
 * resolves with its output. Node: `STRATUS_TEST_RABBITMQ_NODE`, else
 * `RABBITMQ_NODENAME`, else the default node (`rabbit@<hostname>`) or
 * `rabbit@localhost`, whichever runs. Binary: `STRATUS_TEST_RABBITMQCTL`,
 * else `rabbitmqctl` from PATH or /usr/sbin.
 */
export async function rabbitmqctl(args: string[], timeoutMs = 60_000): Promise<string> {
  return ctl([...(await rabbitNode()), ...args], timeoutMs);
}

const LOCK_DIR = join(tmpdir(), 'stratus-rabbitmq-test-lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code === 'EPERM';
  }
}

/** Lock files of live processes whose name starts with `prefix` (stale ones are removed). */
async function holders(prefix: string): Promise<string[]> {
  const live: string[] = [];
  for (const name of await readdir(LOCK_DIR)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.split('-')[1]);
    if (Number.isInteger(pid) && alive(pid)) live.push(name);
    else await unlink(join(LOCK_DIR, name)).catch(() => undefined);
  }
  return live;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A cross-process lock on the test broker, because test files run in
 * parallel: tests using the broker take it `shared`; the test that restarts
 * the broker takes it `exclusive`, so that it waits for them to finish and
 * they wait for the broker to be back. Resolves with the release function;
 * rejects after `timeoutMs`.
 */
export async function brokerLock(mode: 'shared' | 'exclusive', timeoutMs = 180_000): Promise<() => Promise<void>> {
  await mkdir(LOCK_DIR, { recursive: true });
  const me = `${mode}-${process.pid}-${randomUUID()}`;
  const path = join(LOCK_DIR, me);
  const release = (): Promise<void> => unlink(path).catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await writeFile(path, '');
    const writers = (await holders('exclusive-')).filter((name) => name !== me);
    if (mode === 'shared') {
      if (writers.length === 0) return release;
      await release(); // let the writer go first
    } else {
      const readers = await holders('shared-');
      if (readers.length === 0 && writers.every((name) => name > me)) return release;
    }
    if (Date.now() > deadline) {
      await release();
      throw new Error(`timed out waiting for the ${mode} test lock on the RabbitMQ broker (${LOCK_DIR})`);
    }
    await sleep(200);
  }
}
