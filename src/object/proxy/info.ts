import { CONSTRAINTS } from '../common.js';
import { asciiJson } from './acl.js';
import { DEFAULT_POLICY } from './controller-common.js';
import type { ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';

/**
 * `GET /info` (Swift's capabilities): the `swift` section (version,
 * constraints, policies) and what each middleware registered with
 * `ctx.registerInfo`. Admin sections are kept but not served (Swift serves
 * them only to requests signed with an `admin_key`, which we do not set).
 */

/** The version `/info` reports: the Swift release whose API this proxy follows. */
export const SWIFT_API_VERSION = '2.35.0';

/** Capabilities registered by the proxy and its middlewares. */
export class InfoRegistry {
  private readonly sections = new Map<string, Record<string, unknown>>();
  private readonly admin = new Map<string, Record<string, unknown>>();

  /** Adds (merges) a section; `admin` sections are never served without an admin signature. */
  register(name: string, info: Record<string, unknown>, admin = false): void {
    const target = admin ? this.admin : this.sections;
    target.set(name, { ...(target.get(name) ?? {}), ...info });
  }

  /** The public sections, in registration order. */
  public(): Record<string, Record<string, unknown>> {
    return Object.fromEntries(this.sections);
  }
}

const registries = new WeakMap<ProxyContext, InfoRegistry>();

/** Ties a registry to a proxy (done once by the server when it builds the context). */
export function attachInfoRegistry(ctx: ProxyContext, registry: InfoRegistry): void {
  registries.set(ctx, registry);
}

/** The `swift` section as Swift's proxy registers it. */
export function swiftSection(ctx: ProxyContext): Record<string, unknown> {
  return {
    version: SWIFT_API_VERSION,
    strict_cors_mode: true,
    policies: [{ name: DEFAULT_POLICY.name, aliases: DEFAULT_POLICY.name, default: true }],
    allow_account_management: true,
    account_autocreate: true,
    allow_open_expired: false,
    ...CONSTRAINTS,
    max_file_size: ctx.config.max_file_size,
  };
}

/** The `/info` response (JSON, ASCII-escaped; CORS headers when an `Origin` is given). */
export function infoResponse(ctx: ProxyContext, req: SwiftRequest): SwiftResponse {
  const registry = registries.get(ctx);
  const body = asciiJson({ swift: swiftSection(ctx), ...(registry?.public() ?? {}) });
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=UTF-8' };
  const origin = req.headers.origin;
  if (origin) {
    headers['access-control-allow-origin'] = origin;
    headers['access-control-expose-headers'] = 'x-trans-id';
  }
  if (req.query.includes('swiftinfo_sig') || req.query.includes('swiftinfo_expires')) {
    return { status: 403, headers: { 'content-type': 'text/html; charset=UTF-8' }, body: '<html><h1>Forbidden</h1><p>Access was denied to this resource.</p></html>' };
  }
  return { status: 200, headers, body };
}
