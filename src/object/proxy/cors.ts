import { getContainerInfo, type ContainerInfo } from './info-cache.js';
import type { ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';

/**
 * CORS as Swift's proxy does it, per container: the allowed origins, exposed
 * headers and max age come from `X-Container-Meta-Access-Control-*`;
 * `OPTIONS` answers preflights, and container and object responses to a
 * request with an `Origin` carry the `Access-Control-*` headers (strict
 * mode: only for allowed origins).
 */

function allowedOrigins(cors: ContainerInfo['cors']): Set<string> {
  return new Set((cors.allowOrigin ?? '').split(' ').map((a) => a.trim()).filter(Boolean));
}

function originAllowed(cors: ContainerInfo['cors'], origin: string): boolean {
  const allowed = allowedOrigins(cors);
  return allowed.has(origin) || allowed.has('*');
}

const SIMPLE_EXPOSED = ['cache-control', 'content-language', 'content-type', 'expires', 'last-modified', 'pragma', 'etag', 'x-timestamp', 'x-trans-id', 'x-openstack-request-id'];

/** Runs a container or object method and adds CORS headers to its response when the request has an allowed `Origin` (Swift's `cors_validation`). */
export async function corsValidation(ctx: ProxyContext, req: SwiftRequest, account: string, container: string, run: () => Promise<SwiftResponse>): Promise<SwiftResponse> {
  const origin = req.headers.origin;
  if (!origin) return run();
  const info = await getContainerInfo(ctx, req, account, container);
  const response = await run();
  if (!originAllowed(info.cors, origin)) return response;
  if (!response.headers['access-control-expose-headers']) {
    const expose = new Set(SIMPLE_EXPOSED);
    for (const name of Object.keys(response.headers)) if (name.startsWith('x-container-meta') || name.startsWith('x-object-meta')) expose.add(name);
    for (const name of (info.cors.exposeHeaders ?? '').split(' ')) if (name.trim()) expose.add(name.trim().toLowerCase());
    response.headers['access-control-expose-headers'] = [...expose].join(', ');
  }
  if (!response.headers['access-control-allow-origin']) {
    if ((info.cors.allowOrigin ?? '').trim() === '*') {
      response.headers['access-control-allow-origin'] = '*';
    } else {
      response.headers['access-control-allow-origin'] = origin;
      response.headers.vary = response.headers.vary ? `${response.headers.vary}, Origin` : 'Origin';
    }
  }
  return response;
}

/** `OPTIONS` of a container or object: the allowed methods; for a CORS preflight the `Access-Control-Allow-*` headers, or 401 when the origin or method is not allowed. */
export async function preflight(ctx: ProxyContext, req: SwiftRequest, account: string, container: string, methods: string[]): Promise<SwiftResponse> {
  const headers: Record<string, string> = { allow: methods.join(', '), 'content-type': 'text/html; charset=UTF-8' };
  const origin = req.headers.origin;
  if (!origin) return { status: 200, headers, body: '' };
  const info = await getContainerInfo(ctx, req, account, container);
  const method = req.headers['access-control-request-method'];
  if (!originAllowed(info.cors, origin) || !method || !methods.includes(method)) {
    return { status: 401, headers: { ...headers }, body: '<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized to access the document you requested.</p></html>' };
  }
  if ((info.cors.allowOrigin ?? '').trim() === '*') {
    headers['access-control-allow-origin'] = '*';
  } else {
    headers['access-control-allow-origin'] = origin;
    headers.vary = 'Origin';
  }
  if (info.cors.maxAge !== null) headers['access-control-max-age'] = info.cors.maxAge;
  headers['access-control-allow-methods'] = methods.join(', ');
  const requested = (req.headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  if (requested.length) {
    headers['access-control-allow-headers'] = [...new Set(requested)].join(', ');
    headers.vary = headers.vary ? `${headers.vary}, Access-Control-Request-Headers` : 'Access-Control-Request-Headers';
  }
  return { status: 200, headers, body: '' };
}
