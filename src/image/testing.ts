import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { createBus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import { injectJson, testConfig, type InjectMethod, type TestReply } from '../core/testing.js';
import { startLoopbackIdentity, type TestUser } from '../identity/testing.js';
import type { ImageService } from './image.js';
import { createImage } from './service.js';

export type { InjectMethod, TestReply } from '../core/testing.js';

export type { TestUser } from '../identity/testing.js';

/**
 * The image API on a fresh database and data directory, with a real identity
 * service listening on a loopback port (tokens are validated over HTTP, as in
 * a deployment). Drive it with `request` (Fastify's `inject`).
 */
export interface TestImage {
  images: ImageService;
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
  request(method: InjectMethod, url: string, options?: { user?: TestUser | null; payload?: unknown; headers?: Record<string, string> }): Promise<TestReply>;
  /** Creates an image (201 expected) and returns its view. */
  createImage(user: TestUser, body?: Record<string, unknown>): Promise<Record<string, any>>;
  /** Uploads bytes to an image's file. */
  upload(user: TestUser, id: string, data: Buffer): Promise<TestReply>;
  close(): Promise<void>;
}

/**
 * Builds it. `overrides` are configuration keys (`image.stores`, ...) as in
 * `loadConfig`. Honours `STRATUS_TEST_DATABASE_URL` and `STRATUS_TEST_BUS_URL`
 * like the identity tests.
 */
export async function createTestImage(overrides: Record<string, unknown> = {}): Promise<TestImage> {
  const { config, dir } = testConfig('image', overrides);
  const bus = await createBus(config.bus.url);
  const servicePassword = 'glance-test-secret';
  const imageUrl = 'http://image.test:9292';
  const identity = await startLoopbackIdentity(config, bus, {
    services: [{ type: 'image', name: 'glance', url: imageUrl }],
    serviceUser: { name: 'glance', password: servicePassword },
  });
  const { authUrl, admin, alpha, beta, alphaReader } = identity;
  const { images, app, database } = await createImage(config, bus, { identity: { authUrl, password: servicePassword }, publicUrl: imageUrl });
  await app.ready();


  // Errors come as JSON because of `Accept`, as openstacksdk and Tempest ask; without it, Glance's HTML pages.
  const request: TestImage['request'] = (method, url, options = {}) => injectJson(app, method, url, { token: options.user?.token ?? null, payload: options.payload, ...(options.headers ? { headers: options.headers } : {}) });

  return {
    images,
    app,
    config,
    dataDir: dir,
    admin,
    alpha,
    beta,
    alphaReader,
    request,
    async createImage(user, body = {}) {
      const res = await request('POST', '/v2/images', { user, payload: { name: 'test-image', disk_format: 'raw', container_format: 'bare', ...body } });
      if (res.status !== 201) throw new Error(`image create failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    upload: (user, id, data) => request('PUT', `/v2/images/${id}/file`, { user, payload: data }),
    async close() {
      await app.close();
      await Promise.allSettled([...images.running]);
      await database.close();
      await identity.close();
      await bus.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
