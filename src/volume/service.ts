import type { FastifyInstance } from 'fastify';
import { installAuth, identityTokenValidator, type TokenValidator } from '../core/auth/token-middleware.js';
import { ServiceClient } from '../core/auth/service-client.js';
import type { Bus } from '../core/bus/index.js';
import { databaseUrl, type StratusConfig } from '../core/config.js';
import { migrate, openDatabase, type Database } from '../core/db/database.js';
import { novaFault } from '../core/http/faults.js';
import { negotiateMicroversion, type Microversion } from '../core/http/microversion.js';
import { createApiServer, listen } from '../core/http/server.js';
import { roleLogger, type Logger } from '../core/logging.js';
import { PolicyEnforcer } from '../core/policy/index.js';
import { startVolumeAgents, type RunningAgents } from './agent/agent.js';
import { registerVolumeApi } from './api/index.js';
import { ensureDefaultVolumeType } from './bootstrap.js';
import { VolumeError } from './errors.js';
import { migrations } from './db/migrations.js';
import type { VolumeSchema } from './db/schema.js';
import type { VolumeDriver } from './drivers/driver.js';
import { volumePolicyDefaults } from './policies.js';
import { startSchedulerRoles } from './scheduler/roles.js';
import { MAX_VERSION, MIN_VERSION, volumeHost, type VolumeService } from './volume.js';

export interface VolumeOptions {
  logger?: Logger;
  /** Where identity is and how the volume service logs in (the `cinder` service user). */
  identity: { authUrl: string; password: string; username?: string };
  /** Checks user tokens (default: through identity with a short cache). */
  validator?: TokenValidator;
  port?: number;
  publicUrl?: string;
  /** Drivers by backend name, instead of those the configuration names (tests). */
  drivers?: Record<string, VolumeDriver>;
}

/** Project ids in a URL (`/v3/{project_id}/volumes`): Keystone's 32 hex digits, or a dashed uuid. */
const PROJECT_IN_URL = /^\/v3\/(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?=\/|$|\?)/i;

/**
 * Block Storage v3 takes its paths with or without the project id
 * (`/v3/{project_id}/volumes` and, since 3.67 documented, `/v3/volumes`):
 * routes are written once, without it.
 */
export function stripProjectId(url: string): string {
  return url.replace(PROJECT_IN_URL, '/v3');
}

/** Opens the volume database (running its migrations) and builds what the API and scheduler roles share. */
export async function openVolume(config: StratusConfig, bus: Bus, options: VolumeOptions, role: string): Promise<{ volume: VolumeService; database: Database<VolumeSchema> }> {
  const log = options.logger ?? roleLogger(role);
  const database = await openDatabase<VolumeSchema>(databaseUrl(config, 'volume'), { role });
  await migrate(database.db, migrations);
  const policyFile = config.policy_files.volume;
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: options.identity.username ?? 'cinder', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: log, userAgent: 'stratus-volume' },
  );
  const publisher = `volume.${volumeHost(config)}`;
  const volume: VolumeService = {
    db: database.db,
    dialect: database.dialect,
    config,
    policy: new PolicyEnforcer(volumePolicyDefaults, policyFile ? { policyFile } : {}),
    bus,
    log,
    client,
    publicUrl: options.publicUrl ?? `http://${config.public_host}:${options.port ?? config.volume.port}`,
    notify: (eventType, payload) => {
      bus.notify(publisher, eventType, payload).catch((err: unknown) => log.warn({ err, event_type: eventType }, 'could not publish a notification'));
    },
  };
  return { volume, database };
}

/**
 * Builds the Block Storage API on `volume`: Cinder's fault format, the
 * microversion of every request (`OpenStack-API-Version: volume 3.X`),
 * tokens, and the routes. Does not listen.
 */
