import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createBus, type Bus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import { listen } from '../core/http/server.js';
import { roleLogger } from '../core/logging.js';
import { freePort, injectJson, testConfig, type InjectMethod, type TestReply } from '../core/testing.js';
import { startLoopbackIdentity, type TestUser } from '../identity/testing.js';
import { startImage } from '../image/service.js';
import type { RunningAgents } from './agent/agent.js';
import type { VolumeDriver } from './drivers/driver.js';
import { ensureDefaultVolumeType } from './bootstrap.js';
import { startSchedulerRoles } from './scheduler/roles.js';
import { buildVolumeApp, openVolume, startVolumeAgentRole } from './service.js';
import type { VolumeService } from './volume.js';

export type { InjectMethod, TestReply } from '../core/testing.js';
export type { TestUser } from '../identity/testing.js';

/**
 * The volume service on a fresh database and data directory for tests:
 * identity and image on loopback ports, the volume API (driven with
 * `request`, Fastify's `inject`, and also listening for other services),
 * the scheduler and conductor, one agent per backend and the backup
 * service, on a private memory bus. Backends default to two fake ones,
 * `fake-a` and `fake-b`; backups to the fake (in memory) backup driver.
 */
export interface TestVolumeCloud {
  volume: VolumeService;
  config: StratusConfig;
  bus: Bus;
  admin: TestUser;
  alpha: TestUser;
  beta: TestUser;
  alphaReader: TestUser;
  agents: RunningAgents;
  urls: Record<'identity' | 'image' | 'volume', string>;
  /** A request to `/v3<url>` of the volume API, at microversion `version` when given. */
  request(method: InjectMethod, url: string, options?: { user?: TestUser | null; payload?: unknown; version?: string; headers?: Record<string, string> }): Promise<TestReply>;
  /** A request to the image service with the user's token. */
  image(method: InjectMethod, path: string, options?: { user?: TestUser; payload?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any }>;
  /** Polls the volume (as admin) until `done(volume)` holds; returns it. Fails after `attempts` polls 20 ms apart. */
  waitVolume(id: string, done: (volume: Record<string, any>) => boolean, attempts?: number): Promise<Record<string, any>>;
  /** Stops the agents (as a crash would, when `crash`) and starts them again on the same backends and drivers. */
  restartAgents(): Promise<void>;
  close(): Promise<void>;
}

export interface TestVolumeCloudOptions {
  /** Configuration keys as in `loadConfig` (`volume.backends`, ...). */
  overrides?: Record<string, unknown>;
  /** Drivers by backend name, instead of those the configuration names. */
  drivers?: Record<string, VolumeDriver>;
  /** More services in identity's catalog (`object-store` for backups to a real object store a test starts). */
  services?: { type: string; name: string; url: string }[];
  /** More service users (the `swift` user of that object store). */
  serviceUsers?: { name: string; password: string }[];
}

const FAKE_BACKENDS = {
  'fake-a': { driver: 'fake', volume_backend_name: 'fake-a', path: '', format: 'raw', capacity_gb: 1000, availability_zone: '' },
  'fake-b': { driver: 'fake', volume_backend_name: 'fake-b', path: '', format: 'raw', capacity_gb: 500, availability_zone: '' },
};

export async function createVolumeTestCloud(options: TestVolumeCloudOptions = {}): Promise<TestVolumeCloud> {
  const { config, dir, unique } = testConfig('volume', { 'volume.backends': FAKE_BACKENDS, 'volume.host': 'test-host', 'volume.report_interval': 0, 'volume.backup_driver': 'fake', ...(options.overrides ?? {}) });
  config.bus.url = `memory://${unique}`;
  const bus = await createBus(config.bus.url);
  const [imagePort, volumePort] = [await freePort(), await freePort()];
  const urls = { identity: '', image: `http://127.0.0.1:${imagePort}`, volume: `http://127.0.0.1:${volumePort}` };
  const passwords = { cinder: 'cinder-secret', glance: 'glance-secret' };
  const identity = await startLoopbackIdentity(config, bus, {
    services: [
      { type: 'volumev3', name: 'cinderv3', url: `${urls.volume}/v3/$(project_id)s` },
      { type: 'block-storage', name: 'cinder', url: `${urls.volume}/v3/$(project_id)s` },
      { type: 'image', name: 'glance', url: urls.image },
      ...(options.services ?? []),
    ],
    serviceUser: { name: 'cinder', password: passwords.cinder },
    moreServiceUsers: [{ name: 'glance', password: passwords.glance }, ...(options.serviceUsers ?? [])],
  });
  urls.identity = identity.authUrl;
  const authUrl = identity.authUrl;
  const stops: (() => Promise<void>)[] = [() => identity.close()];
  try {
    const image = await startImage(config, bus, { identity: { authUrl, password: passwords.glance }, port: imagePort, publicUrl: urls.image });
    stops.push(() => image.stop());
    const volumeOptions = { identity: { authUrl, password: passwords.cinder }, publicUrl: urls.volume, logger: roleLogger('volume-api'), ...(options.drivers ? { drivers: options.drivers } : {}) };
    const { volume, database } = await openVolume(config, bus, volumeOptions, 'volume-api');
    stops.push(() => database.close());
    await ensureDefaultVolumeType(volume);
    const app = buildVolumeApp(volume, volumeOptions);
    await listen(app, '127.0.0.1', volumePort);
    stops.push(() => app.close());
    const roles = await startSchedulerRoles(volume, `test-${unique}`);
    stops.push(() => roles.stop());
    let agents = await startVolumeAgentRole(config, bus, volumeOptions);
    const stopAgents = (): Promise<void> => agents.stop();
    stops.push(stopAgents);
    const request: TestVolumeCloud['request'] = (method, url, opts = {}) =>
      injectJson(app, method, `/v3${url}`, { token: opts.user === undefined ? identity.admin.token : (opts.user?.token ?? null), payload: opts.payload, headers: { ...(opts.version ? { 'OpenStack-API-Version': `volume ${opts.version}` } : {}), ...(opts.headers ?? {}) } });
    return {
      volume,
      config,
      bus,
      admin: identity.admin,
      alpha: identity.alpha,
      beta: identity.beta,
      alphaReader: identity.alphaReader,
      get agents() {
        return agents;
      },
      urls,
      request,
      async image(method, path, opts = {}) {
        const res = await fetch(`${urls.image}${path}`, {
          method,
          headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-Auth-Token': (opts.user ?? identity.admin).token, ...(opts.headers ?? {}) },
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
      async waitVolume(id, done, attempts = 500) {
        let last: Record<string, any> = {};
        for (let i = 0; i < attempts; i++) {
          const res = await request('GET', `/volumes/${id}`, { user: identity.admin });
          last = res.body.volume ?? res.body;
          if (res.status === 200 && done(last)) return last;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.fail(`volume ${id} did not reach the expected state; last seen: ${JSON.stringify(last)}`);
      },
      async restartAgents() {
        await agents.stop();
        agents = await startVolumeAgentRole(config, bus, volumeOptions);
      },
      async close() {
        for (const stop of stops.reverse()) await stop().catch(() => undefined);
        await bus.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await bus.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
