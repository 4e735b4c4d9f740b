import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { BadRequest, Forbidden, NotFound } from '../../core/errors.js';
import type { IdentitySchema } from '../db/schema.js';
import { authorize, type Identity } from '../identity.js';
import { written } from './catalog.js';
import { getDomain } from './lookup.js';

type Db = Kysely<IdentitySchema>;
type Config = Record<string, Record<string, unknown>>;
interface Option {
  group: string;
  option: string;
  value: unknown;
  sensitive: boolean;
}
interface Where {
  group?: string;
  option?: string;
}

/**
 * The options a domain may set (Keystone's `whitelisted_options`) with
 * Keystone's defaults, and the sensitive ones, which are stored but never
 * returned.
 */
const DEFAULTS: Config = {
  identity: { driver: 'sql', list_limit: null },
  ldap: {
    url: 'ldap://localhost', user: null, suffix: 'cn=example,cn=com', query_scope: 'one', page_size: 0, alias_dereferencing: 'default',
    debug_level: null, chase_referrals: null, user_tree_dn: null, user_filter: null, user_objectclass: 'inetOrgPerson', user_id_attribute: 'cn',
    user_name_attribute: 'sn', user_mail_attribute: 'mail', user_description_attribute: 'description', user_pass_attribute: 'userPassword',
    user_enabled_attribute: 'enabled', user_enabled_invert: false, user_enabled_mask: 0, user_enabled_default: 'True',
    user_attribute_ignore: ['default_project_id'], user_default_project_id_attribute: null, user_enabled_emulation: false,
    user_enabled_emulation_dn: null, user_enabled_emulation_use_group_config: false, user_additional_attribute_mapping: [], group_tree_dn: null,
    group_filter: null, group_objectclass: 'groupOfNames', group_id_attribute: 'cn', group_name_attribute: 'ou', group_members_are_ids: false,
    group_member_attribute: 'member', group_desc_attribute: 'description', group_attribute_ignore: [], group_additional_attribute_mapping: [],
    tls_cacertfile: null, tls_cacertdir: null, use_tls: false, tls_req_cert: 'demand', use_pool: true, pool_size: 10, pool_retry_max: 3,
    pool_retry_delay: 0.1, pool_connection_timeout: -1, pool_connection_lifetime: 600, use_auth_pool: true, auth_pool_size: 100,
    auth_pool_connection_lifetime: 60,
  },
};
const SENSITIVE: Record<string, string[]> = { identity: [], ldap: ['password'] };

/** Keystone's `InvalidDomainConfig`, which is a 403. */
function invalid(reason: string): Forbidden {
  return new Forbidden(`Invalid domain specific configuration: ${reason}.`);
}

function notFound(domainId: string, where: Where): NotFound {
  const what = where.option ? `option ${where.option} in group ${where.group ?? ''}` : where.group ? `group ${where.group}` : 'any options';
  return new NotFound(`Could not find ${what} in domain configuration for domain ${domainId}.`);
}

function whitelisted(group: string, option: string): boolean {
  const defaults = DEFAULTS[group];
  return defaults !== undefined && Object.hasOwn(defaults, option);
}

function checkGroupOption(where: Where): void {
  const { group, option } = where;
  if (!group) return;
  if (!Object.hasOwn(DEFAULTS, group)) throw invalid(`Group ${group} is not supported for domain specific configurations`);
  if (option && !whitelisted(group, option) && !(SENSITIVE[group] ?? []).includes(option)) {
    throw invalid(`Option ${option} in group ${group} is not supported for domain specific configurations`);
  }
}

function checkConfig(config: Record<string, unknown>): void {
  if (Object.keys(config).length === 0) throw invalid('No options specified');
  for (const [group, options] of Object.entries(config)) {
    if (typeof options !== 'object' || options === null || Array.isArray(options) || Object.keys(options).length === 0) {
      throw invalid(`The value of group ${group} specified in the config should be a dictionary of options`);
    }
    for (const option of Object.keys(options)) checkGroupOption({ group, option });
  }
}

