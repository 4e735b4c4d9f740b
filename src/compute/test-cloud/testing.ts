import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createBus, type Bus } from '../../core/bus/index.js';
import type { StratusConfig } from '../../core/config.js';
import { brokerLock, rabbitmqctl } from '../../core/bus/test-support.js';
import { listen } from '../../core/http/server.js';
import { roleLogger } from '../../core/logging.js';
import { freePort, injectJson, testConfig, type InjectMethod, type TestReply } from '../../core/testing.js';
import { startLoopbackIdentity, type TestUser } from '../../identity/testing.js';
import { startImage } from '../../image/service.js';
import { startNetwork } from '../../network/service.js';
import { startPlacement } from '../../placement/service.js';
import type { ComputeAgent } from '../agent/agent.js';
import type { ComputeService } from '../compute.js';
import { startConductorRoles, startFakeAgents } from '../roles.js';
import { buildComputeApp, openCompute } from '../service.js';
import { ensureDefaultFlavors } from '../bootstrap.js';

/**
 * A whole small cloud for compute's flow tests: identity, image, network
 * (fake driver), placement and compute (API, conductor, scheduler, fake
 * agents on `hosts`) on loopback ports and a private memory bus. Requests go
 * through `request` to `/v2.1<url>`; other services through `call`.
 */
