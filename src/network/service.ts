import os from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { installAuth, identityTokenValidator, type TokenValidator } from '../core/auth/token-middleware.js';
import { ServiceClient } from '../core/auth/service-client.js';
import type { Bus } from '../core/bus/index.js';
import { databaseUrl, type StratusConfig } from '../core/config.js';
import { migrate, openDatabase, type Database } from '../core/db/database.js';
import { createApiServer, listen } from '../core/http/server.js';
import { roleLogger, type Logger } from '../core/logging.js';
import { PolicyEnforcer } from '../core/policy/index.js';
import { serveAgentRpc } from './agent-rpc.js';
import { SchedulingDriver } from './agent-scheduler.js';
import { startFakeAgents } from './agents/fake-agents.js';
import { registerAgents } from './api/agents.js';
import { registerAvailabilityZones } from './api/availability-zones.js';
import { registerDiscovery } from './api/discovery.js';
import { registerFloatingIps } from './api/floatingips.js';
import { registerNetworks } from './api/networks.js';
import { registerPorts } from './api/ports.js';
import { registerQuotas } from './api/quotas.js';
import { registerRouters } from './api/routers.js';
import { registerSecurityGroups } from './api/security-groups.js';
import { registerSubnetpools } from './api/subnetpools.js';
import { registerSubnets } from './api/subnets.js';
import { registerTags } from './api/tags.js';
import { migrations } from './db/migrations.js';
import type { NetworkSchema } from './db/schema.js';
import type { DriverCallbacks, NetworkDriver } from './drivers/driver.js';
import { FakeDriver } from './drivers/fake.js';
import { LinuxDriver } from './drivers/linux.js';
import { settleComputeNotifier } from './compute-notifier.js';
import { neutronFault } from './errors.js';
import type { NetworkService } from './network.js';
import { networkPolicyDefaults } from './policies.js';
import { portStatusChanged } from './port-status.js';

/** A running network-api role. */
export interface RunningNetwork {
  net: NetworkService;
  app: FastifyInstance;
  database: Database<NetworkSchema>;
  port: number;
  stop(): Promise<void>;
}

export interface NetworkOptions {
  logger?: Logger;
  /** Where identity is and how this service logs in (the `neutron` service user). */
  identity: { authUrl: string; password: string; username?: string };
  /** Checks user tokens (default: through identity with a short cache). */
  validator?: TokenValidator;
  /** The data plane (default: the one `network.driver` names). */
  driver?: NetworkDriver;
  port?: number;
  publicUrl?: string;
  /** Host name the fake agents report (default: this machine's). */
  agentHost?: string;
}

function createDriver(config: StratusConfig, bus: Bus, db: () => Kysely<NetworkSchema>, log: Logger): NetworkDriver {
  switch (config.network.driver) {
    case 'fake':
      return new FakeDriver();
    case 'linux':
      return new LinuxDriver(bus, db, log, config.network.agent_down_time);
    default:
      throw new Error(`network.driver '${config.network.driver}' is not available (use 'fake' or 'linux')`);
  }
}

/**
 * Opens the network database (running its migrations) and builds the API.
 * Does not listen; `startNetwork` does.
 */
export async function createNetwork(config: StratusConfig, bus: Bus, options: NetworkOptions): Promise<{ net: NetworkService; app: FastifyInstance; database: Database<NetworkSchema> }> {
  const log = options.logger ?? roleLogger('network-api');
  const database = await openDatabase<NetworkSchema>(databaseUrl(config, 'network'), { role: 'network-api' });
  await migrate(database.db, migrations);
  const policyFile = config.policy_files.network;
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: options.identity.username ?? 'neutron', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: log, userAgent: 'stratus-network' },
  );
  const publisher = `network.${config.public_host}`;
  const net: NetworkService = {
    db: database.db,
    dialect: database.dialect,
    config,
    policy: new PolicyEnforcer(networkPolicyDefaults, policyFile ? { policyFile } : {}),
    bus,
    log,
    client,
    publicUrl: options.publicUrl ?? `http://${config.public_host}:${options.port ?? config.network.port}`,
    // Scheduling to DHCP and L3 agents runs in front of whichever data plane.
    driver: new SchedulingDriver(() => net, options.driver ?? createDriver(config, bus, () => net.db, log)),
    notify: (eventType, payload) => {
      bus.notify(publisher, eventType, payload).catch((err: unknown) => log.warn({ err }, 'could not publish a notification'));
    },
  };
  const authUri = options.identity.authUrl.replace(/\/v3\/?$/, '');
  const app = createApiServer({
    role: 'network-api',
    logger: log,
    bodyLimit: 1024 * 1024,
    fault: (error) => {
      const fault = neutronFault(error);
      return error.status === 401 ? { ...fault, headers: { 'WWW-Authenticate': `Keystone uri="${authUri}"` } } : fault;
    },
  });
  installAuth(app, options.validator ?? identityTokenValidator(client, { cacheTtlMs: 60_000 }), { authUri });
  registerDiscovery(app);
  registerNetworks(app, net);
  registerSubnets(app, net);
  registerSubnetpools(app, net);
  registerPorts(app, net);
  registerRouters(app, net);
  registerFloatingIps(app, net);
  registerSecurityGroups(app, net);
  registerQuotas(app, net);
  registerAgents(app, net);
  registerTags(app, net);
  registerAvailabilityZones(app, net);
  return { net, app, database };
}

/** What the driver reports back: port status goes to the database, notifications and compute. */
export function driverCallbacks(net: NetworkService): DriverCallbacks {
  return {
    portStatus: async (portId, status) => {
      await portStatusChanged(net, portId, status);
    },
  };
}

/**
 * Starts the network-api role: the driver, the agents' bus API
 * (`network-plugin`), the fake agents of this host when the driver is
 * `fake`, then the API. `stop` undoes it in reverse and sends the port
 * events still waiting for compute.
 */
export async function startNetwork(config: StratusConfig, bus: Bus, options: NetworkOptions): Promise<RunningNetwork> {
  const { net, app, database } = await createNetwork(config, bus, options);
  const undo: (() => Promise<void>)[] = [() => database.close()];
  const stop = async (): Promise<void> => {
    for (const step of undo.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        net.log.warn({ err }, 'stopping the network service');
      }
    }
  };
  try {
    await net.driver.start(driverCallbacks(net));
    undo.push(async () => {
      await net.driver.stop();
      await settleComputeNotifier(net);
    });
    const rpc = await serveAgentRpc(net, `${config.public_host}-${process.pid}`);
    undo.push(() => rpc.stop());
    if (config.network.driver === 'fake') {
      const agents = await startFakeAgents(bus, {
        host: options.agentHost ?? os.hostname(),
        availabilityZone: config.network.availability_zone,
        reportInterval: config.network.report_interval,
        logger: net.log,
      });
      undo.push(() => agents.stop());
    }
    undo.push(() => app.close());
    const port = await listen(app, config.bind_host, options.port ?? config.network.port);
    if (!options.publicUrl) net.publicUrl = `http://${config.public_host}:${port}`;
    return { net, app, database, port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
