import type { FastifyInstance } from 'fastify';
import { installAuth, identityTokenValidator, type TokenValidator } from '../core/auth/token-middleware.js';
import { ServiceClient } from '../core/auth/service-client.js';
import type { Bus } from '../core/bus/index.js';
import { ConfigError, databaseUrl, type StratusConfig } from '../core/config.js';
import { migrate, openDatabase, type Database } from '../core/db/database.js';
import { novaFault } from '../core/http/faults.js';
import { negotiateMicroversion, type Microversion } from '../core/http/microversion.js';
import { createApiServer, listen } from '../core/http/server.js';
import { roleLogger, type Logger } from '../core/logging.js';
import { PolicyEnforcer } from '../core/policy/index.js';
import { registerComputeApi } from './api/index.js';
import { MAX_VERSION, MIN_VERSION, type ComputeService } from './compute.js';
import { migrations } from './db/migrations.js';
import type { ComputeSchema } from './db/schema.js';
import { PlacementClient } from './placement-client.js';
import { withInstanceInfo } from './notifications.js';
import { computePolicyDefaults } from './policies.js';
import { ensureDefaultFlavors } from './bootstrap.js';
import { agentHosts, startConductorRoles, startFakeAgents, startQemuAgent } from './roles.js';
import { volumesBootAsServers } from './api/volumes.js';

export interface ComputeOptions {
  logger?: Logger;
  /** Where identity is and how compute logs in (the `nova` service user). */
  identity: { authUrl: string; password: string; username?: string };
  /** Checks user tokens (default: through identity with a short cache). */
  validator?: TokenValidator;
  port?: number;
  publicUrl?: string;
}

/** A running compute-api role. */
export interface RunningComputeApi {
  compute: ComputeService;
  app: FastifyInstance;
  database: Database<ComputeSchema>;
  port: number;
  stop(): Promise<void>;
}

/** Opens compute's database (running its migrations) and builds what its roles share. */
export async function openCompute(config: StratusConfig, bus: Bus, options: ComputeOptions, role: string): Promise<{ compute: ComputeService; database: Database<ComputeSchema> }> {
  const log = options.logger ?? roleLogger(role);
  const database = await openDatabase<ComputeSchema>(databaseUrl(config, 'compute'), { role });
  await migrate(database.db, migrations);
  const policyFile = config.policy_files.compute;
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: options.identity.username ?? 'nova', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: log, userAgent: 'stratus-compute' },
  );
  const publisher = `compute.${config.public_host}`;
  const compute: ComputeService = {
    db: database.db,
    dialect: database.dialect,
    config,
    policy: new PolicyEnforcer(computePolicyDefaults, policyFile ? { policyFile } : {}),
    bus,
    log,
    client,
    placement: new PlacementClient(client, { logger: log }),
    publicUrl: options.publicUrl ?? `http://${config.public_host}:${options.port ?? config.compute.port}`,
    notify: (eventType, payload) => {
      withInstanceInfo(database.db, payload)
        .then((full) => bus.notify(publisher, eventType, full))
        .catch((err: unknown) => log.warn({ err, event_type: eventType }, 'could not publish a notification'));
    },
  };
  return { compute, database };
}

/**
 * Builds the compute API on `compute`: Nova's fault format, the microversion
 * of every request (`OpenStack-API-Version: compute X.Y` or
 * `X-OpenStack-Nova-API-Version`), tokens, and the routes. Does not listen.
 */
export function buildComputeApp(compute: ComputeService, options: ComputeOptions): FastifyInstance {
  const authUri = options.identity.authUrl.replace(/\/v3\/?$/, '');
  const app = createApiServer({
    role: 'compute-api',
    logger: compute.log,
    bodyLimit: 1024 * 1024,
    extraRequestIdHeaders: ['x-compute-request-id'],
    rewriteUrl: volumesBootAsServers,
    fault: (error) => {
      const fault = novaFault(error);
      return error.status === 401 ? { ...fault, headers: { 'WWW-Authenticate': `Keystone uri="${authUri}"` } } : fault;
    },
  });
  app.decorateRequest('apiVersion', null as unknown as Microversion);
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.noMicroversion === true) return;
    const { version, responseHeaders } = negotiateMicroversion(req.headers, { service: 'compute', min: MIN_VERSION, max: MAX_VERSION, legacyHeader: 'X-OpenStack-Nova-API-Version' });
    req.apiVersion = version;
    for (const [name, value] of Object.entries(responseHeaders)) reply.header(name, value);
  });
  installAuth(app, options.validator ?? identityTokenValidator(compute.client, { cacheTtlMs: 60_000 }), { authUri });
  registerComputeApi(app, compute);
  return app;
}