function toList(config: Config): Option[] {
  return Object.entries(config).flatMap(([group, options]) =>
    Object.entries(options).map(([option, value]) => ({ group, option, value, sensitive: (SENSITIVE[group] ?? []).includes(option) })),
  );
}

function toConfig(options: Option[]): Config {
  const config: Config = {};
  for (const o of options) config[o.group] = { ...config[o.group], [o.option]: o.value };
  return config;
}

function decode(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A domain's stored options; `sensitive` false leaves out the ones never shown. */
async function loadOptions(db: Db, domainId: string, where: Where, withSensitive: boolean): Promise<Option[]> {
  let query = db.selectFrom('domain_config').selectAll().where('domain_id', '=', domainId);
  if (where.group) query = query.where('group', '=', where.group);
  if (where.option) query = query.where('option', '=', where.option);
  if (!withSensitive) query = query.where('sensitive', '=', 0);
  const rows = await query.execute();
  return rows.map((r) => ({ group: r.group, option: r.option, value: decode(r.value), sensitive: r.sensitive === 1 }));
}

async function storeOptions(db: Db, domainId: string, options: Option[], replaceAll: boolean): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (replaceAll) await trx.deleteFrom('domain_config').where('domain_id', '=', domainId).execute();
    for (const o of options) {
      await trx.deleteFrom('domain_config').where('domain_id', '=', domainId).where('group', '=', o.group).where('option', '=', o.option).execute();
      await trx
        .insertInto('domain_config')
        .values({ domain_id: domainId, group: o.group, option: o.option, value: JSON.stringify(o.value), sensitive: o.sensitive ? 1 : 0 })
        .execute();
    }
  });
}

/** The shown (non-sensitive) configuration; a single option's is `{option: value}`. 404 when empty. */
async function shownConfig(db: Db, domainId: string, where: Where): Promise<Record<string, unknown>> {
  const options = await loadOptions(db, domainId, where, false);
  const first = options[0];
  if (!first) throw notFound(domainId, where);
  return where.option ? { [first.option]: first.value } : toConfig(options);
}

function configOf(body: unknown): Record<string, unknown> {
  const config = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).config : undefined;
  if (config === undefined) return {};
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new BadRequest("Invalid input for field 'config': must be object");
  return config as Record<string, unknown>;
}

/** The update of a group or an option names exactly that group or option, which must already be set. */
async function checkPartialUpdate(db: Db, domainId: string, config: Record<string, unknown>, where: Where): Promise<void> {
  const { group, option } = where;
  if (!group) return;
  const groupOptions = (config[group] ?? {}) as Record<string, unknown>;
  if (Object.keys(config).length !== 1 || (option && Object.keys(groupOptions).length !== 1)) {
    throw invalid(
      option
        ? `Trying to update option ${option} in group ${group}, so that, and only that, option must be specified  in the config`
        : `Trying to update group ${group}, so that, and only that, group must be specified in the config`,
    );
  }
  if (!(group in config)) throw invalid(`request to update group ${group}, but config provided contains group ${Object.keys(config)[0] ?? ''} instead`);
  if (option && !(option in groupOptions)) {
    throw invalid(`Trying to update option ${option} in group ${group}, but config provided contains option ${Object.keys(groupOptions)[0] ?? ''} instead`);
  }
  if ((await loadOptions(db, domainId, where, true)).length === 0) throw notFound(domainId, where);
}

async function updateConfig(identity: Identity, domainId: string, body: unknown, where: Where): Promise<Record<string, unknown>> {
  const given = configOf(body);
  const config = where.group && where.option ? { [where.group]: given } : given;
  checkConfig(config);
  checkGroupOption(where);
  await checkPartialUpdate(identity.db, domainId, config, where);
  await storeOptions(identity.db, domainId, toList(config as Config), false);
  written(identity, 'domain_config', 'updated', domainId);
  return shownConfig(identity.db, domainId, {});
}

