import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createBus } from '../core/bus/index.js';
import { loadConfig, type StratusConfig } from '../core/config.js';
import { configureLogging } from '../core/logging.js';
import { startLoopbackIdentity, type TestUser } from '../identity/testing.js';
import { serveAgentRpc } from './agent-rpc.js';
import { startFakeAgents, type FakeAgent } from './agents/fake-agents.js';
import { settleComputeNotifier } from './compute-notifier.js';
import { FakeDriver } from './drivers/fake.js';
import type { NetworkService } from './network.js';
import { createNetwork, driverCallbacks } from './service.js';

export type InjectMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface TestReply {
  status: number;
  /** Parsed JSON (`{}` when empty or not JSON). */
  body: Record<string, any>;
  /** The raw body. */
  raw: Buffer;
  headers: Record<string, string | string[] | number | undefined>;
}

export type { TestUser } from '../identity/testing.js';

/**
 * The network API on a fresh database and data directory, with a real
 * identity service listening on a loopback port (tokens are validated over
 * HTTP, as in a deployment) and the fake driver. Drive it with `request`
 * (Fastify's `inject`).
 */
export interface TestNetwork {
  net: NetworkService;
  driver: FakeDriver;
  app: FastifyInstance;
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
  /** The identity API's URL (`http://127.0.0.1:<port>/v3`). */
  authUrl: string;
  /** The fake agents of host {@link TEST_AGENT_HOST} (empty unless `agents: true`). */
  agents: FakeAgent[];
  /**
   * Waits until the driver's status reports were recorded and the port
   * events they caused were sent to compute.
   */
  settle(): Promise<void>;
  request(method: InjectMethod, url: string, options?: { user?: TestUser | null; payload?: unknown; headers?: Record<string, string> }): Promise<TestReply>;
  /**
   * POSTs `{<resource>: body}` to `/v2.0/<collection>` and returns the
   * created view; throws with the reply when the status is not 201.
   */
  create(user: TestUser, collection: string, resource: string, body?: Record<string, unknown>): Promise<Record<string, any>>;
  close(): Promise<void>;
}

/** The host name the test cloud's fake agents report. */
export const TEST_AGENT_HOST = 'stratus-test-host';

export interface TestNetworkOptions {
  /** More services in the catalog (e.g. a fake `compute` on loopback), each with one URL for every interface. */
  services?: { type: string; name: string; url: string }[];
  /** Start the fake agents (bridge, DHCP, L3, metadata) on {@link TEST_AGENT_HOST}, as `startNetwork` does with the fake driver. */
  agents?: boolean;
}

/**
 * Builds it. `overrides` are configuration keys (`network.default_quotas`,
 * ...) as in `loadConfig`. Honours `STRATUS_TEST_DATABASE_URL` and
 * `STRATUS_TEST_BUS_URL` like the identity tests. Wired as `startNetwork`
 * wires the service: the driver reports port status, agents reach the
 * server over the bus (`network-plugin`).
 */
export async function createTestNetwork(overrides: Record<string, unknown> = {}, options: TestNetworkOptions = {}): Promise<TestNetwork> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-network-'));
  configureLogging({ level: process.env.STRATUS_TEST_LOG_LEVEL ?? 'silent' });
  const dbUrl = process.env.STRATUS_TEST_DATABASE_URL;
  const unique = path.basename(dir).replace(/[^a-z0-9]/gi, '').toLowerCase();
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dir,
      'database.url': dbUrl ? dbUrl.replace('{service}', `{service}_${unique}`) : '',
      // A bus of its own, also when the suite runs on RabbitMQ: the agents'
      // topics (`network-plugin`, ...) are cloud-wide names, and test files
      // running side by side on one broker would answer each other's agents.
      // The AMQP transport itself is tested in src/core/bus/.
      'bus.url': `memory://${unique}`,
      'identity.password_hash': { memory_kib: 1024, iterations: 1, parallelism: 1 },
      ...overrides,
    },
  });
  const bus = await createBus(config.bus.url);
  const servicePassword = 'neutron-test-secret';
  const networkUrl = 'http://network.test:9696';
  const identity = await startLoopbackIdentity(config, bus, {
    services: [{ type: 'network', name: 'neutron', url: networkUrl }, ...(options.services ?? [])],
    serviceUser: { name: 'neutron', password: servicePassword },
  });
  const { authUrl, admin, alpha, beta, alphaReader } = identity;
  const driver = new FakeDriver();
  const { net, app, database } = await createNetwork(config, bus, { identity: { authUrl, password: servicePassword }, publicUrl: networkUrl, driver });
  await net.driver.start(driverCallbacks(net));
  const rpc = await serveAgentRpc(net, `test-${unique}`);
  const agents = options.agents ? await startFakeAgents(bus, { host: TEST_AGENT_HOST, availabilityZone: config.network.availability_zone, reportInterval: config.network.report_interval, logger: net.log }) : null;
  await app.ready();


  const request: TestNetwork['request'] = async (method, url, options = {}) => {
    const payload = options.payload;
    const res = await app.inject({
      method,
      url,
      headers: {
        accept: 'application/json',
        ...(options.user ? { 'x-auth-token': options.user.token } : {}),
        ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
    });
    let body: Record<string, any> = {};
    try {
      body = res.body ? (JSON.parse(res.body) as Record<string, any>) : {};
    } catch {
      body = {};
    }
    return { status: res.statusCode, body, raw: res.rawPayload, headers: res.headers };
  };

  return {
    net,
    driver,
    app,
    config,
    dataDir: dir,
    admin,
    alpha,
    beta,
    alphaReader,
    authUrl,
    agents: agents?.agents ?? [],
    async settle() {
      await driver.settled();
      await settleComputeNotifier(net);
    },
    request,
    async create(user, collection, resource, body = {}) {
      const res = await request('POST', `/v2.0/${collection}`, { user, payload: { [resource]: body } });
      if (res.status !== 201) throw new Error(`${resource} create failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body[resource] as Record<string, any>;
    },
    async close() {
      await app.close();
      await agents?.stop();
      await rpc.stop();
      await driver.stop();
      await settleComputeNotifier(net);
      await database.close();
      await identity.close();
      await bus.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
