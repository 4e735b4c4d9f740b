import type { Readable } from 'node:stream';
import type { RequestContext } from '../../core/auth/context.js';
import type { ServiceClient } from '../../core/auth/service-client.js';
import type { TokenValidator } from '../../core/auth/token-middleware.js';
import type { ObjectConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import type { HashPathSalt } from '../common.js';
import type { Ring } from '../ring/ring.js';
import type { StorageClient } from '../storage/client.js';

/**
 * The object proxy is a pipeline of middlewares around the proxy app, as
 * Swift's proxy is a WSGI pipeline: each feature (tempurl, slo, bulk, s3, ...)
 * is one middleware that sees a request on its way in and the response on its
 * way out, and may make subrequests. Everything the features share is here.
 */

/** A Swift API request as it travels down the pipeline. */
export interface SwiftRequest {
  method: string;
  /**
   * The percent-decoded path: `/v1/AUTH_p/c/o`, `/info`, or for S3 the
   * original path until the s3 middleware rewrites the request.
   */
  path: string;
  /** The query string, undecoded (`format=json&prefix=a%2Fb`); parse with `new URLSearchParams`. */
  query: string;
  /** Header names lower-case; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The request body, streamed; null when there is none. Read it at most once. */
  body: Readable | null;
  env: RequestEnv;
}

/** What travels with a request and is not a header (Swift's WSGI environ). */
export interface RequestEnv {
  /**
   * Swift's transaction id, `tx<21 hex>-<10 hex of the time>` (clients and
   * Tempest check that form): logs, `X-Trans-Id`, `X-Openstack-Request-Id`.
   */
  requestId: string;
  /** The caller's client address. */
  remoteAddr: string;
  /** Set by the auth middleware from a valid token; null for anonymous callers. */
  identity: RequestContext | null;
  /**
   * Set by the auth middleware: decides whether this request may go ahead
   * (null) or must be refused (the response). The proxy app calls it once it
   * knows the container's ACLs (Swift's `swift.authorize`).
   */
  authorize?: (req: SwiftRequest, acls?: { read?: string; write?: string }) => SwiftResponse | null | Promise<SwiftResponse | null>;
  /** Skips authorization entirely (Swift's `swift.authorize_override`): tempurl, formpost, internal clients. */
  authorizeOverride?: boolean;
  /** The middleware that made this subrequest (`SLO`, `DLO`, `TU`, `FP`, `SW`, `VW`, `BD`, `EA`, `S3`), for logs. */
  source?: string;
  /** True when the caller holds the reseller admin role (Swift's `reseller_request`; set by auth): e.g. only such a caller may set account quotas. */
  resellerAdmin?: boolean;
  /**
   * True once `authorize` found that the caller owns the account (an operator
   * role on its project, or the reseller admin): Swift's `swift_owner`. Only
   * owners see and set ACLs, `X-Account-Access-Control` and temp URL keys.
   */
  swiftOwner?: boolean;
  /**
   * Set by `listing_formats` (Swift's `swift.format_listing`): a middleware
   * below that answers a listing with its own body (staticweb's HTML) sets
   * it to false so the body is passed on untouched.
   */
  formatListing?: boolean;
  /** Anything else a middleware needs to hand down (keys in the middleware's own name). */
  [key: string]: unknown;
}

/** A response on its way back up. A Readable body must be consumed or destroyed by whoever receives it. */
export interface SwiftResponse {
  status: number;
  /** Header names lower-case. */
  headers: Record<string, string>;
  body: Readable | Buffer | string | null;
}

export type Handler = (req: SwiftRequest) => Promise<SwiftResponse>;

/** One feature of the proxy. */
export interface Middleware {
  /** Swift's name for it (`tempurl`, `slo`, ...): also its key in `/info`. */
  name: string;
  /** Wraps the rest of the pipeline (`next`). Called once when the proxy starts. */
  wrap(next: Handler, ctx: ProxyContext): Handler;
}

/** What every middleware and the proxy app can use. */
export interface ProxyContext {
  config: ObjectConfig;
  log: Logger;
  salt: HashPathSalt;
  rings: { account: Ring; container: Ring; object: Ring };
  storage: StorageClient;
  /** Logs in as the `swift` service user (token validation, s3tokens). */
  client: ServiceClient;
  validator: TokenValidator;
  /** Adds what a feature reports in `GET /info` (`registerInfo('slo', {max_manifest_segments: 1000})`). Admin-only sections go in `admin`. */
  registerInfo(name: string, info: Record<string, unknown>, admin?: boolean): void;
  /**
   * Sends a request through the whole pipeline from the top (as a client
   * would). A subrequest of a middleware usually goes to its own `next`
   * instead; this is for requests that must pass the features above it.
   */
  pipeline: Handler;
  /** The proxy app alone, below every middleware and without authorization (Swift's internal client). */
  internal: Handler;
}

/** A response with a small text body (Swift's plain-text errors: `<html><h1>Not Found</h1>...`). */
export function textResponse(status: number, body: string, headers: Record<string, string> = {}): SwiftResponse {
  return { status, headers: { 'content-type': 'text/html; charset=UTF-8', ...headers }, body };
}

/** Builds a subrequest of `req` that shares its env (identity, request id) but not its body. */
export function subrequest(req: SwiftRequest, method: string, path: string, options: { query?: string; headers?: Record<string, string>; body?: Readable | null; source?: string } = {}): SwiftRequest {
  return {
    method,
    path,
    query: options.query ?? '',
    headers: options.headers ?? {},
    body: options.body ?? null,
    env: { ...req.env, ...(options.source ? { source: options.source } : {}) },
  };
}
