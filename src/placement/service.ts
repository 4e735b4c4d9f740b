import type { FastifyInstance } from 'fastify';
import { ServiceClient } from '../core/auth/service-client.js';
import { installAuth, identityTokenValidator, type TokenValidator } from '../core/auth/token-middleware.js';
import { databaseUrl, type StratusConfig } from '../core/config.js';
import { migrate, openDatabase, type Database } from '../core/db/database.js';
import { createApiServer, listen } from '../core/http/server.js';
import { roleLogger, type Logger } from '../core/logging.js';
import { PolicyEnforcer } from '../core/policy/index.js';
import { registerAggregates } from './api/aggregates.js';
import { registerAllocationCandidates } from './api/allocation-candidates.js';
import { registerAllocations } from './api/allocations.js';
import { registerInventories } from './api/inventories.js';
import { registerResourceClasses } from './api/resource-classes.js';
import { registerResourceProviders } from './api/resource-providers.js';
import { registerReshaper } from './api/reshaper.js';
import { registerRoot } from './api/root.js';
import { registerTraits } from './api/traits.js';
import { registerUsages } from './api/usages.js';
import { placementMigrations } from './db/migrations.js';
import type { PlacementSchema } from './db/schema.js';
import { placementFault } from './errors.js';
import { installMicroversion } from './microversion.js';
import { NameCache } from './name-cache.js';
import type { PlacementService } from './placement.js';
import { placementPolicyDefaults } from './policies.js';
import { syncStandardResourceClasses } from './resource-classes.js';
import { syncStandardTraits } from './traits.js';

/** A running placement-api role. */
export interface RunningPlacement {
  placement: PlacementService;
  app: FastifyInstance;
  database: Database<PlacementSchema>;
  port: number;
  stop(): Promise<void>;
}

/** How the placement-api role is wired. */
export interface PlacementOptions {
  logger?: Logger;
  /** Where identity is and how this service logs in to check tokens (the `placement` service user). */
  identity: { authUrl: string; password: string; username?: string };
  /** Checks user tokens (default: through identity with a short cache). */
  validator?: TokenValidator;
  /** Port to listen on (default `placement.port`; 0 picks a free one). */
  port?: number;
}

/**
 * Opens the placement database (running its migrations, adding the standard
 * resource classes and traits) and builds the API. Does not listen;
 * `startPlacement` does. Placement needs no message bus.
 */
export async function createPlacement(config: StratusConfig, options: PlacementOptions): Promise<{ placement: PlacementService; app: FastifyInstance; database: Database<PlacementSchema> }> {
  const log = options.logger ?? roleLogger('placement-api');
  const database = await openDatabase<PlacementSchema>(databaseUrl(config, 'placement'), { role: 'placement-api' });
  try {
    await migrate(database.db, placementMigrations(database.dialect));
    await syncStandardResourceClasses(database.db);
    await syncStandardTraits(database.db);
  } catch (err) {
    await database.close();
    throw err;
  }
  const db = database.db;
  const policyFile = config.policy_files.placement;
  const placement: PlacementService = {
    db,
    dialect: database.dialect,
    config,
    policy: new PolicyEnforcer(placementPolicyDefaults, policyFile ? { policyFile } : {}),
    log,
    resourceClasses: new NameCache(() => db.selectFrom('resource_classes').select(['id', 'name']).execute()),
    traits: new NameCache(() => db.selectFrom('traits').select(['id', 'name']).execute()),
    allocationRetries: 10,
  };
  await placement.resourceClasses.refresh();
  await placement.traits.refresh();
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: options.identity.username ?? 'placement', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: log, userAgent: 'stratus-placement' },
  );
  const authUri = options.identity.authUrl.replace(/\/v3\/?$/, '');
  const app = createApiServer({
    role: 'placement-api',
    logger: log,
    bodyLimit: 4 * 1024 * 1024,
    extraRequestIdHeaders: ['openstack-request-id'],
    fault: (error, req) => {
      const fault = placementFault(error, req);
      return error.status === 401 ? { ...fault, headers: { 'WWW-Authenticate': `Keystone uri="${authUri}"` } } : fault;
    },
  });
  installAuth(app, options.validator ?? identityTokenValidator(client, { cacheTtlMs: 60_000 }), { authUri });
  installMicroversion(app);
  registerRoot(app);
  registerResourceProviders(app, placement);
  registerInventories(app, placement);
  registerResourceClasses(app, placement);
  registerTraits(app, placement);
  registerAggregates(app, placement);
  registerAllocations(app, placement);
  registerUsages(app, placement);
  registerAllocationCandidates(app, placement);
  registerReshaper(app, placement);
  return { placement, app, database };
}

/** Starts the placement-api role: builds it and listens. `stop` closes the API, then the database. */
export async function startPlacement(config: StratusConfig, options: PlacementOptions): Promise<RunningPlacement> {
  const { placement, app, database } = await createPlacement(config, options);
  const stop = async (): Promise<void> => {
    try {
      await app.close();
    } finally {
      await database.close();
    }
  };
  try {
    const port = await listen(app, config.bind_host, options.port ?? config.placement.port);
    return { placement, app, database, port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
