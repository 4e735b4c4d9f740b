import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { policyCredentials, type RequestContext } from '../core/auth/context.js';
import type { Bus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import type { DialectName } from '../core/db/database.js';
import type { Logger } from '../core/logging.js';
import type { PolicyEnforcer } from '../core/policy/index.js';
import type { IdentitySchema } from './db/schema.js';
import type { PasswordHasher } from './passwords.js';
import type { KeyRepository } from './tokens/keys.js';
import type { TokenProvider } from './tokens/provider.js';

/**
 * Everything identity's API handlers share. One per identity process;
 * handlers receive it, never reach for globals.
 */
export interface Identity {
  db: Kysely<IdentitySchema>;
  dialect: DialectName;
  config: StratusConfig;
  policy: PolicyEnforcer;
  keys: KeyRepository;
  tokens: TokenProvider;
  hasher: PasswordHasher;
  bus: Bus;
  log: Logger;
  /** Identity's public URL (`http://host:5000`), for links and version documents. */
  publicUrl: string;
  /** A counter that moves on every change of identity data; caches compare it. */
  generation(): number;
  /** Drops what caches hold (another process changed identity data). */
  invalidate(): void;
  /** Records a change here and tells the other identity processes. */
  changed(): void;
  /** Publishes a Keystone-style notification (`identity.user.created`, ...). */
  notify(resourceType: string, operation: 'created' | 'updated' | 'deleted' | 'disabled', id: string): void;
}

/**
 * Checks a policy rule for the caller of a request; throws 403 when denied.
 * `target` is what the rule's `%(target...)s` substitutions read.
 */
export function authorize(identity: Identity, req: FastifyRequest, rule: string, target: Record<string, unknown> = {}): void {
  identity.policy.authorize(rule, target, policyCredentials(req.ctx));
}

/** True when the rule allows the caller (for filtering lists instead of refusing). */
export function allowed(identity: Identity, ctx: RequestContext, rule: string, target: Record<string, unknown>): boolean {
  return identity.policy.check(rule, target, policyCredentials(ctx));
}

/** The `links.self` of an entity. */
export function selfLink(identity: Identity, path: string): { self: string } {
  return { self: `${identity.publicUrl}/v3/${path}` };
}

/** The `links` of a collection. */
export function collectionLinks(identity: Identity, req: FastifyRequest): { self: string; previous: null; next: null } {
  return { self: `${identity.publicUrl}${req.url}`, previous: null, next: null };
}
