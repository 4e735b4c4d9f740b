import fs from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';
import { createBus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import { freePort, testConfig } from '../core/testing.js';
import { DEFAULT_DOMAIN_ID } from '../identity/bootstrap.js';
import { startLoopbackIdentity, type TestUser } from '../identity/testing.js';
import { startObjectProxy, type RunningObjectProxy } from './proxy/server.js';
import { createStorageCluster, type StorageCluster } from './storage/testing.js';

export type { TestUser } from '../identity/testing.js';

/**
 * A whole object store for tests: a loopback identity (with the
 * `object-store` service, the `swift` service user and the `ResellerAdmin`
 * role), a storage cluster of three nodes with one device each (three
 * replicas), and the proxy on a free port, all in one temporary directory.
 */
export interface ObjectTestCloud {
  config: StratusConfig;
  /** The proxy's root URL, `http://127.0.0.1:<port>`. */
  url: string;
  proxy: RunningObjectProxy;
  cluster: StorageCluster;
  /** Identity's v3 URL. */
  authUrl: string;
  /** Admin of the admin project (an operator of its own account, not a reseller admin). */
  admin: TestUser;
  /** `member` of project alpha: owner of alpha's account. */
  alpha: TestUser;
  /** `member` of project beta. */
  beta: TestUser;
  /** `reader` of project alpha: no operator role, so only ACLs let it in. */
  alphaReader: TestUser;
  /** Holds `ResellerAdmin` (on its own project `reseller`): may act on every account. */
  reseller: TestUser;
  /** `/v1/AUTH_<project id>` of a user's project. */
  account(user: TestUser): string;
  /**
   * One request to the proxy: as `user` (default alpha; null for an
   * anonymous one), with the body given (bytes, text, or a stream sent
   * chunked). The whole response body is returned.
   */
  request(method: string, path: string, options?: ObjectRequestOptions): Promise<ObjectTestReply>;
  close(): Promise<void>;
}

/** Options of {@link ObjectTestCloud.request}. */
export interface ObjectRequestOptions {
  user?: TestUser | null;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable;
  /** Query string without `?` (or put it in `path`). */
  query?: string;
}

/** A response of the proxy, body read. */
export interface ObjectTestReply {
  status: number;
  /** Header names lower-case. */
  headers: Record<string, string>;
  body: Buffer;
  /** The body as UTF-8 text. */
  text: string;
  /** The body parsed as JSON (throws when it is not). */
  json<T = any>(): T;
}

/** Percent-encodes a path for a request line, keeping `/` (object names with slashes). */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((part) => encodeURIComponent(part))
    .join('/');
}

/** Options of {@link createObjectTestCloud}. */
export interface ObjectTestCloudOptions {
  /** Configuration keys as in `loadConfig` (`object.max_file_size`, ...). */
  overrides?: Record<string, unknown>;
  /** Partition power of the test rings (default 6). */
  partPower?: number;
  /** Storage devices, one node each (default 3; more give handoffs). Three replicas either way. */
  devices?: number;
}

