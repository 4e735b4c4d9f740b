import type { Kysely } from 'kysely';
import { policyCredentials, type RequestContext } from '../core/auth/context.js';
import type { ServiceClient } from '../core/auth/service-client.js';
import type { Bus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import type { DialectName } from '../core/db/database.js';
import type { Logger } from '../core/logging.js';
import type { PolicyEnforcer } from '../core/policy/index.js';
import type { NetworkSchema } from './db/schema.js';
import type { NetworkDriver } from './drivers/driver.js';
import { NeutronError } from './errors.js';

/**
 * Everything the network service's handlers share. One per network-api
 * process; handlers receive it, never reach for globals.
 */
export interface NetworkService {
  db: Kysely<NetworkSchema>;
  dialect: DialectName;
  config: StratusConfig;
  policy: PolicyEnforcer;
  bus: Bus;
  log: Logger;
  /** Calls other services (compute's `os-server-external-events`). */
  client: ServiceClient;
  /** This service's public URL (`http://host:9696`), for links and version documents. */
  publicUrl: string;
  /** The data plane: binds ports, tells agents what changed (`fake` or `linux`). */
  driver: NetworkDriver;
  /** Publishes a Neutron-style notification (`port.create.end`, ...). */
  notify(eventType: string, payload: unknown, ctx?: RequestContext): void;
}

/** True when the rule allows the caller (a rule that does not exist allows). */
export function allowed(net: NetworkService, ctx: RequestContext, rule: string, target: Record<string, unknown> = {}): boolean {
  if (!net.policy.has(rule)) return true;
  return net.policy.check(rule, target, policyCredentials(ctx));
}

/**
 * Checks `action` and, for each attribute the request sets, the rule
 * `<action>:<attribute>` when one exists; throws Neutron's 403
 * `PolicyNotAuthorized` naming the rules checked. `attributes` may name nested
 * keys with colons (`external_gateway_info:enable_snat`).
 */
export function authorize(net: NetworkService, ctx: RequestContext, action: string, target: Record<string, unknown>, attributes: Iterable<string> = []): void {
  const checked = [action];
  let ok = allowed(net, ctx, action, target);
  for (const attribute of attributes) {
    const rule = `${action}:${attribute}`;
    if (!net.policy.has(rule)) continue;
    checked.push(rule);
    if (ok && !allowed(net, ctx, rule, target)) ok = false;
  }
  if (!ok) throw new NeutronError(403, 'PolicyNotAuthorized', `(${checked.map((r) => `rule:${r}`).join(' and ')}) is disallowed by policy`);
}

/** True when the caller is an administrator of the network service. */
export function isAdmin(net: NetworkService, ctx: RequestContext): boolean {
  return net.policy.check('context_is_admin', {}, policyCredentials(ctx));
}

/**
 * Drops from a view the attributes the caller may not read
 * (`get_<resource>:<attribute>` rules, e.g. `binding:host_id` for non-admins).
 */
export function hideAttributes(net: NetworkService, ctx: RequestContext, resource: string, view: Record<string, unknown>, target: Record<string, unknown>): Record<string, unknown> {
  const prefix = `get_${resource}:`;
  for (const rule of net.policy.namesStartingWith(prefix)) {
    const attribute = rule.slice(prefix.length);
    if (attribute in view && !net.policy.check(rule, target, policyCredentials(ctx))) delete view[attribute];
  }
  return view;
}
