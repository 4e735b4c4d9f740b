import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type StratusConfig } from './config.js';
import { configureLogging } from './logging.js';

/** What every service's test harness shares: a fresh configuration and JSON requests through `inject`. */
export type InjectMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface TestReply {
  status: number;
  /** Parsed JSON (`{}` when empty or not JSON). */
  body: Record<string, any>;
  /** The raw body. */
  raw: Buffer;
  headers: Record<string, string | string[] | number | undefined>;
}

export interface TestConfig {
  config: StratusConfig;
  /** The data directory (a new temporary one; remove it on close). */
  dir: string;
  /** A lower-case token unique to this test cloud (for database names, bus names). */
  unique: string;
}

/**
 * A configuration for a test cloud in a new temporary directory: SQLite
 * there, or the database of `STRATUS_TEST_DATABASE_URL` (`{service}` becomes
 * `<service>_<unique>`, so test files never share a database) and the bus of
 * `STRATUS_TEST_BUS_URL`, which is how `./stratus test` runs the same tests on
 * PostgreSQL and RabbitMQ; cheap password hashes. `overrides` are
 * configuration keys as in `loadConfig`.
 */
export function testConfig(prefix: string, overrides: Record<string, unknown> = {}): TestConfig {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `stratus-${prefix}-`));
  configureLogging({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? 'silent' });
  const dbUrl = process.env.STRATUS_TEST_DATABASE_URL;
  const unique = path.basename(dir).replace(/[^a-z0-9]/gi, '').toLowerCase();
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dir,
      'database.url': dbUrl ? dbUrl.replaceAll('{service}', `{service}_${unique}`) : '',
      'bus.url': process.env.STRATUS_TEST_BUS_URL ?? 'memory://',
      // Test clouds run no real guests unless a test asks for them.
      'compute.virt_driver': 'fake',
      'network.driver': 'fake',
      // Cheaper hashes keep the tests quick; the hashing itself is tested with the real parameters.
      'identity.password_hash': { memory_kib: 1024, iterations: 1, parallelism: 1 },
      ...overrides,
    },
  });
  return { config, dir, unique };
}

/**
 * One request through `app.inject` as openstacksdk and Tempest send it:
 * `Accept: application/json`, the token, and the payload as JSON (a Buffer
 * goes as `application/octet-stream`, a string as it is).
 */
export async function injectJson(
  app: FastifyInstance,
  method: InjectMethod,
  url: string,
  options: { token?: string | null; payload?: unknown; headers?: Record<string, string> } = {},
): Promise<TestReply> {
  const { payload } = options;
  const isBytes = Buffer.isBuffer(payload);
  const res = await app.inject({
    method,
    url,
    headers: {
      accept: 'application/json',
      ...(options.token ? { 'x-auth-token': options.token } : {}),
      ...(payload === undefined ? {} : { 'content-type': isBytes ? 'application/octet-stream' : 'application/json' }),
      ...options.headers,
    },
    ...(payload === undefined ? {} : { payload: isBytes || typeof payload === 'string' ? payload : JSON.stringify(payload) }),
  });
  let body: Record<string, any> = {};
  try {
    body = res.body ? (JSON.parse(res.body) as Record<string, any>) : {};
  } catch {
    body = {};
  }
  return { status: res.statusCode, body, raw: res.rawPayload, headers: res.headers };
}

/** A free loopback port (taken again at once by the caller). */
export async function freePort(): Promise<number> {
  // Below the kernel's ephemeral range (32768-60999): a port the kernel hands out for some outgoing
  // connection between this check and the server's bind would make that bind fail (EADDRINUSE).
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + randomInt(12_768);
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  return listenOn(0);
}

/** Ports this process has handed out: never twice. */
const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return listenOn(port).then(
    () => true,
    () => false,
  );
}

/** Listens on `port` of 127.0.0.1 and closes again; resolves with the port listened on. */
function listenOn(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}
