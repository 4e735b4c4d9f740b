import { s3api } from '../s3/middleware.js';
import { accountQuotas } from './account-quotas.js';
import { proxyApp } from './app.js';
import { keystoneAuth } from './auth.js';
import { bulk } from './bulk.js';
import { catchErrors } from './catch-errors.js';
import { containerQuotas } from './container-quotas.js';
import { copy } from './copy.js';
import { crossdomain } from './crossdomain.js';
import { dlo } from './dlo.js';
import { formpost } from './formpost.js';
import { gatekeeper } from './gatekeeper.js';
import { healthcheck } from './healthcheck.js';
import { listingFormats } from './listing-formats.js';
import type { Handler, Middleware, ProxyContext } from './pipeline.js';
import { slo } from './slo.js';
import { staticweb } from './staticweb.js';
import { tempurl } from './tempurl.js';
import { versionedWrites } from './versioned-writes.js';

/** Options of {@link buildProxyPipeline}. */
export interface PipelineOptions {
  /** Identity's public root for `WWW-Authenticate` (default: `config.auth_url` without `/v3`). */
  authUri?: string;
}

/**
 * The middlewares in Swift's order (its default pipeline with DevStack's
 * additions), outermost first: catch_errors, gatekeeper, healthcheck,
 * crossdomain, listing_formats, bulk, tempurl, formpost, s3api, auth
 * (authtoken + keystoneauth), staticweb, copy, container_quotas,
 * account_quotas, slo, dlo, versioned_writes; then the proxy app.
 */
export function proxyMiddlewares(options: PipelineOptions & { authUri: string }): Middleware[] {
  return [
    catchErrors,
    gatekeeper,
    healthcheck,
    crossdomain,
    listingFormats,
    bulk,
    tempurl,
    formpost,
    s3api,
    keystoneAuth({ authUri: options.authUri }),
    staticweb,
    copy,
    containerQuotas,
    accountQuotas,
    slo,
    dlo,
    versionedWrites,
  ];
}

/**
 * Builds the proxy: the app at the bottom, each middleware wrapped around
 * it (innermost first, so each one's `wrap` runs once), and sets
 * `ctx.internal` (the app) and `ctx.pipeline` (the top). Returns the top.
 */
export function buildProxyPipeline(ctx: ProxyContext, options: PipelineOptions = {}): Handler {
  const authUri = options.authUri ?? ctx.config.auth_url.replace(/\/v3\/?$/, '');
  const app = proxyApp(ctx);
  // The internal client: no authorization, whatever env it is given (Swift's InternalClient).
  ctx.internal = (req) => app({ ...req, env: { ...req.env, authorizeOverride: true, swiftOwner: true, authorize: undefined } });
  // Until the pipeline is complete, a subrequest from the top starts at the app.
  ctx.pipeline = app;
  let handler: Handler = app;
  for (const middleware of proxyMiddlewares({ ...options, authUri }).reverse()) handler = middleware.wrap(handler, ctx);
  ctx.pipeline = handler;
  return handler;
}
