import { contextFromToken, type RequestContext, type TokenBody } from '../../core/auth/context.js';
import { tokenHash } from '../../core/auth/token-middleware.js';
import { parseAcl, referrerAllowed } from './acl.js';
import { splitSwiftPath } from './constraints.js';
import { getAccountInfo } from './info-cache.js';
import type { Middleware, ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { httpError } from './responses.js';

/**
 * Keystone authentication for the object proxy: keystonemiddleware's
 * `auth_token` with `delay_auth_decision` (a request without a valid token
 * goes on as anonymous, so that ACLs and temp URLs can still allow it) and
 * Swift's `keystoneauth` rules, which `env.authorize` applies once the proxy
 * app knows the container's ACL.
 */

/** The account sysmeta that remembers the domain of the account's project. */
export const PROJECT_DOMAIN_ID_SYSMETA = 'x-account-sysmeta-project-domain-id';
const PROJECT_DOMAIN_ID_HEADER = 'x-account-project-domain-id';
const UNKNOWN_ID = '_unknown';
const DEFAULT_DOMAIN_ID = 'default';
const MAX_TOKEN_LENGTH = 8192;

/** Options of {@link keystoneAuth}. */
export interface KeystoneAuthOptions {
  /** Identity's public root, sent in `WWW-Authenticate: Keystone uri="..."` on every 401. */
  authUri: string;
  /** Roles of which an `X-Service-Token` must hold one (default `service`). */
  serviceRoles?: string[];
}

/**
 * The `authtoken` + `keystoneauth` pair as one middleware. Validates
 * `X-Auth-Token` (or `X-Storage-Token`) and `X-Service-Token` with
 * `ctx.validator` (cached there), sets `env.identity`, `env.resellerAdmin`
 * and `env.authorize`; answers 503 when identity cannot be reached. A
 * request with `env.authorizeOverride` (temp URL, form POST) passes
 * unchecked.
 */
export function keystoneAuth(options: KeystoneAuthOptions): Middleware {
  return {
    name: 'keystoneauth',
    wrap(next, ctx) {
      const serviceRoles = new Set((options.serviceRoles ?? ['service']).map((r) => r.toLowerCase()));
      const challenge = `Keystone uri="${options.authUri}"`;
      return async (req) => {
        const response = await authenticateAndRun(req);
        if (response.status === 401 && !response.headers['www-authenticate']) response.headers['www-authenticate'] = challenge;
        const domain = response.headers[PROJECT_DOMAIN_ID_SYSMETA];
        if (domain) response.headers[PROJECT_DOMAIN_ID_HEADER] = domain;
        return response;
      };

      async function authenticateAndRun(req: SwiftRequest): Promise<SwiftResponse> {
        const userToken = headerToken(req.headers['x-auth-token'] ?? req.headers['x-storage-token']);
        if (userToken !== null && req.headers['x-auth-token'] === undefined) req.headers['x-auth-token'] = userToken;
        let identity: RequestContext | null = null;
        try {
          let service: TokenBody | undefined;
          const serviceToken = headerToken(req.headers['x-service-token']);
          if (serviceToken !== null) {
            const body = await ctx.validator.validate(serviceToken);
            if (body && (body.roles ?? []).some((r) => serviceRoles.has(r.name.toLowerCase()))) service = body;
          }
          const invalidService = serviceToken !== null && !service;
          if (userToken === null && req.env.identity) {
            // A subrequest of a middleware through the whole pipeline acts for the caller of the original request.
            identity = req.env.identity;
          } else if (userToken !== null && !invalidService) {
            const body = await ctx.validator.validate(userToken, service ? { allowExpired: true } : undefined);
            if (body) identity = contextFromToken(req.env.requestId, userToken, body, service);
            else ctx.log.info({ request_id: req.env.requestId, token_hash: tokenHash(userToken).slice(0, 16) }, 'invalid user token');
          }
        } catch (err) {
          ctx.log.error({ request_id: req.env.requestId, err: String(err) }, 'cannot validate token: identity unavailable');
          return httpError(503, 'The Keystone service is temporarily unavailable.');
        }
        if (req.env.authorizeOverride) return next(req);
        req.env.identity = identity;
        if (identity) {
          const roles = identity.roles.map((r) => r.toLowerCase());
          req.env.resellerAdmin = roles.includes(ctx.config.reseller_admin_role.toLowerCase());
          const who = identity;
          req.env.authorize = (r, acls) => authorize(ctx, who, r, acls);
        } else {
          req.env.authorize = (r, acls) => authorizeAnonymous(ctx, r, acls);
        }
        return next(req);
      }
    },
  };
}

/** A token from a header, or null when absent, empty, too long or not printable ASCII. */
function headerToken(value: string | undefined): string | null {
  if (value === undefined) return null;
  const token = value.trim();
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) return null;
  return token;
}

const aclOf = (acls?: { read?: string; write?: string }): string | undefined => acls?.read ?? acls?.write;

/** 403 for a caller with a token, 401 for an anonymous one (Swift's `denied_response`). */
function denied(req: SwiftRequest): SwiftResponse {
  return req.env.identity ? httpError(403) : httpError(401);
}

const accountMatches = (ctx: ProxyContext, account: string, projectId: string | null): boolean => projectId !== null && account === `${ctx.config.reseller_prefix}${projectId}`;