async function deleteConfig(identity: Identity, domainId: string, where: Where): Promise<void> {
  checkGroupOption(where);
  if (where.group) {
    const current = toConfig(await loadOptions(identity.db, domainId, { group: where.group }, true))[where.group];
    if (!current) throw notFound(domainId, { group: where.group });
    if (where.option && !(where.option in current)) throw notFound(domainId, where);
  }
  let query = identity.db.deleteFrom('domain_config').where('domain_id', '=', domainId);
  if (where.group) query = query.where('group', '=', where.group);
  if (where.option) query = query.where('option', '=', where.option);
  await query.execute();
  written(identity, 'domain_config', 'deleted', domainId);
}

function defaults(where: Where): Record<string, unknown> {
  checkGroupOption(where);
  const { group, option } = where;
  if (!group) return DEFAULTS;
  const groupDefaults = DEFAULTS[group] ?? {};
  if (!option) return { [group]: groupDefaults };
  if (!whitelisted(group, option)) throw invalid(`Reading the default for option ${option} in group ${group} is not supported`);
  return { [option]: groupDefaults[option] };
}

type ConfigRoute = { Params: { domain_id: string; group?: string; option?: string } };
type ConfigRequest = FastifyRequest<ConfigRoute>;

/**
 * Domain-specific configuration (`/v3/domains/{domain_id}/config`, by group
 * and option, and the defaults under `/v3/domains/config/.../default`).
 * Only the `identity` and `ldap` groups and Keystone's whitelisted options
 * are accepted (403 otherwise, as Keystone); `ldap.password` is stored but
 * never returned.
 */
export function registerDomainConfig(app: FastifyInstance, identity: Identity): void {
  const where = (req: ConfigRequest): Where => ({ group: req.params.group, option: req.params.option });
  const base = '/v3/domains/:domain_id/config';
  for (const path of [base, `${base}/:group`, `${base}/:group/:option`]) {
    app.get<ConfigRoute>(path, async (req) => {
      authorize(identity, req, 'identity:get_domain_config');
      checkGroupOption(where(req));
      await getDomain(identity, req.params.domain_id);
      return { config: await shownConfig(identity.db, req.params.domain_id, where(req)) };
    });
    app.patch<ConfigRoute>(path, async (req) => {
      authorize(identity, req, 'identity:update_domain_config');
      await getDomain(identity, req.params.domain_id);
      return { config: await updateConfig(identity, req.params.domain_id, req.body, where(req)) };
    });
    app.delete<ConfigRoute>(path, async (req, reply) => {
      authorize(identity, req, 'identity:delete_domain_config');
      await getDomain(identity, req.params.domain_id);
      await deleteConfig(identity, req.params.domain_id, where(req));
      return reply.code(204).send();
    });
  }

  app.put<ConfigRoute>(base, async (req, reply) => {
    authorize(identity, req, 'identity:create_domain_config');
    const domainId = (await getDomain(identity, req.params.domain_id)).id;
    const config = configOf(req.body);
    checkConfig(config);
    const existed = (await loadOptions(identity.db, domainId, {}, true)).length > 0;
    await storeOptions(identity.db, domainId, toList(config as Config), true);
    written(identity, 'domain_config', existed ? 'updated' : 'created', domainId);
    reply.code(existed ? 200 : 201);
    return { config: toConfig(await loadOptions(identity.db, domainId, {}, false)) };
  });

  for (const path of ['/v3/domains/config/default', '/v3/domains/config/:group/default', '/v3/domains/config/:group/:option/default']) {
    app.get<ConfigRoute>(path, async (req) => {
      authorize(identity, req, 'identity:get_domain_config_default');
      return { config: defaults(where(req)) };
    });
  }
}
