import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { policyCredentials } from '../core/auth/context.js';
import type { StratusConfig } from '../core/config.js';
import type { DialectName } from '../core/db/database.js';
import type { Logger } from '../core/logging.js';
import type { PolicyEnforcer } from '../core/policy/index.js';
import type { PlacementSchema } from './db/schema.js';
import { PlacementError } from './errors.js';
import type { NameCache } from './name-cache.js';

/**
 * Everything placement's handlers share; one per placement-api process.
 * Handlers receive it and never reach for globals.
 */
export interface PlacementService {
  db: Kysely<PlacementSchema>;
  dialect: DialectName;
  config: StratusConfig;
  policy: PolicyEnforcer;
  log: Logger;
  /** Resource class names and ids (standard ones have fixed ids). */
  resourceClasses: NameCache;
  traits: NameCache;
  /** How many times an allocation write is tried when provider generations move under it (placement's allocation_conflict_retry_count). */
  allocationRetries: number;
}

/**
 * Checks a placement policy rule for the caller; throws placement's 403
 * (`Policy does not allow <rule> to be performed.`). The default target is
 * the caller's own project and user, as placement's.
 */
export function authorize(svc: PlacementService, req: FastifyRequest, rule: string, target?: Record<string, unknown>): void {
  const ctx = req.ctx;
  const actual = target ?? { project_id: ctx.projectId, user_id: ctx.userId };
  if (!svc.policy.check(rule, actual, policyCredentials(ctx))) {
    throw new PlacementError(403, `Policy does not allow ${rule} to be performed.`);
  }
}

/** `2026-11-21T10:00:00.123Z`: how times are stored (they sort as text). */
export function isoNow(): string {
  return new Date().toISOString();
}

const UUID_LIKE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** True for what placement accepts as a UUID (dashes optional, any case). */
export function isUuidLike(value: unknown): value is string {
  return typeof value === 'string' && UUID_LIKE.test(value);
}

/** A UUID in its canonical form: lower case with dashes. */
export function normalizeUuid(value: string): string {
  const hex = value.replaceAll('-', '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Placement's largest integer (a signed 32-bit column). */
export const MAX_INT = 2147483647;

/** A database number (PostgreSQL returns sums and counts as text). */
export function num(value: unknown): number {
  return typeof value === 'number' ? value : Number(value ?? 0);
}

/** Splits a list into chunks (for `IN (...)` lists of unbounded length). */
export function chunks<T>(items: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
