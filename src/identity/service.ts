import type { FastifyInstance } from 'fastify';
import type { Bus } from '../core/bus/index.js';
import { databaseUrl, type StratusConfig } from '../core/config.js';
import { migrate, openDatabase, type Database } from '../core/db/database.js';
import { keystoneFault } from '../core/http/faults.js';
import { createApiServer, listen } from '../core/http/server.js';
import { roleLogger, type Logger } from '../core/logging.js';
import { PolicyEnforcer } from '../core/policy/index.js';
import { registerApplicationCredentials } from './api/application-credentials.js';
import { registerAuth } from './api/auth.js';
import { registerCatalog } from './api/catalog.js';
import { registerCredentials } from './api/credentials.js';
import { registerEc2Tokens } from './api/ec2-tokens.js';
import { registerDomains } from './api/domains.js';
import { registerExtras } from './api/extras.js';
import { registerGroups } from './api/groups.js';
import { registerLimits } from './api/limits.js';
import { registerProjects } from './api/projects.js';
import { registerRoles } from './api/roles.js';
import { registerUsers } from './api/users.js';
import { registerVersions } from './api/versions.js';
import { migrations } from './db/migrations.js';
import type { IdentitySchema } from './db/schema.js';
import type { Identity } from './identity.js';
import { PasswordHasher } from './passwords.js';
import { identityPolicyDefaults } from './policies.js';
import { pruneRevocations } from './revocation.js';
import { KeyRepository } from './tokens/keys.js';
import { TokenProvider } from './tokens/provider.js';

/** Keystone's default largest request body (`max_request_body_size`). */
const BODY_LIMIT = 114688;

/** A running identity role. */
export interface IdentityService {
  identity: Identity;
  app: FastifyInstance;
  database: Database<IdentitySchema>;
  /** The bound port (differs from the configured one when that was 0). */
  port: number;
  stop(): Promise<void>;
}

/**
 * Opens identity's database (running its migrations), loads the Fernet keys
 * and builds the API. Does not listen; `startIdentity` does.
 */
export async function createIdentity(config: StratusConfig, bus: Bus, options: { logger?: Logger; publicUrl?: string } = {}): Promise<{ identity: Identity; app: FastifyInstance; database: Database<IdentitySchema> }> {
  const log = options.logger ?? roleLogger('identity');
  const database = await openDatabase<IdentitySchema>(databaseUrl(config, 'identity'), { role: 'identity' });
  await migrate(database.db, migrations);
  const keys = new KeyRepository(database.db);
  await keys.setup();
  let generation = 0;
  const policyFile = config.policy_files.identity;
  const policy = new PolicyEnforcer(identityPolicyDefaults, policyFile ? { policyFile } : {});
  const tokens = new TokenProvider(database.db, keys, {
    expirationSeconds: config.identity.token_expiration,
    cacheTtlMs: config.identity.cache_ttl * 1000,
    allowExpiredWindowSeconds: config.identity.allow_expired_window,
    generation: () => generation,
  });
  const publicUrl = options.publicUrl ?? `http://${config.public_host}:${config.identity.port}`;
  const host = `identity.${config.public_host}`;
  const identity: Identity = {
    db: database.db,
    dialect: database.dialect,
    config,
    policy,
    keys,
    tokens,
    hasher: new PasswordHasher(config.identity.password_hash),
    bus,
    log,
    publicUrl,
    generation: () => generation,
    invalidate: () => {
      generation += 1;
    },
    changed: () => {
      generation += 1;
      bus.fanout('identity', 'invalidate', {}).catch((err: unknown) => log.warn({ err }, 'could not tell other identity processes of a change'));
    },
    notify: (resourceType, operation, id) => {
      bus
        .notify(host, `identity.${resourceType}.${operation}`, { resource_info: id })
        .catch((err: unknown) => log.warn({ err }, 'could not publish a notification'));
    },
  };
  const app = createApiServer({
    role: 'identity',
    logger: log,
    bodyLimit: BODY_LIMIT,
    fault: (error) => {
      const fault = keystoneFault(error);
      return error.status === 401 ? { ...fault, headers: { 'WWW-Authenticate': `Keystone uri="${publicUrl}"` } } : fault;
    },
  });
  registerAuth(app, identity);
  registerVersions(app, identity);
  registerDomains(app, identity);
  registerProjects(app, identity);
  registerUsers(app, identity);
  registerGroups(app, identity);
  registerRoles(app, identity);
  registerCatalog(app, identity);
  registerCredentials(app, identity);
  registerEc2Tokens(app, identity);
  registerApplicationCredentials(app, identity);
  registerExtras(app, identity);
  registerLimits(app, identity);
  return { identity, app, database };
}

/**
 * Starts the identity role: the API on its port, the listener that hears of
 * changes made by other identity processes, and the pruning of old
 * revocation events. `stop` undoes all of it.
 */
export async function startIdentity(config: StratusConfig, bus: Bus, options: { logger?: Logger; port?: number; publicUrl?: string } = {}): Promise<IdentityService> {
  const { identity, app, database } = await createIdentity(config, bus, options);
  const port = await listen(app, config.bind_host, options.port ?? config.identity.port);
  if (port !== config.identity.port && !options.publicUrl) identity.publicUrl = `http://${config.public_host}:${port}`;
  // Every identity process serves the `identity` topic; a change anywhere moves every cache's generation.
  const server = await bus.serve('identity', `${config.public_host}-${process.pid}-${port}`, {
    invalidate: () => {
      identity.invalidate();
      return null;
    },
  });
  const lifetime = (config.identity.token_expiration + config.identity.allow_expired_window) * 1000;
  const pruner = setInterval(() => {
    pruneRevocations(identity.db, lifetime).catch((err: unknown) => identity.log.warn({ err }, 'pruning revocation events failed'));
  }, 3600_000);
  pruner.unref();
  return {
    identity,
    app,
    database,
    port,
    async stop() {
      clearInterval(pruner);
      await server.stop();
      await app.close();
      await database.close();
    },
  };
}
