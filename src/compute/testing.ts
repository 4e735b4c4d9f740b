import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { createBus, type Bus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import { injectJson, testConfig, type InjectMethod, type TestReply } from '../core/testing.js';
import { startLoopbackIdentity, type TestUser } from '../identity/testing.js';
import type { ComputeService } from './compute.js';
import { createComputeApi } from './service.js';

export type { InjectMethod, TestReply } from '../core/testing.js';
export type { TestUser } from '../identity/testing.js';

/**
 * The compute API on a fresh database and data directory, with a real
 * identity service on a loopback port. Drive it with `request` (Fastify's
 * `inject`); every request goes to `/v2.1<url>` with the microversion asked.
 */
export interface TestCompute {
  compute: ComputeService;
  app: FastifyInstance;
  bus: Bus;
  config: StratusConfig;
  dataDir: string;
  /** admin of the admin project. */
  admin: TestUser;
  /** `member` on project `alpha`. */
  alpha: TestUser;
  /** `member` on project `beta`. */
  beta: TestUser;
  /** `reader` on project `alpha`. */
  alphaReader: TestUser;
  authUrl: string;
  /**
   * A request to `/v2.1<url>` (a url starting with `//` goes to the root
   * instead: `//` is `/`). `version` is the microversion (default: none, so 2.1).
   */
  request(method: InjectMethod, url: string, options?: { user?: TestUser | null; payload?: unknown; headers?: Record<string, string>; version?: string }): Promise<TestReply>;
  close(): Promise<void>;
}

/** Asserts a Nova error: the status, the fault key (`itemNotFound`, ...) and, when given, the message. */
export function expectComputeError(res: { status: number; body: Record<string, any> }, status: number, message?: string | RegExp): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  const [key] = Object.keys(res.body);
  const fault = key ? res.body[key] : undefined;
  assert.equal(fault?.code, status, `fault body ${JSON.stringify(res.body)}`);
  if (typeof message === 'string') assert.equal(fault?.message, message, 'message');
  else if (message) assert.match(String(fault?.message), message, 'message');
}

export interface TestComputeOptions {
  /** More services in the catalog, each with one URL for every interface. */
  services?: { type: string; name: string; url: string }[];
}

/**
 * Builds it. `overrides` are configuration keys as in `loadConfig`. Honours
 * `STRATUS_TEST_DATABASE_URL` like the other services' tests; the bus is a
 * private in-memory one (role topics are cloud-wide names).
 */
export async function createTestCompute(overrides: Record<string, unknown> = {}, options: TestComputeOptions = {}): Promise<TestCompute> {
  const { config, dir, unique } = testConfig('compute', overrides);
  config.bus.url = `memory://${unique}`;
  const bus = await createBus(config.bus.url);
  const password = 'nova-test-secret';
  const computeUrl = 'http://compute.test:8774/v2.1';
  const identity = await startLoopbackIdentity(config, bus, {
    services: [{ type: 'compute', name: 'nova', url: computeUrl }, ...(options.services ?? [])],
    serviceUser: { name: 'nova', password },
  });
  const { authUrl, admin, alpha, beta, alphaReader } = identity;
  const { compute, app, database } = await createComputeApi(config, bus, { identity: { authUrl, password }, publicUrl: 'http://compute.test:8774' });
  await app.ready();
  const request: TestCompute['request'] = (method, url, opts = {}) =>
    injectJson(app, method, url.startsWith('//') ? url.slice(1) : `/v2.1${url}`, {
      token: opts.user?.token ?? null,
      payload: opts.payload,
      headers: { ...(opts.version ? { 'OpenStack-API-Version': `compute ${opts.version}` } : {}), ...(opts.headers ?? {}) },
    });
  return {
    compute,
    app,
    bus,
    config,
    dataDir: dir,
    admin,
    alpha,
    beta,
    alphaReader,
    authUrl,
    request,
    async close() {
      await app.close();
      await database.close();
      await identity.close();
      await bus.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