/** Builds an {@link ObjectTestCloud}. Cleans up everything it started if a step fails. */
export async function createObjectTestCloud(options: ObjectTestCloudOptions = {}): Promise<ObjectTestCloud> {
  const { config, dir, unique } = testConfig('object', options.overrides ?? {});
  config.bus.url = `memory://${unique}`;
  const bus = await createBus(config.bus.url);
  const stops: (() => Promise<void>)[] = [async () => bus.close()];
  const cleanup = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const swiftPassword = 'swift-secret';
    const identity = await startLoopbackIdentity(config, bus, {
      services: [{ type: 'object-store', name: 'swift', url: `${url}/v1/AUTH_$(project_id)s` }],
      serviceUser: { name: 'swift', password: swiftPassword },
    });
    stops.push(() => identity.close());
    const reseller = await makeResellerAdmin(identity.authUrl, identity.admin.token);
    const cluster = await createStorageCluster({ devices: options.devices ?? 3, replicas: 3, partPower: options.partPower ?? 6 });
    stops.push(() => cluster.close());
    const proxy = await startObjectProxy(config, {
      identity: { authUrl: identity.authUrl, password: swiftPassword },
      port,
      host: '127.0.0.1',
      storage: cluster.client,
      rings: cluster.rings,
      salt: cluster.salt,
    });
    stops.push(() => proxy.stop());
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    stops.push(async () => agent.destroy());
    const request: ObjectTestCloud['request'] = (method, path, opts = {}) => send(agent, port, method, path, opts.user === undefined ? identity.alpha : opts.user, opts);
    return {
      config,
      url,
      proxy,
      cluster,
      authUrl: identity.authUrl,
      admin: identity.admin,
      alpha: identity.alpha,
      beta: identity.beta,
      alphaReader: identity.alphaReader,
      reseller,
      account: (user) => `/v1/AUTH_${user.projectId}`,
      request,
      close: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function send(agent: http.Agent, port: number, method: string, path: string, user: TestUser | null, options: ObjectRequestOptions): Promise<ObjectTestReply> {
  const q = path.indexOf('?');
  const target = encodePath(q < 0 ? path : path.slice(0, q)) + (q < 0 ? (options.query ? `?${options.query}` : '') : path.slice(q));
  const headers: Record<string, string> = { ...(user ? { 'x-auth-token': user.token } : {}), ...(options.headers ?? {}) };
  const body = options.body;
  if (body !== undefined && !(body instanceof Readable) && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) {
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent, setHost: true }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const out: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
        const data = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: out,
          body: data,
          text: data.toString('utf8'),
          json: <T>() => JSON.parse(data.toString('utf8')) as T,
        });
      });
    });
    req.on('error', reject);
    if (body instanceof Readable) body.pipe(req);
    else req.end(body);
  });
}

/** A user `reseller-admin` with the `ResellerAdmin` role on project `reseller`, made through identity's API. */
async function makeResellerAdmin(authUrl: string, adminToken: string): Promise<TestUser> {
  const call = async (method: string, path: string, body?: unknown, token: string | null = adminToken): Promise<{ status: number; json: any; headers: Headers }> => {
    const res = await fetch(`${authUrl}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { 'x-auth-token': token } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : {}, headers: res.headers };
  };
  const ensure = async (list: string, create: string, key: string, body: Record<string, unknown>): Promise<string> => {
    const found = await call('GET', `${list}?name=${encodeURIComponent(String(body.name))}`);
    const existing = (found.json[`${key}s`] as { id: string }[] | undefined)?.[0];
    if (existing) return existing.id;
    const made = await call('POST', create, { [key]: body });
    if (made.status !== 201) throw new Error(`cannot create ${key} ${String(body.name)}: ${made.status} ${JSON.stringify(made.json)}`);
    return made.json[key].id as string;
  };
  const roleId = await ensure('/roles', '/roles', 'role', { name: 'ResellerAdmin' });
  const projectId = await ensure('/projects', '/projects', 'project', { name: 'reseller', domain_id: DEFAULT_DOMAIN_ID });
  const userId = await ensure('/users', '/users', 'user', { name: 'reseller-admin', password: 'reseller-secret', domain_id: DEFAULT_DOMAIN_ID });
  const grant = await call('PUT', `/projects/${projectId}/users/${userId}/roles/${roleId}`);
  if (grant.status >= 300) throw new Error(`cannot grant ResellerAdmin: ${grant.status}`);
  const login = await call(
    'POST',
    '/auth/tokens',
    { auth: { identity: { methods: ['password'], password: { user: { name: 'reseller-admin', domain: { id: DEFAULT_DOMAIN_ID }, password: 'reseller-secret' } } }, scope: { project: { id: projectId } } } },
    null,
  );
  const token = login.headers.get('x-subject-token');
  if (login.status !== 201 || !token) throw new Error(`login of reseller-admin failed: ${login.status}`);
  return { token, userId, projectId };
}
