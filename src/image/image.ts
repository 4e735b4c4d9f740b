import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { policyCredentials, type RequestContext } from '../core/auth/context.js';
import type { ServiceClient } from '../core/auth/service-client.js';
import type { Bus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import type { DialectName } from '../core/db/database.js';
import type { Logger } from '../core/logging.js';
import type { PolicyEnforcer } from '../core/policy/index.js';
import type { ImageSchema } from './db/schema.js';
import type { Quotas } from './quotas.js';
import type { Stores } from './stores/index.js';

/**
 * Everything the image service's handlers and workers share. One per image
 * process; handlers receive it, never reach for globals.
 */
export interface ImageService {
  db: Kysely<ImageSchema>;
  dialect: DialectName;
  config: StratusConfig;
  policy: PolicyEnforcer;
  stores: Stores;
  quotas: Quotas;
  bus: Bus;
  log: Logger;
  /** Calls other services (identity for limits, image endpoints for `glance-download`). */
  client: ServiceClient;
  /** This service's public URL (`http://host:9292`), for links and version documents. */
  publicUrl: string;
  /** The directory where `glance-direct` data waits for its import. */
  stagingDir: string;
  /** Names this process in `image.worker` while it holds an image (saving, importing). */
  workerId: string;
  /** Imports running in this process, so that stopping can wait for them. */
  running: Set<Promise<void>>;
  /** Publishes a Glance-style notification (`image.create`, ...). */
  notify(eventType: string, payload: unknown): void;
}

/** Checks a policy rule for the caller of a request; throws 403 when denied. */
export function authorize(images: ImageService, req: FastifyRequest, rule: string, target: Record<string, unknown> = {}): void {
  images.policy.authorize(rule, target, policyCredentials(req.ctx));
}

/** True when the rule allows the caller. */
export function allowed(images: ImageService, ctx: RequestContext, rule: string, target: Record<string, unknown> = {}): boolean {
  return images.policy.check(rule, target, policyCredentials(ctx));
}

/** True when the caller is an administrator of the image service. */
export function isAdmin(images: ImageService, ctx: RequestContext): boolean {
  return allowed(images, ctx, 'context_is_admin');
}
