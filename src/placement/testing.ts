import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { createBus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import { listen } from '../core/http/server.js';
import { injectJson, testConfig, type InjectMethod, type TestReply } from '../core/testing.js';
import { startLoopbackIdentity, type TestUser } from '../identity/testing.js';
import type { PlacementService } from './placement.js';
import { createPlacement } from './service.js';

export type { InjectMethod, TestReply } from '../core/testing.js';
export type { TestUser } from '../identity/testing.js';

/** Options of one test request. */
export interface TestRequestOptions {
  /** Who calls (default: nobody, no token). */
  user?: TestUser | null;
  payload?: unknown;
  headers?: Record<string, string>;
  /** Sent as `OpenStack-API-Version: placement <version>` (`1.39`, `latest`); none by default (1.0). */
  version?: string;
}

/**
 * The placement API on a fresh database, with a real identity service on a
 * loopback port (tokens are validated over HTTP, as in a deployment). Drive
 * it with `request` (Fastify's `inject`), or `listen()` to reach it over
 * HTTP through the catalog (for clients built on ServiceClient).
 */
export interface TestPlacement {
  placement: PlacementService;
  app: FastifyInstance;
  config: StratusConfig;
  dataDir: string;
  /** admin of the admin project. */
  admin: TestUser;
  /** `member` on project `alpha` (placement refuses it). */
  alpha: TestUser;
  /** `reader` on project `alpha`. */
  alphaReader: TestUser;
  /** The identity API's URL (`http://127.0.0.1:<port>/v3`). */
  authUrl: string;
  /** The `placement` service user (admin and service roles on the `service` project) and its password. */
  serviceUser: { username: string; password: string; projectName: string };
  /** That service user, logged in (what nova and neutron call placement as). */
  service: TestUser;
  request(method: InjectMethod, url: string, options?: TestRequestOptions): Promise<TestReply>;
  /**
   * Starts listening on a free loopback port and points the catalog's
   * `placement` endpoint at it; returns the URL. Idempotent.
   */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** Asserts a placement error: the status and, when given, the `code` (1.23+) and a part of the detail. */
export function expectPlacementError(res: TestReply, status: number, code?: string, detail?: string | RegExp): void {
  assert.equal(res.status, status, `status ${status} expected: ${JSON.stringify(res.body)}`);
  const error = res.body.errors?.[0] as Record<string, unknown> | undefined;
  assert.ok(error, `an errors list: ${JSON.stringify(res.body)}`);
  assert.equal(error.status, status, 'status in the body');
  if (code !== undefined) assert.equal(error.code, code, `code: ${JSON.stringify(error)}`);
  if (detail !== undefined) {
    const text = String(error.detail);
    if (typeof detail === 'string') assert.ok(text.includes(detail), `detail ${JSON.stringify(text)} should include ${JSON.stringify(detail)}`);
    else assert.match(text, detail, 'detail');
  }
}

async function login(authUrl: string, name: string, password: string, project: string): Promise<TestUser> {
  const res = await fetch(`${authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: { identity: { methods: ['password'], password: { user: { name, domain: { name: 'Default' }, password } } }, scope: { project: { name: project, domain: { name: 'Default' } } } },
    }),
  });
  const token = res.headers.get('x-subject-token');
  const body = (await res.json()) as { token: { user: { id: string }; project: { id: string } } };
  if (res.status !== 201 || !token) throw new Error(`login of ${name} failed: ${res.status}`);
  return { token, userId: body.token.user.id, projectId: body.token.project.id };
}

/**
 * Builds it. `overrides` are configuration keys as in `loadConfig`. Honours
 * `STRATUS_TEST_DATABASE_URL` (each test cloud gets its own database), as
 * the other services' tests.
 */
export async function createTestPlacement(overrides: Record<string, unknown> = {}): Promise<TestPlacement> {
  const { config, dir, unique } = testConfig('placement', overrides);
  config.bus.url = `memory://${unique}`;
  const bus = await createBus(config.bus.url);
  const servicePassword = 'placement-test-secret';
  const placementUrl = 'http://placement.test:8778';
  const identity = await startLoopbackIdentity(config, bus, {
    services: [{ type: 'placement', name: 'placement', url: placementUrl }],
    serviceUser: { name: 'placement', password: servicePassword },
  });
  const { authUrl, admin, alpha, alphaReader } = identity;
  const { placement, app, database } = await createPlacement(config, { identity: { authUrl, password: servicePassword } });
  const service = await login(authUrl, 'placement', servicePassword, 'service');
  await app.ready();
  let listening: string | null = null;

  const request: TestPlacement['request'] = (method, url, options = {}) => {
    const headers: Record<string, string> = { ...(options.version ? { 'openstack-api-version': `placement ${options.version}` } : {}), ...options.headers };
    return injectJson(app, method, url, { token: options.user?.token ?? null, payload: options.payload, headers });
  };

  const pointCatalogAt = async (url: string): Promise<void> => {
    const call = async (method: string, path: string, body?: unknown): Promise<any> => {
      const res = await fetch(`${authUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json', 'x-auth-token': admin.token },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.json();
    };
    const services = await call('GET', '/services?type=placement');
    const serviceId = services.services[0]?.id as string | undefined;
    if (!serviceId) throw new Error('no placement service in the test catalog');
    const endpoints = await call('GET', `/endpoints?service_id=${serviceId}`);
    for (const endpoint of endpoints.endpoints as { id: string }[]) await call('PATCH', `/endpoints/${endpoint.id}`, { endpoint: { url } });
  };

  return {
    placement,
    app,
    config,
    dataDir: dir,
    admin,
    alpha,
    alphaReader,
    authUrl,
    serviceUser: { username: 'placement', password: servicePassword, projectName: 'service' },
    service,
    request,
    async listen() {
      if (listening) return listening;
      const port = await listen(app, '127.0.0.1', 0);
      listening = `http://127.0.0.1:${port}`;
      await pointCatalogAt(listening);
      return listening;
    },
    async close() {
      await app.close();
      await database.close();
      await identity.close();
      await bus.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