export function buildVolumeApp(volume: VolumeService, options: VolumeOptions): FastifyInstance {
  const authUri = options.identity.authUrl.replace(/\/v3\/?$/, '');
  const app = createApiServer({
    role: 'volume-api',
    logger: volume.log,
    bodyLimit: 1024 * 1024,
    rewriteUrl: stripProjectId,
    fault: (error) => {
      const fault = novaFault(error);
      return error.status === 401 ? { ...fault, headers: { 'WWW-Authenticate': `Keystone uri="${authUri}"` } } : fault;
    },
  });
  app.decorateRequest('volumeVersion', null as unknown as Microversion);
  // A resource path with an empty last segment (`GET /v3/volumes/`, a show without its id) names nothing, as in Cinder.
  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0] ?? '';
    if (path.length > '/v3/'.length && path.endsWith('/')) throw new VolumeError(404, 'The resource could not be found.');
  });
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.noVolumeMicroversion === true) return;
    const { version, responseHeaders } = negotiateMicroversion(req.headers, { service: 'volume', min: MIN_VERSION, max: MAX_VERSION });
    req.volumeVersion = version;
    for (const [name, value] of Object.entries(responseHeaders)) reply.header(name, value);
  });
  installAuth(app, options.validator ?? identityTokenValidator(volume.client, { cacheTtlMs: 60_000 }), { authUri });
  registerVolumeApi(app, volume);
  return app;
}

/** A running volume-api role. */
export interface RunningVolumeApi {
  volume: VolumeService;
  app: FastifyInstance;
  database: Database<VolumeSchema>;
  port: number;
  stop(): Promise<void>;
}

/** Starts the volume-api role and listens; creates the default volume type on first start. */
export async function startVolumeApi(config: StratusConfig, bus: Bus, options: VolumeOptions): Promise<RunningVolumeApi> {
  const { volume, database } = await openVolume(config, bus, options, 'volume-api');
  const app = buildVolumeApp(volume, options);
  try {
    await ensureDefaultVolumeType(volume);
    const port = await listen(app, config.bind_host, options.port ?? config.volume.port);
    if (!options.publicUrl) volume.publicUrl = `http://${config.public_host}:${port}`;
    return {
      volume,
      app,
      database,
      port,
      async stop() {
        await app.close();
        await database.close();
      },
    };
  } catch (err) {
    await app.close();
    await database.close();
    throw err;
  }
}

/** Starts the volume-scheduler role (the scheduler and the agents' conductor) for `serve`. */
export async function startVolumeScheduler(config: StratusConfig, bus: Bus, options: VolumeOptions): Promise<{ stop(): Promise<void> }> {
  const { volume, database } = await openVolume(config, bus, options, 'volume-scheduler');
  try {
    const roles = await startSchedulerRoles(volume, `${volumeHost(config)}-${process.pid}`);
    return {
      async stop() {
        await roles.stop();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}

/** Starts this host's volume agents, one per enabled backend (for `serve volume-agent`). */
export function startVolumeAgentRole(config: StratusConfig, bus: Bus, options: VolumeOptions): Promise<RunningAgents> {
  return startVolumeAgents(config, bus, { identity: options.identity, log: options.logger ?? roleLogger('volume-agent'), ...(options.drivers ? { drivers: options.drivers } : {}) });
}

/** The volume roles of an all-in-one process. */
export interface RunningVolume {
  api: RunningVolumeApi;
  agents: RunningAgents;
  stop(): Promise<void>;
}

/** Starts every volume role in this process, as `up` runs them: the API, the scheduler and conductor, and the agents. */
export async function startVolume(config: StratusConfig, bus: Bus, options: VolumeOptions): Promise<RunningVolume> {
  const api = await startVolumeApi(config, bus, options);
  const undo: (() => Promise<void>)[] = [() => api.stop()];
  const stop = async (): Promise<void> => {
    for (const step of undo.splice(0).reverse()) await step().catch((err: unknown) => api.volume.log.warn({ err }, 'stopping the volume service'));
  };
  try {
    const roles = await startSchedulerRoles(api.volume, `${volumeHost(config)}-${process.pid}`);
    undo.push(() => roles.stop());
    const agents = await startVolumeAgentRole(config, bus, options);
    undo.push(() => agents.stop());
    return { api, agents, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