export interface TestCloud {
  compute: ComputeService;
  config: StratusConfig;
  bus: Bus;
  admin: TestUser;
  alpha: TestUser;
  beta: TestUser;
  alphaReader: TestUser;
  agents: ComputeAgent[];
  /** Service URLs; `volume` is '' unless the cloud runs the block storage service (`volume: true`). */
  urls: Record<'identity' | 'image' | 'network' | 'placement' | 'compute' | 'volume', string>;
  request(method: InjectMethod, url: string, options?: { user?: TestUser | null; payload?: unknown; version?: string }): Promise<TestReply>;
  /** A request to another service of the cloud (`network`, `image`, `placement`, `volume`: paths from `/v3`) with the user's token. */
  call(service: 'image' | 'network' | 'placement' | 'volume', method: InjectMethod, path: string, options?: { user?: TestUser; payload?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/** Options of {@link createTestCloud}. */
export interface TestCloudOptions {
  /** The fake hosts (default `host-a`, `host-b`); their size is `compute.fake_host_resources` in `overrides`. */
  hosts?: string[];
  /** Configuration keys as in `loadConfig`. */
  overrides?: Record<string, unknown>;
  /**
   * Use the bus of `STRATUS_TEST_BUS_URL` when it is set (RabbitMQ), in a
   * virtual host of this cloud's own, so that test files running at the same
   * time never take each other's messages. Default: a private memory bus.
   */
  sharedBus?: boolean;
  /**
   * Run the block storage service too (volume API, scheduler and agents on
   * two fake backends, `fake-a` 1000 GB and `fake-b` 500 GB, on host
   * `volume-host`), in the catalog as `volumev3` and `block-storage`.
   * Without it the catalog has no block storage and every volume is unknown.
   */
  volume?: boolean;
}

/** The fake backends of a test cloud's block storage service. */
const FAKE_VOLUME_BACKENDS = {
  'fake-a': { driver: 'fake', volume_backend_name: 'fake-a', path: '', format: 'raw', capacity_gb: 1000, availability_zone: '' },
  'fake-b': { driver: 'fake', volume_backend_name: 'fake-b', path: '', format: 'raw', capacity_gb: 500, availability_zone: '' },
};

/** The `n` fake host names `prefix-1` ... `prefix-n`. */
export function hostNames(n: number, prefix = 'host'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
}

/**
 * The bus URL of a test cloud: a memory bus of its own, or (with
 * `sharedBus` and `STRATUS_TEST_BUS_URL` set) a new RabbitMQ virtual host,
 * removed by the returned cleanup. Holds the broker's shared test lock
 * meanwhile, so that the broker-restart test waits for it.
 */
async function testBusUrl(unique: string, sharedBus: boolean): Promise<{ url: string; cleanup(): Promise<void> }> {
  const base = process.env.STRATUS_TEST_BUS_URL;
  if (!sharedBus || !base?.startsWith('amqp')) return { url: `memory://${unique}`, cleanup: async () => undefined };
  const release = await brokerLock('shared');
  const vhost = `stratus-test-${unique}`;
  const url = new URL(base);
  try {
    await rabbitmqctl(['add_vhost', vhost]);
    await rabbitmqctl(['set_permissions', '-p', vhost, decodeURIComponent(url.username || 'guest'), '.*', '.*', '.*']);
  } catch (err) {
    await release();
    throw err;
  }
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return {
    url: url.toString(),
    async cleanup() {
      await rabbitmqctl(['delete_vhost', vhost]).catch(() => undefined);
      await release();
    },
  };
}

export async function createTestCloud(options: TestCloudOptions = {}): Promise<TestCloud> {
  const withVolume = options.volume === true;
  const volumeDefaults = withVolume ? { 'volume.backends': FAKE_VOLUME_BACKENDS, 'volume.host': 'volume-host', 'volume.report_interval': 0 } : {};
  const { config, dir, unique } = testConfig('cloud', { 'compute.report_interval': 0, 'compute.sync_power_state_interval': 0, 'network.report_interval': 3600, ...volumeDefaults, ...(options.overrides ?? {}) });
  const busUrl = await testBusUrl(unique, options.sharedBus === true);
  config.bus.url = busUrl.url;
  const bus = await createBus(config.bus.url);
  const [imagePort, networkPort, placementPort, computePort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const volumePort = withVolume ? await freePort() : 0;
  const urls = {
    identity: '',
    image: `http://127.0.0.1:${imagePort}`,
    network: `http://127.0.0.1:${networkPort}`,
    placement: `http://127.0.0.1:${placementPort}`,
    compute: `http://127.0.0.1:${computePort}`,
    volume: withVolume ? `http://127.0.0.1:${volumePort}` : '',
  };
  const passwords = { nova: 'nova-secret', neutron: 'neutron-secret', glance: 'glance-secret', placement: 'placement-secret', cinder: 'cinder-secret' };
  const volumeServices = withVolume
    ? [
        { type: 'volumev3', name: 'cinderv3', url: `${urls.volume}/v3/$(project_id)s` },
        { type: 'block-storage', name: 'cinder', url: `${urls.volume}/v3/$(project_id)s` },
      ]
    : [];
  const identity = await startLoopbackIdentity(config, bus, {
    services: [
      { type: 'compute', name: 'nova', url: `${urls.compute}/v2.1` },
      { type: 'image', name: 'glance', url: urls.image },
      { type: 'network', name: 'neutron', url: urls.network },
      { type: 'placement', name: 'placement', url: urls.placement },
      ...volumeServices,
    ],
    serviceUser: { name: 'nova', password: passwords.nova },
    moreServiceUsers: [
      { name: 'neutron', password: passwords.neutron },
      { name: 'glance', password: passwords.glance },
      { name: 'placement', password: passwords.placement },
      ...(withVolume ? [{ name: 'cinder', password: passwords.cinder }] : []),
    ],
  });
  urls.identity = identity.authUrl;
  const authUrl = identity.authUrl;
  const stops: (() => Promise<void>)[] = [() => identity.close()];
  const image = await startImage(config, bus, { identity: { authUrl, password: passwords.glance }, port: imagePort, publicUrl: urls.image });
  stops.push(() => image.stop());
  const network = await startNetwork(config, bus, { identity: { authUrl, password: passwords.neutron }, port: networkPort, publicUrl: urls.network });
  stops.push(() => network.stop());
  const placement = await startPlacement(config, { identity: { authUrl, password: passwords.placement }, port: placementPort });
  stops.push(() => placement.stop());
  if (withVolume) {
    // Loaded only when asked for, so that compute's other tests need nothing of it.
    const { startVolume } = await import('../../volume/service.js');
    const volume = await startVolume(config, bus, { identity: { authUrl, password: passwords.cinder }, port: volumePort, publicUrl: urls.volume, logger: roleLogger('volume-api') });
    stops.push(() => volume.stop());
  }
  const computeOptions = { identity: { authUrl, password: passwords.nova }, publicUrl: urls.compute, logger: roleLogger('compute-api') };
  const { compute, database } = await openCompute(config, bus, computeOptions, 'compute-api');
  await ensureDefaultFlavors(compute.db);
  stops.push(() => database.close());
  const app = buildComputeApp(compute, computeOptions);
  await listen(app, '127.0.0.1', computePort);
  stops.push(() => app.close());
  const roles = await startConductorRoles(compute, `test-${unique}`);
  stops.push(() => roles.stop());
  const fake = await startFakeAgents(config, bus, { hosts: options.hosts ?? ['host-a', 'host-b'], identity: { authUrl, password: passwords.nova }, log: compute.log });
  stops.push(() => fake.stop());
  return {
    compute,
    config,
    bus,
    admin: identity.admin,
    alpha: identity.alpha,
    beta: identity.beta,
    alphaReader: identity.alphaReader,
    agents: fake.agents,
    urls,
    request: (method, url, opts = {}) =>
      injectJson(app, method, `/v2.1${url}`, { token: opts.user?.token ?? null, payload: opts.payload, headers: opts.version ? { 'OpenStack-API-Version': `compute ${opts.version}` } : {} }),
    async call(service, method, path, opts = {}) {
      if (!urls[service]) throw new Error(`this test cloud does not run the ${service} service`);
      const res = await fetch(`${urls[service]}${service === 'volume' ? `/v3${path}` : path}`, {
        method,
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...(opts.user ? { 'X-Auth-Token': opts.user.token } : {}), ...(opts.headers ?? {}) },
        ...(opts.payload === undefined ? {} : { body: typeof opts.payload === 'string' || opts.payload instanceof Uint8Array ? (opts.payload as string) : JSON.stringify(opts.payload) }),
      });
      const text = await res.text();
      let body: unknown = {};
      try {
        body = text ? JSON.parse(text) : {};
      } catch {
        body = text;
      }
      return { status: res.status, body };
    },
    async close() {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      await bus.close();
      await busUrl.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * What booting needs in a test cloud: a public raw image with 1 KiB of data
 * (as admin) and a network of alpha's with an IPv4 subnet of `cidr`.
 */
export async function addBootFixtures(cloud: TestCloud, cidr = '10.1.0.0/24'): Promise<{ imageId: string; networkId: string }> {
  const image = await cloud.call('image', 'POST', '/v2/images', { user: cloud.admin, payload: { name: 'cirros', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  assert.equal(image.status, 201, JSON.stringify(image.body));
  const imageId = image.body.id as string;
  const upload = await fetch(`${cloud.urls.image}/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.admin.token, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(1024) });
  assert.equal(upload.status, 204, 'image uploaded');
  const network = await cloud.call('network', 'POST', '/v2.0/networks', { user: cloud.alpha, payload: { network: { name: 'lan' } } });
  assert.equal(network.status, 201, JSON.stringify(network.body));
  const networkId = network.body.network.id as string;
  const subnet = await cloud.call('network', 'POST', '/v2.0/subnets', { user: cloud.alpha, payload: { subnet: { network_id: networkId, cidr, ip_version: 4 } } });
  assert.equal(subnet.status, 201, JSON.stringify(subnet.body));
  return { imageId, networkId };
}
