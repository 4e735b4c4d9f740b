import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { ServiceUnavailable, Unauthorized } from '../errors.js';
import type {} from '../http/server.js';
import { registry } from '../metrics.js';
// context.ts declares `req.ctx` and the `public` route config flag on Fastify's types.
import { contextFromToken, type TokenBody } from './context.js';
import type { ServiceClient } from './service-client.js';

/** Checks user tokens. */
export interface TokenValidator {
  /**
   * The token's body when valid, null when invalid, expired or revoked.
   * Rejects (with any error) when validity cannot be known, e.g. identity is
   * unreachable; callers must then refuse the request, never allow it.
   */
  validate(token: string, options?: { allowExpired?: boolean }): Promise<TokenBody | null>;
}

/** Cache settings of {@link identityTokenValidator}. */
export interface TokenValidatorOptions {
  /** How long a valid token is trusted without asking identity again, in ms (default 60000; never past its expires_at; 0 disables). */
  cacheTtlMs?: number;
  /** How many tokens are remembered, least recently used dropped first (default 10000). */
  cacheSize?: number;
  /** How long an invalid token is remembered as invalid, in ms (default 10000, at most cacheTtlMs; 0 disables). */
  negativeTtlMs?: number;
  /** The clock, in ms since the epoch (tests inject one). */
  now?: () => number;
}

const validations = new Counter({
  name: 'stratus_token_validations_total',
  help: 'User token checks by the token middleware, by result (hit, miss, invalid, error)',
  labelNames: ['result'] as const,
  registers: [registry],
});

/** The SHA-256 of a token, hex: what caches and logs use instead of the token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

interface Entry {
  body: TokenBody | null;
  /** Not served from this time on. */
  until: number;
}

/**
 * A TokenValidator that asks identity through `client.validateToken` and
 * caches the answers in memory, keyed by the SHA-256 of the token (never the
 * token): a valid token for `cacheTtlMs` but never past its `expires_at`, an
 * invalid one for `negativeTtlMs`; least recently used entries are dropped
 * beyond `cacheSize`. Concurrent checks of one token share one request.
 * Failures to reach identity are not cached and reject.
 */
export function identityTokenValidator(client: Pick<ServiceClient, 'validateToken'>, options: TokenValidatorOptions = {}): TokenValidator {
  const ttl = Math.max(0, options.cacheTtlMs ?? 60_000);
  const negativeTtl = Math.min(ttl, Math.max(0, options.negativeTtlMs ?? 10_000));
  const size = Math.max(1, options.cacheSize ?? 10_000);
  const now = options.now ?? Date.now;
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<TokenBody | null>>();

  const lookup = (key: string, at: number): Entry | undefined => {
    const entry = cache.get(key);
    if (!entry) return undefined;
    cache.delete(key);
    if (entry.until <= at) return undefined;
    cache.set(key, entry); // most recently used last
    return entry;
  };

  const store = (key: string, body: TokenBody | null, until: number, at: number): void => {
    if (until <= at) return;
    cache.delete(key);
    cache.set(key, { body, until });
    while (cache.size > size) {
      const oldest = cache.keys().next();
      if (oldest.done) break;
      cache.delete(oldest.value);
    }
  };

  const ask = async (token: string, key: string, allowExpired: boolean): Promise<TokenBody | null> => {
    let body: TokenBody | null;
    try {
      body = await client.validateToken(token, allowExpired ? { allowExpired: true } : {});
    } catch (err) {
      validations.inc({ result: 'error' });
      throw err;
    }
    const at = now();
    if (body && !allowExpired) {
      const expires = Date.parse(body.expires_at);
      // Identity said valid but by our clock it has expired (or has no readable expiry).
      if (!(expires > at)) body = null;
      else store(key, body, Math.min(at + ttl, expires), at);
    } else if (body) {
      store(key, body, at + ttl, at);
    }
    if (!body) {
      store(key, null, at + negativeTtl, at);
      validations.inc({ result: 'invalid' });
    } else {
      validations.inc({ result: 'miss' });
    }
    return body;
  };

  return {
    async validate(token, validateOptions = {}) {
      const allowExpired = validateOptions.allowExpired === true;
      const key = allowExpired ? `${tokenHash(token)}:allow-expired` : tokenHash(token);
      const hit = lookup(key, now());
      if (hit) {
        validations.inc({ result: hit.body ? 'hit' : 'invalid' });
        return hit.body;
      }
      const running = inflight.get(key);
      if (running) return running;
      const started = (async () => {
        try {
          return await ask(token, key, allowExpired);
        } finally {
          inflight.delete(key);
        }
      })();
      inflight.set(key, started);
      return started;
    },
  };
}