/** Opens the database and builds the API (for tests, which drive it with `inject`). */
export async function createComputeApi(config: StratusConfig, bus: Bus, options: ComputeOptions): Promise<{ compute: ComputeService; app: FastifyInstance; database: Database<ComputeSchema> }> {
  const { compute, database } = await openCompute(config, bus, options, 'compute-api');
  return { compute, app: buildComputeApp(compute, options), database };
}

/** Starts the compute-api role and listens. */
export async function startComputeApi(config: StratusConfig, bus: Bus, options: ComputeOptions): Promise<RunningComputeApi> {
  const { compute, app, database } = await createComputeApi(config, bus, options);
  try {
    const port = await listen(app, config.bind_host, options.port ?? config.compute.port);
    if (!options.publicUrl) compute.publicUrl = `http://${config.public_host}:${port}`;
    return {
      compute,
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

/**
 * Starts compute-conductor and/or compute-scheduler (for `serve`): they
 * share compute's database with the API; the conductor creates the default
 * flavors on first start as `up` does.
 */
export async function startComputeConductor(config: StratusConfig, bus: Bus, options: ComputeOptions, which: ('conductor' | 'scheduler')[]): Promise<{ stop(): Promise<void> }> {
  const { compute, database } = await openCompute(config, bus, options, which.includes('conductor') ? 'compute-conductor' : 'compute-scheduler');
  try {
    if (config.compute.bootstrap_flavors && which.includes('conductor')) await ensureDefaultFlavors(compute.db);
    const roles = await startConductorRoles(compute, `${config.public_host}-${process.pid}`, which);
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

/** Starts the compute agents of this host (`agentHosts`) with the configured virt driver (for `serve`). */
export async function startComputeAgents(config: StratusConfig, bus: Bus, options: ComputeOptions): Promise<{ stop(): Promise<void> }> {
  return startAgents(config, bus, options, options.logger ?? roleLogger('compute-agent'));
}

/** The agents of the configured virt driver: one per fake host, or one qemu agent for this machine. */
function startAgents(config: StratusConfig, bus: Bus, options: ComputeOptions, log: Logger): Promise<{ stop(): Promise<void> }> {
  const identity = { authUrl: options.identity.authUrl, password: options.identity.password };
  switch (config.compute.virt_driver) {
    case 'fake':
      return startFakeAgents(config, bus, { hosts: agentHosts(config), identity, log });
    case 'qemu':
      return startQemuAgent(config, bus, { host: agentHosts({ ...config, compute: { ...config.compute, fake_hosts: 0 } })[0] ?? config.public_host, identity, log });
    default:
      throw new ConfigError(`compute.virt_driver '${config.compute.virt_driver}' is not available (use 'fake' or 'qemu')`);
  }
}

/** The compute roles of an all-in-one process. */
export interface RunningCompute {
  api: RunningComputeApi;
  stop(): Promise<void>;
}

/**
 * Starts every compute role in this process, as `up` runs them: the API,
 * the conductor and scheduler, and the agents of the virt driver (one per
 * fake host of `agentHosts`, or one qemu agent for this machine); creates the default flavors on first start.
 */
export async function startCompute(config: StratusConfig, bus: Bus, options: ComputeOptions): Promise<RunningCompute> {
  const api = await startComputeApi(config, bus, options);
  const undo: (() => Promise<void>)[] = [() => api.stop()];
  const stop = async (): Promise<void> => {
    for (const step of undo.splice(0).reverse()) await step().catch((err: unknown) => api.compute.log.warn({ err }, 'stopping compute'));
  };
  try {
    if (config.compute.bootstrap_flavors) await ensureDefaultFlavors(api.compute.db);
    const roles = await startConductorRoles(api.compute, `${config.public_host}-${process.pid}`);
    undo.push(() => roles.stop());
    const agents = await startAgents(config, bus, options, api.compute.log);
    undo.push(() => agents.stop());
    return { api, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
