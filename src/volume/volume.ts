import os from 'node:os';
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
import type { VolumeSchema } from './db/schema.js';
import { VolumeError } from './errors.js';

/** The microversions of the Block Storage v3 API (Zed). */
export const MIN_VERSION = '3.0';
export const MAX_VERSION = '3.70';

/**
 * What the volume-api and volume-scheduler roles share (they alone touch the
 * volume database; agents reach it through the scheduler role's
 * `volume-conductor` topic). One per process; handlers receive it.
 */
export interface VolumeService {
  db: Kysely<VolumeSchema>;
  dialect: DialectName;
  config: StratusConfig;
  policy: PolicyEnforcer;
  bus: Bus;
  log: Logger;
  /** Calls other services as the `cinder` service user (image, compute). */
  client: ServiceClient;
  /** This API's public URL (`http://host:8776`), for links and version documents. */
  publicUrl: string;
  /** Publishes a Cinder-style notification (`volume.create.end`, ...). */
  notify(eventType: string, payload: unknown): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The negotiated volume microversion of this request. */
    volumeVersion: Microversion;
  }
  interface FastifyContextConfig {
    /** The route takes no microversion (the version list at `/`). */
    noVolumeMicroversion?: boolean;
  }
}

/** True when the request's microversion is `version` or later. */
export function atLeast(req: FastifyRequest, version: string): boolean {
  const v = parseMicroversion(version);
  if (!v) throw new Error(`bad microversion ${version}`);
  return compareMicroversions(req.volumeVersion, v) >= 0;
}

/** The caller's context (set by the auth hook on every authenticated route). */
export function contextOf(req: FastifyRequest): RequestContext {
  if (!req.ctx) throw new Error('request has no context: the route is not authenticated');
  return req.ctx;
}

/** True when `rule` allows the caller on `target` (default: the caller's own project). */
export function allowed(volume: VolumeService, ctx: RequestContext, rule: string, target: Record<string, unknown> = {}): boolean {
  return volume.policy.check(rule, { project_id: ctx.projectId, user_id: ctx.userId, ...target }, policyCredentials(ctx));
}

/** Checks `rule` (`volume:create`, ...) and throws Cinder's 403 `Policy doesn't allow <rule> to be performed.` */
export function authorize(volume: VolumeService, ctx: RequestContext, rule: string, target: Record<string, unknown> = {}): void {
  if (!allowed(volume, ctx, rule, target)) throw new VolumeError(403, `Policy doesn't allow ${rule} to be performed.`);
}

/** True when the caller is an administrator of the volume service. */
export function isAdmin(volume: VolumeService, ctx: RequestContext): boolean {
  return volume.policy.check('context_is_admin', {}, policyCredentials(ctx));
}

/**
 * The host name of this process's volume roles (`<host>@<backend>` for
 * agents): `volume.host`, else the public host, else (on loopback) the
 * machine's name, as compute names its host, so that a hypervisor on this
 * machine attaches the volume files directly.
 */
export function volumeHost(config: StratusConfig): string {
  if (config.volume.host) return config.volume.host;
  return config.public_host === '127.0.0.1' || config.public_host === 'localhost' ? os.hostname() : config.public_host;
}

/** Now, as the database keeps times. */
export function now(): string {
  return new Date().toISOString();
}

/** A stored time as Cinder shows it: `2026-11-21T19:17:50.000000` (no zone). */
export function apiTime(value: string | null): string | null {
  if (!value) return null;
  return value.replace(/\.(\d{3})Z$/, '.$1000').replace(/Z$/, '.000000');
}