/** Options of {@link authenticate} and {@link installAuth}. */
export interface AuthenticateOptions {
  /**
   * Requests for which no token is needed (version documents, ...), besides
   * routes registered with `config: { public: true }`; `req.ctx` stays unset for them.
   */
  public?: (req: FastifyRequest) => boolean;
  /**
   * Roles of which an `X-Service-Token` must hold one (default `['service']`).
   * A valid service token with such a role lets an expired user token through,
   * as keystonemiddleware does for long-running operations.
   */
  serviceTokenRoles?: string[];
  /** Identity's public URL, sent in `WWW-Authenticate: Keystone uri="..."` on 401. */
  authUri?: string;
}

const MAX_TOKEN_LENGTH = 8192;

/**
 * An onRequest hook that authenticates a request, unless its route has
 * `config: { public: true }` or `options.public` says so: reads `X-Auth-Token` (and
 * `X-Service-Token`, which must then be valid and hold a service role), checks
 * them with the validator, and sets `req.ctx`. Throws Unauthorized (401) when
 * a token is missing, malformed or invalid, ServiceUnavailable (503) when the
 * validator fails (identity unreachable or misbehaving); it never lets an
 * unchecked request through.
 */
export function authenticate(validator: TokenValidator, options: AuthenticateOptions = {}): (req: FastifyRequest) => Promise<void> {
  const serviceRoles = new Set(options.serviceTokenRoles ?? ['service']);
  const unauthorized = (): Unauthorized => {
    const error = new Unauthorized('The request you have made requires authentication.');
    if (options.authUri) error.headers['WWW-Authenticate'] = `Keystone uri="${options.authUri}"`;
    return error;
  };
  const check = async (req: FastifyRequest, token: string, allowExpired: boolean): Promise<TokenBody | null> => {
    try {
      return await validator.validate(token, allowExpired ? { allowExpired: true } : undefined);
    } catch (err) {
      req.log.error({ err, token_hash: tokenHash(token).slice(0, 16) }, 'cannot validate token: identity unavailable');
      throw new ServiceUnavailable('The Keystone service is temporarily unavailable.');
    }
  };

  return async function authenticateRequest(req: FastifyRequest): Promise<void> {
    if (req.routeOptions.config.public === true || options.public?.(req)) return;
    const userToken = headerToken(req.headers['x-auth-token']);
    if (userToken === null) throw unauthorized();

    let serviceBody: TokenBody | undefined;
    if (req.headers['x-service-token'] !== undefined) {
      const serviceToken = headerToken(req.headers['x-service-token']);
      const body = serviceToken === null ? null : await check(req, serviceToken, false);
      if (!body || !(body.roles ?? []).some((role) => serviceRoles.has(role.name))) {
        req.log.info({ token_hash: serviceToken === null ? null : tokenHash(serviceToken).slice(0, 16) }, 'invalid service token');
        throw unauthorized();
      }
      serviceBody = body;
    }

    const body = await check(req, userToken, serviceBody !== undefined);
    if (!body) {
      req.log.info({ token_hash: tokenHash(userToken).slice(0, 16) }, 'invalid user token');
      throw unauthorized();
    }
    req.ctx = contextFromToken(req.requestId || req.id, userToken, body, serviceBody);
  };
}

/**
 * Installs token authentication on an app (or an encapsulated plugin
 * context): declares `req.ctx` and adds the {@link authenticate} hook for
 * every route registered in that context.
 */
export function installAuth(app: FastifyInstance, validator: TokenValidator, options: AuthenticateOptions = {}): void {
  if (!app.hasRequestDecorator('ctx')) app.decorateRequest('ctx');
  app.addHook('onRequest', authenticate(validator, options));
}

/** A token from a header, or null when absent, empty, too long or not printable ASCII. */
function headerToken(value: string | string[] | undefined): string | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return null;
  const token = text.trim();
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) return null;
  return token;
}