/**
 * keystoneauth's `authorize` for a caller with a valid token: the reseller
 * admin owns every account; `project:user` grants of the ACL (ids, `*`, and
 * names in the default domain); referrer ACLs; the account of the token's
 * project with an operator role makes the caller its owner; role names in
 * the ACL. Null when allowed, else 403.
 */
async function authorize(ctx: ProxyContext, identity: RequestContext, req: SwiftRequest, acls?: { read?: string; write?: string }): Promise<SwiftResponse | null> {
  req.env.swiftOwner = false;
  if (req.method === 'OPTIONS') return null;
  const parts = splitSwiftPath(req.path);
  if (!parts) return httpError(404);
  const account = parts.account ?? '';
  const { referrers, groups } = parseAcl(aclOf(acls));
  await setProjectDomainId(ctx, identity, req, parts);

  const roles = identity.roles.map((r) => r.toLowerCase());
  if (roles.includes(ctx.config.reseller_admin_role.toLowerCase())) {
    req.env.swiftOwner = true;
    return null;
  }
  if (!parts.container && !parts.object && req.method === 'DELETE') return denied(req);

  if (groups.length > 0) {
    const names = await namesAllowedInAcl(ctx, identity, req, account);
    const tenants = [identity.projectId ?? '', '*', ...(names && identity.projectName ? [identity.projectName] : [])];
    const users = [identity.userId, '*', ...(names ? [identity.userName] : [])];
    for (const tenant of tenants) for (const user of users) if (groups.includes(`${tenant}:${user}`)) return null;
  }
  const aclAuthorized = unconfirmedIdentity(req, parts.object, referrers, groups);
  if (aclAuthorized === true) return null;
  if (!accountMatches(ctx, account, identity.projectId)) return denied(req);

  const operators = new Set(ctx.config.operator_roles.map((r) => r.toLowerCase()));
  if (roles.some((r) => operators.has(r))) {
    req.env.swiftOwner = true;
    return null;
  }
  if (aclAuthorized === false) return denied(req);
  const aclRoles = new Set(groups.map((g) => g.toLowerCase()));
  if (roles.some((r) => aclRoles.has(r))) return null;
  return denied(req);
}

/** keystoneauth's `authorize_anonymous`: only referrer ACLs (with `.rlistings` for listings) let an anonymous caller in; else 401. */
function authorizeAnonymous(ctx: ProxyContext, req: SwiftRequest, acls?: { read?: string; write?: string }): SwiftResponse | null {
  const parts = splitSwiftPath(req.path);
  if (!parts) return httpError(404);
  if (req.method === 'OPTIONS') return null;
  if (!parts.account || !parts.account.startsWith(ctx.config.reseller_prefix)) return denied(req);
  const { referrers, groups } = parseAcl(aclOf(acls));
  return unconfirmedIdentity(req, parts.object, referrers, groups) ? null : denied(req);
}

/** Referrer ACLs: true (allowed), false (a referrer matched but listings are not allowed), undefined (no referrer grant applies). */
function unconfirmedIdentity(req: SwiftRequest, object: string | null, referrers: string[], groups: string[]): boolean | undefined {
  if (referrerAllowed(req.headers.referer, referrers)) return Boolean(object) || groups.includes('.rlistings');
  return undefined;
}

/** Whether names (not only ids) of projects and users may match ACL grants: only in the default domain, as keystoneauth decides. */
async function namesAllowedInAcl(ctx: ProxyContext, identity: RequestContext, req: SwiftRequest, account: string): Promise<boolean> {
  if (identity.userDomainId && identity.userDomainId !== DEFAULT_DOMAIN_ID) return false;
  if (identity.projectDomainId && identity.projectDomainId !== DEFAULT_DOMAIN_ID) return false;
  if (accountMatches(ctx, account, identity.projectId)) return true;
  const info = await getAccountInfo(ctx, req, account);
  const exists = info.status >= 200 && info.status < 300 && info.reallyExists;
  const domain = info.sysmeta['project-domain-id'];
  return exists && (domain === undefined || domain === DEFAULT_DOMAIN_ID);
}

/** Records the project's domain in account sysmeta on account PUT/POST and container PUT (which may create the account), as keystoneauth does. */
async function setProjectDomainId(ctx: ProxyContext, identity: RequestContext, req: SwiftRequest, parts: { account: string | null; container: string | null; object: string | null }): Promise<void> {
  if (req.headers[PROJECT_DOMAIN_ID_SYSMETA] !== undefined) return;
  if (parts.object || (parts.container && req.method !== 'PUT') || !['PUT', 'POST'].includes(req.method)) return;
  const account = parts.account ?? '';
  const info = await getAccountInfo(ctx, req, account);
  const exists = info.status >= 200 && info.status < 300 && info.reallyExists;
  const current = info.sysmeta['project-domain-id'];
  const hasId = accountMatches(ctx, account, identity.projectId);
  const requestId = hasId ? identity.projectDomainId : null;
  let value: string | null = null;
  if (!exists) value = hasId ? (requestId ?? '') : UNKNOWN_ID;
  else if (current === undefined && requestId === DEFAULT_DOMAIN_ID) value = requestId;
  else if (current === UNKNOWN_ID && hasId) value = requestId ?? '';
  if (value !== null) req.headers[PROJECT_DOMAIN_ID_SYSMETA] = value;
}
