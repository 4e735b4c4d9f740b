import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { installAuth, identityTokenValidator, type TokenValidator } from '../core/auth/token-middleware.js';
import { ServiceClient } from '../core/auth/service-client.js';
import type { Bus } from '../core/bus/index.js';
import { databaseUrl, type StratusConfig } from '../core/config.js';
import { migrate, openDatabase, type Database } from '../core/db/database.js';
import { NotFound } from '../core/errors.js';
import type { Fault } from '../core/http/faults.js';
import { createApiServer, listen } from '../core/http/server.js';
import { roleLogger, type Logger } from '../core/logging.js';
import { PolicyEnforcer } from '../core/policy/index.js';
import { registerData, stagingStore } from './api/data.js';
import { registerDiscovery } from './api/discovery.js';
import { registerImages } from './api/images.js';
import { registerImport } from './api/import.js';
import { registerMembers } from './api/members.js';
import { registerTags } from './api/tags.js';
import { migrations } from './db/migrations.js';
import type { ImageSchema } from './db/schema.js';
import type { ImageService } from './image.js';
import { recoverInterrupted } from './imports.js';
import { registerMetadefs } from './metadefs/index.js';
import { imagePolicyDefaults } from './policies.js';
import { Quotas } from './quotas.js';
import { openStores } from './stores/index.js';

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/**
 * Glance's error bodies are webob's, chosen by `Accept`: JSON
 * (`{"code": "404 Not Found", "title": "Not Found", "message": "..."}`) when
 * the client asks for JSON (openstacksdk, Tempest), else a small HTML page
 * (what glanceclient reads).
 */
export function glanceFault(error: { status: number; title: string; message: string }, req?: FastifyRequest): Fault {
  const accept = req?.headers.accept ?? '';
  if (req && !/application\/json/i.test(accept)) {
    const title = `${error.status} ${error.title}`;
    return {
      contentType: 'text/html; charset=UTF-8',
      body: `<html>\n <head>\n  <title>${title}</title>\n </head>\n <body>\n  <h1>${title}</h1>\n  ${escapeHtml(error.message)}<br /><br />\n\n\n\n </body>\n</html>`,
    };
  }
  // Quota errors (OverLimit, titled 'Over Limit') are webob's HTTPRequestEntityTooLarge in Glance.
  const title = error.status === 413 ? 'Request Entity Too Large' : error.title;
  return { body: { code: `${error.status} ${title}`, title, message: error.message } };
}

/** A running image role. */
export interface RunningImage {
  images: ImageService;
  app: FastifyInstance;
  database: Database<ImageSchema>;
  port: number;
  stop(): Promise<void>;
}

export interface ImageOptions {
  logger?: Logger;
  /** Where identity is and how this service logs in (the `glance` service user). */
  identity: { authUrl: string; password: string; username?: string };
  /** Checks user tokens (default: through identity with a short cache). */
  validator?: TokenValidator;
  port?: number;
  publicUrl?: string;
}

/**
 * Opens the image database (running its migrations) and the stores, and
 * builds the API. Does not listen; `startImage` does.
 */
export async function createImage(config: StratusConfig, bus: Bus, options: ImageOptions): Promise<{ images: ImageService; app: FastifyInstance; database: Database<ImageSchema> }> {
  const log = options.logger ?? roleLogger('image');
  const database = await openDatabase<ImageSchema>(databaseUrl(config, 'image'), { role: 'image' });
  await migrate(database.db, migrations);
  const policyFile = config.policy_files.image;
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: options.identity.username ?? 'glance', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: log, userAgent: 'stratus-image' },
  );
  // The `object` store keeps images in the glance user's own object storage account (the catalog's internal endpoint).
  const stores = await openStores(config.image, config.data_dir, { objectStorage: { endpoint: () => client.endpoint('object-store'), token: () => client.token() } });
  const publicUrl = options.publicUrl ?? `http://${config.public_host}:${options.port ?? config.image.port}`;
  const host = `image.${config.public_host}`;
  const images: ImageService = {
    db: database.db,
    dialect: database.dialect,
    config,
    policy: new PolicyEnforcer(imagePolicyDefaults, policyFile ? { policyFile } : {}),
    stores,
    quotas: new Quotas(database.db, config.image, client, config.region, log),
    bus,
    log,
    client,
    publicUrl,
    stagingDir: path.resolve(config.image.staging_dir || path.join(config.data_dir, 'images', 'staging')),
    workerId: `${os.hostname()}:${options.port ?? config.image.port}`,
    running: new Set(),
    notify: (eventType, payload) => {
      bus.notify(host, eventType, payload).catch((err: unknown) => log.warn({ err }, 'could not publish a notification'));
    },
  };
  await stagingStore(images).open();
  const authUri = options.identity.authUrl.replace(/\/v3\/?$/, '');
  const app = createApiServer({
    role: 'image',
    logger: log,
    bodyLimit: 1024 * 1024,
    fault: (error, req) => {
      const fault = glanceFault(error, req);
      return error.status === 401 ? { ...fault, headers: { 'WWW-Authenticate': `Keystone uri="${authUri}"` } } : fault;
    },
  });
  // Glance routes no path with a trailing slash (`GET /v2/images/` is 404, not the list).
  app.addHook('onRequest', async (req) => {
    const pathname = req.url.split('?')[0] ?? '';
    if (pathname.length > 1 && pathname.endsWith('/') && pathname !== '/v2/') throw new NotFound('The resource could not be found.');
  });
  installAuth(app, options.validator ?? identityTokenValidator(client, { cacheTtlMs: 60_000 }), { authUri });
  registerDiscovery(app, images);
  registerImages(app, images);
  registerData(app, images);
  registerMembers(app, images);
  registerTags(app, images);
  registerImport(app, images);
  registerMetadefs(app, images);
  return { images, app, database };
}

/** Starts the image role: recovers what a crash interrupted, then serves the API. */
export async function startImage(config: StratusConfig, bus: Bus, options: ImageOptions): Promise<RunningImage> {
  const { images, app, database } = await createImage(config, bus, options);
  await recoverInterrupted(images);
  const port = await listen(app, config.bind_host, options.port ?? config.image.port);
  if (!options.publicUrl) images.publicUrl = `http://${config.public_host}:${port}`;
  return {
    images,
    app,
    database,
    port,
    async stop() {
      await app.close();
      await Promise.allSettled([...images.running]);
      await database.close();
    },
  };
}
