import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { createBus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import { injectJson, testConfig, type InjectMethod, type TestReply } from '../core/testing.js';
import { startLoopbackIdentity, type TestUser } from '../identity/testing.js';
import { serveAgentRpc } from './agent-rpc.js';
import { startFakeAgents, type FakeAgent } from './agents/fake-agents.js';
import { settleComputeNotifier } from './compute-notifier.js';
import { FakeDriver } from './drivers/fake.js';
import type { NetworkService } from './network.js';
import { isoNow, newUuid } from './common.js';
import type { PortRow } from './db/schema.js';
import { createNetwork, driverCallbacks } from './service.js';

export type { InjectMethod, TestReply } from '../core/testing.js';
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
  /**
   * Inserts a port row (and its addresses) straight into the tables, for
   * tests that need a port the API would not make (another project's on a
   * private network, a DHCP port) or many ports fast. Returns the row.
   */
  insertPort(fields: Partial<PortRow> & { network_id: string }, addresses?: { subnet_id: string; ip_address: string }[]): Promise<PortRow>;
  /** Records the notifications the service publishes from now on (`events`); `clear()` empties it. */
  recordNotifications(): { events: { type: string; payload: any }[]; clear(): void };
  close(): Promise<void>;
}

/** Asserts a Neutron error: the status, the `NeutronError` type and, when given, the message. */
export function expectNeutronError(res: { status: number; body: Record<string, any> }, status: number, type?: string, message?: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  if (type !== undefined) assert.equal(res.body.NeutronError?.type, type, JSON.stringify(res.body));
  if (message !== undefined) assert.equal(res.body.NeutronError?.message, message, 'message');
}

/** The `type` of a Neutron error body (undefined for a success). */
export function errorType(res: { body: Record<string, any> }): string | undefined {
  return res.body.NeutronError?.type as string | undefined;
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
  // A bus of its own, also when the suite runs on RabbitMQ: the agents'
  // topics (`network-plugin`, ...) are cloud-wide names, and test files
  // running side by side on one broker would answer each other's agents.
  // The AMQP transport itself is tested in src/core/bus/.
  const { config, dir, unique } = testConfig('network', overrides);
  config.bus.url = `memory://${unique}`;
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


  const request: TestNetwork['request'] = (method, url, options = {}) => injectJson(app, method, url, { token: options.user?.token ?? null, payload: options.payload, ...(options.headers ? { headers: options.headers } : {}) });

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
    async insertPort(fields, addresses = []) {
      const id = fields.id ?? newUuid();
      const now = isoNow();
      const row: PortRow = {
        id,
        project_id: alpha.projectId,
        name: '',
        description: '',
        created_at: now,
        updated_at: now,
        revision_number: 1,
        mac_address: `fa:16:3e:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}`,
        admin_state_up: 1,
        status: 'DOWN',
        device_id: '',
        device_owner: '',
        binding_host_id: '',
        binding_vif_type: 'unbound',
        binding_vif_details: '{}',
        binding_vnic_type: 'normal',
        binding_profile: '{}',
        port_security_enabled: 1,
        allowed_address_pairs: '[]',
        extra_dhcp_opts: '[]',
        dns_name: '',
        ...fields,
      };
      await net.db.insertInto('port').values(row).execute();
      for (const a of addresses) await net.db.insertInto('ip_allocation').values({ ...a, network_id: row.network_id, port_id: id }).execute();
      return row;
    },
    recordNotifications() {
      const events: { type: string; payload: any }[] = [];
      const original = net.notify.bind(net);
      net.notify = (type, payload, ctx) => {
        events.push({ type, payload });
        original(type, payload, ctx);
      };
      return { events, clear: () => events.splice(0) };
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
