import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { policyCredentials, type RequestContext } from '../core/auth/context.js';
import type { ServiceClient } from '../core/auth/service-client.js';
import type { Bus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import type { DialectName } from '../core/db/database.js';
import { compareMicroversions, parseMicroversion, type Microversion } from '../core/http/microversion.js';
import type { Logger } from '../core/logging.js';
import type { PolicyEnforcer } from '../core/policy/index.js';
import type { ComputeSchema } from './db/schema.js';
import { ComputeError } from './errors.js';
import type { ComputePlacement } from './placement.js';

/** The microversions of the compute API (Zed). */
export const MIN_VERSION = '2.1';
export const MAX_VERSION = '2.93';

/**
 * What the compute-api and conductor roles share (they alone touch compute's
 * database). One per process; handlers receive it, never reach for globals.
 */
export interface ComputeService {
  db: Kysely<ComputeSchema>;
  dialect: DialectName;
  config: StratusConfig;
  policy: PolicyEnforcer;
  bus: Bus;
  log: Logger;
  /** Calls other services as the `nova` service user (network, image, placement). */
  client: ServiceClient;
  /** This API's public URL (`http://host:8774`), for links and version documents. */
  publicUrl: string;
  /** Placement, for claims and frees outside the scheduler (resize, local delete). */
  placement: ComputePlacement;
  /** Publishes a Nova-style notification (`compute.instance.create.end`, ...). */
  notify(eventType: string, payload: unknown): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The negotiated compute microversion of this request. */
    apiVersion: Microversion;
  }
  interface FastifyContextConfig {
    /** The route takes no microversion (the version list at `/`). */
    noMicroversion?: boolean;
  }
}

/** True when the request's microversion is `version` or later. */
export function atLeast(req: FastifyRequest, version: string): boolean {
  const v = parseMicroversion(version);
  if (!v) throw new Error(`bad microversion ${version}`);
  return compareMicroversions(req.apiVersion, v) >= 0;
}

/** The caller's context (set by the auth hook on every authenticated route). */
export function contextOf(req: FastifyRequest): RequestContext {
  if (!req.ctx) throw new Error('request has no context: the route is not authenticated');
  return req.ctx;
}

/** `os_compute_api:<rule>` when that rule exists, else `rule` itself (`context_is_admin`). */
function ruleName(compute: ComputeService, rule: string): string {
  return compute.policy.has(`os_compute_api:${rule}`) ? `os_compute_api:${rule}` : rule;
}

/** True when `os_compute_api:<rule>` (or a base rule) allows the caller on `target`. */
export function allowed(compute: ComputeService, ctx: RequestContext, rule: string, target: Record<string, unknown> = {}): boolean {
  return compute.policy.check(ruleName(compute, rule), { project_id: ctx.projectId, user_id: ctx.userId, ...target }, policyCredentials(ctx));
}

/**
 * Checks `os_compute_api:<rule>` against `target` (default: the caller's own
 * project) and throws Nova's 403 `Policy doesn't allow ... to be performed.`
 */
export function authorize(compute: ComputeService, ctx: RequestContext, rule: string, target: Record<string, unknown> = {}): void {
  if (!allowed(compute, ctx, rule, target)) {
    throw new ComputeError(403, `Policy doesn't allow ${ruleName(compute, rule)} to be performed.`);
  }
}

/** True when the caller is an administrator of the compute service. */
export function isAdmin(compute: ComputeService, ctx: RequestContext): boolean {
  return compute.policy.check('context_is_admin', {}, policyCredentials(ctx));
}
