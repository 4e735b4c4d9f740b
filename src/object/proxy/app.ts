import { Timestamp } from '../common.js';
import { AccountController } from './account.js';
import { ContainerController } from './container.js';
import { checkUtf8, splitSwiftPath, validApiVersion } from './constraints.js';
import { corsValidation, preflight } from './cors.js';
import { infoResponse } from './info.js';
import { getContainerInfo } from './info-cache.js';
import { ObjectController } from './object.js';
import type { Handler, ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { httpError, plainError, SwiftHttpError } from './responses.js';

/**
 * The proxy app at the bottom of the pipeline (Swift's `proxy-server` app):
 * picks the account, container or object controller, authorizes as Swift
 * does (`env.authorize` first with no ACL; methods that need the
 * container's ACL get a second chance once it is known), and runs the
 * method.
 */

/** The authorization a controller asks for once it knows the container's ACLs. */
export interface Authz {
  /** Null when the request may go on, else the denial to return. Sets `env.swiftOwner` as a side effect. */
  check(acls?: { read?: string; write?: string }): Promise<SwiftResponse | null>;
}

type Kind = 'account' | 'container' | 'object';

const METHODS: Record<Kind, string[]> = {
  account: ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'],
  container: ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'],
  object: ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'],
};

/** Methods that let the controller decide with the container's ACL (Swift's `delay_denial`). */
const DELAY_DENIAL: Record<Kind, Set<string>> = {
  account: new Set(),
  container: new Set(['GET', 'HEAD']),
  object: new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE']),
};

/** Builds the proxy app. Errors thrown as {@link SwiftHttpError} become their response; anything else is a logged 500. */
export function proxyApp(ctx: ProxyContext): Handler {
  return async (req) => {
    try {
      return await handle(ctx, req);
    } catch (err) {
      if (err instanceof SwiftHttpError) return err.response;
      ctx.log.error({ request_id: req.env.requestId, err }, 'ERROR Unhandled exception in request');
      return httpError(500);
    }
  };
}

async function handle(ctx: ProxyContext, req: SwiftRequest): Promise<SwiftResponse> {
  // Every write gets its timestamp here unless a middleware set one (Swift's `ensure_x_timestamp`).
  const given = req.headers['x-timestamp'];
  if (given !== undefined) {
    try {
      req.headers['x-timestamp'] = Timestamp.parse(given).internal;
    } catch {
      return plainError(400, `X-Timestamp should be a UNIX timestamp float value; was '${given}'`);
    }
  } else {
    req.headers['x-timestamp'] = Timestamp.now().internal;
  }
  if (req.headers['x-storage-token'] !== undefined && req.headers['x-auth-token'] === undefined) req.headers['x-auth-token'] = req.headers['x-storage-token'];
  if (!checkUtf8(req.path)) return httpError(412, 'Invalid UTF8 or contains NULL');

  if (req.path === '/info') return info(ctx, req);
  const parts = splitSwiftPath(req.path);
  if (!parts) return httpError(404);
  const { version, account, container, object } = parts;
  if (account && !validApiVersion(version)) return httpError(400);
  let kind: Kind;
  if (account && container && object) kind = 'object';
  else if (account && container) kind = 'container';
  else if (account && !container && !object) kind = 'account';
  else return httpError(412, 'Bad URL');

  if (kind === 'object' && req.method !== 'OPTIONS') {
    // Swift's get_controller: no object request while the container's servers cannot be asked.
    const info = await getContainerInfo(ctx, req, account, container ?? '');
    if (info.status >= 500) return httpError(503);
  }

  const allowed = METHODS[kind];
  if (!allowed.includes(req.method)) return httpError(405, undefined, { allow: allowed.join(', ') });

  // Authorize before the handler, always; a denial waits when the method may be allowed by an ACL.
  let authorized = true;
  const authorizeFn = req.env.authorize;
  if (authorizeFn) {
    const denial = await authorizeFn(req);
    if (denial) {
      if (!DELAY_DENIAL[kind].has(req.method)) return denial;
      authorized = false;
    }
  }
  const authz: Authz = {
    async check(acls) {
      if (authorized || !authorizeFn) return null;
      const denial = await authorizeFn(req, acls);
      if (!denial) authorized = true;
      return denial;
    },
  };

  switch (kind) {
    case 'account':
      return accountMethod(new AccountController(ctx, account), req);
    case 'container': {
      const controller = new ContainerController(ctx, account, container ?? '');
      if (req.method === 'OPTIONS') return preflight(ctx, req, account, container ?? '', allowed);
      return corsValidation(ctx, req, account, container ?? '', () => containerMethod(controller, req, authz));
    }
    case 'object': {
      const controller = new ObjectController(ctx, account, container ?? '', object ?? '');
      if (req.method === 'OPTIONS') return preflight(ctx, req, account, container ?? '', allowed);
      return corsValidation(ctx, req, account, container ?? '', () => objectMethod(controller, req, authz));
    }
  }
}

function accountMethod(controller: AccountController, req: SwiftRequest): Promise<SwiftResponse> {
  switch (req.method) {
    case 'GET':
    case 'HEAD':
      return controller.getOrHead(req);
    case 'PUT':
      return controller.put(req);
    case 'POST':
      return controller.post(req);
    case 'DELETE':
      return controller.delete(req);
    default:
      return Promise.resolve({ status: 200, headers: { allow: METHODS.account.join(', '), 'content-type': 'text/html; charset=UTF-8' }, body: '' });
  }
}

function containerMethod(controller: ContainerController, req: SwiftRequest, authz: Authz): Promise<SwiftResponse> {
  switch (req.method) {
    case 'GET':
    case 'HEAD':
      return controller.getOrHead(req, authz);
    case 'PUT':
      return controller.put(req);
    case 'POST':
      return controller.post(req);
    default:
      return controller.delete(req);
  }
}

function objectMethod(controller: ObjectController, req: SwiftRequest, authz: Authz): Promise<SwiftResponse> {
  switch (req.method) {
    case 'GET':
    case 'HEAD':
      return controller.getOrHead(req, authz);
    case 'PUT':
      return controller.put(req, authz);
    case 'POST':
      return controller.post(req, authz);
    default:
      return controller.delete(req, authz);
  }
}

/** `/info` (Swift's InfoController): GET, HEAD and OPTIONS, open to anonymous callers. */
function info(ctx: ProxyContext, req: SwiftRequest): SwiftResponse {
  if (req.method === 'OPTIONS') return { status: 200, headers: { allow: 'HEAD, GET, OPTIONS', 'content-type': 'text/html; charset=UTF-8' }, body: '' };
  if (req.method !== 'GET' && req.method !== 'HEAD') return httpError(405, undefined, { allow: 'HEAD, GET, OPTIONS' });
  return infoResponse(ctx, req);
}
