import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { createBus, type Bus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import { injectJson, testConfig, type InjectMethod, type TestReply } from '../core/testing.js';
import { listen } from '../core/http/server.js';
import { bootstrap, DEFAULT_DOMAIN_ID } from './bootstrap.js';
import type { Identity } from './identity.js';
import { createIdentity } from './service.js';

export type { InjectMethod, TestReply } from '../core/testing.js';

/** A whole identity API on a fresh database, for tests (driven with `app.inject`). */
export interface TestIdentity {
  identity: Identity;
  app: FastifyInstance;
  adminPassword: string;
  adminToken: string;
  adminUserId: string;
  adminProjectId: string;
  /** A user with role `member` on its own project (`member-project`). */
  memberToken: string;
  memberUserId: string;
  memberProjectId: string;
  /** One API request through `app.inject`: status, parsed JSON body (`{}` when empty) and headers. */
  request(method: InjectMethod, url: string, options?: { token?: string | null; payload?: unknown; headers?: Record<string, string> }): Promise<TestReply>;
  /** A password-scoped token for any user (`project` by name in Default). */
  login(user: string, password: string, project?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Builds identity on SQLite in a temporary directory (or on the database of
 * `STRATUS_TEST_DATABASE_URL` and the bus of `STRATUS_TEST_BUS_URL`, which is
 * how `./stratus test` runs the same tests on PostgreSQL and RabbitMQ).
 */
export async function createTestIdentity(): Promise<TestIdentity> {
  const { config, dir } = testConfig('identity');
  const bus = await createBus(config.bus.url);
  const { identity, app, database } = await createIdentity(config, bus, { publicUrl: 'http://identity.test:5000' });
  const adminPassword = 'admin-secret';
  const boot = await bootstrap(identity, { adminUser: 'admin', adminProject: 'admin', adminPassword, region: 'RegionOne', services: [], serviceUsers: [] });

  const login = async (user: string, password: string, project?: string): Promise<string> => {
    const scope = project ? { project: { name: project, domain: { id: DEFAULT_DOMAIN_ID } } } : undefined;
    const res = await app.inject({
      method: 'POST',
      url: '/v3/auth/tokens',
      payload: { auth: { identity: { methods: ['password'], password: { user: { name: user, domain: { id: DEFAULT_DOMAIN_ID }, password } } }, ...(scope ? { scope } : {}) } },
    });
    const token = res.headers['x-subject-token'];
    if (res.statusCode !== 201 || typeof token !== 'string') throw new Error(`login of ${user} failed: ${res.statusCode} ${res.body}`);
    return token;
  };
  const request: TestIdentity['request'] = (method, url, options = {}) => injectJson(app, method, url, options);
  const adminToken = await login('admin', adminPassword, 'admin');
  const call = async (method: 'POST' | 'PUT', url: string, payload?: unknown): Promise<Record<string, any>> => {
    const res = await request(method, url, { token: adminToken, payload });
    if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const project = await call('POST', '/v3/projects', { project: { name: 'member-project', domain_id: DEFAULT_DOMAIN_ID } });
  const user = await call('POST', '/v3/users', { user: { name: 'member-user', password: 'member-secret', domain_id: DEFAULT_DOMAIN_ID } });
  const roles = await app.inject({ method: 'GET', url: '/v3/roles?name=member', headers: { 'x-auth-token': adminToken } });
  const memberRoleId = (JSON.parse(roles.body) as { roles: { id: string }[] }).roles[0]?.id ?? '';
  await call('PUT', `/v3/projects/${project.project.id}/users/${user.user.id}/roles/${memberRoleId}`);
  const memberToken = await login('member-user', 'member-secret', 'member-project');
  return {
    identity,
    app,
    adminPassword,
    adminToken,
    adminUserId: boot.adminUserId,
    adminProjectId: boot.adminProjectId,
    memberToken,
    memberUserId: user.user.id as string,
    memberProjectId: project.project.id as string,
    request,
    login,
    async close() {
      await app.close();
      await database.close();
      await bus.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A caller of a test cloud: a user with a token scoped to its project. */
export interface TestUser {
  token: string;
  userId: string;
  projectId: string;
}

/**
 * A real identity service listening on a loopback port, bootstrapped with
 * the given catalog and service user, and the callers other services' tests
 * use: `admin` (admin of the admin project), `alpha` and `beta` (`member` of
 * projects alpha and beta), `alphaReader` (`reader` on alpha). Other
 * services validate its tokens over HTTP, as in a deployment.
 */
export interface LoopbackIdentity {
  authUrl: string;
  admin: TestUser;
  alpha: TestUser;
  beta: TestUser;
  alphaReader: TestUser;
  close(): Promise<void>;
}

export async function startLoopbackIdentity(
  config: StratusConfig,
  bus: Bus,
  options: { services: { type: string; name: string; url: string }[]; serviceUser: { name: string; password: string }; moreServiceUsers?: { name: string; password: string }[] },
): Promise<LoopbackIdentity> {
  const { identity, app, database } = await createIdentity(config, bus);
  const port = await listen(app, '127.0.0.1', 0);
  const base = `http://127.0.0.1:${port}`;
  const authUrl = `${base}/v3`;
  identity.publicUrl = base;
  await bootstrap(identity, {
    adminUser: 'admin',
    adminProject: 'admin',
    adminPassword: 'admin-secret',
    region: 'RegionOne',
    services: [{ type: 'identity', name: 'keystone', url: authUrl }, ...options.services].map((s) => ({ type: s.type, name: s.name, description: s.type, urls: { public: s.url, internal: s.url, admin: s.url } })),
    serviceUsers: [options.serviceUser, ...(options.moreServiceUsers ?? [])],
  });
  const ks = async (method: string, url: string, token: string | null, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> => {
    const response = await fetch(`${base}${url}`, {
      method,
      headers: { 'Content-Type': 'application/json', ...(token ? { 'X-Auth-Token': token } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : {}, headers: response.headers };
  };
  const login = async (user: string, password: string, project: string): Promise<TestUser> => {
    const res = await ks('POST', '/v3/auth/tokens', null, {
      auth: { identity: { methods: ['password'], password: { user: { name: user, domain: { id: DEFAULT_DOMAIN_ID }, password } } }, scope: { project: { name: project, domain: { id: DEFAULT_DOMAIN_ID } } } },
    });
    const token = res.headers.get('x-subject-token');
    if (res.status !== 201 || !token) throw new Error(`login of ${user} failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { token, userId: res.body.token.user.id, projectId: res.body.token.project.id };
  };
  const admin = await login('admin', 'admin-secret', 'admin');
  const roles = await ks('GET', '/v3/roles', admin.token);
  const roleId = (name: string): string => (roles.body.roles as { id: string; name: string }[]).find((r) => r.name === name)?.id ?? '';
  const makeUser = async (name: string, project: string, role: string): Promise<TestUser> => {
    let projectId = (await ks('GET', `/v3/projects?name=${project}`, admin.token)).body.projects[0]?.id as string | undefined;
    projectId ??= (await ks('POST', '/v3/projects', admin.token, { project: { name: project, domain_id: DEFAULT_DOMAIN_ID } })).body.project.id as string;
    const user = await ks('POST', '/v3/users', admin.token, { user: { name, password: `${name}-secret`, domain_id: DEFAULT_DOMAIN_ID } });
    await ks('PUT', `/v3/projects/${projectId}/users/${user.body.user.id}/roles/${roleId(role)}`, admin.token);
    return login(name, `${name}-secret`, project);
  };
  return {
    authUrl,
    admin,
    alpha: await makeUser('alpha-member', 'alpha', 'member'),
    beta: await makeUser('beta-member', 'beta', 'member'),
    alphaReader: await makeUser('alpha-reader', 'alpha', 'reader'),
    async close() {
      await app.close();
      await database.close();
    },
  };
}
