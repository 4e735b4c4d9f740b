import { randomBytes } from 'node:crypto';
import { GLOBAL_ROLE, ROOT_DOMAIN } from './db/schema.js';
import { isoNow, newId } from './common.js';
import type { Identity } from './identity.js';

export const DEFAULT_DOMAIN_ID = 'default';

/** One catalog entry to register: a service type and its URL for each interface. */
export interface CatalogService {
  type: string;
  name: string;
  description: string;
  urls: { public: string; internal: string; admin: string };
}

export interface BootstrapOptions {
  adminUser: string;
  adminProject: string;
  /** Empty: generate one (only the first time; it is returned so it can be shown once). */
  adminPassword: string;
  region: string;
  services: CatalogService[];
  /** Service users to ensure (one per service besides identity), with their passwords. */
  serviceUsers: { name: string; password: string; /** More roles on the service project (global roles that exist). */ roles?: string[] }[];
  /** More global roles the enabled services need (object storage's `ResellerAdmin`, `swiftoperator`). */
  extraRoles?: string[];
}

export interface BootstrapResult {
  /** True when this call created the admin user (a first start). */
  created: boolean;
  adminPassword: string | null;
  adminUserId: string;
  adminProjectId: string;
}

/**
 * Makes sure the cloud's base exists: the Default domain, the roles admin >
 * member > reader (each implying the next), the admin project and user (admin
 * on the project and on the system), the service project, service users, the
 * region, and the catalog entries of the enabled services. Idempotent: what
 * exists is left alone (the admin password is never reset), except catalog
 * URLs and service users' passwords, which follow the configuration.
 */
export async function bootstrap(identity: Identity, options: BootstrapOptions): Promise<BootstrapResult> {
  const db = identity.db;
  const now = isoNow();
  const ensureProject = async (id: string | null, name: string, domainId: string, isDomain: boolean, description: string): Promise<string> => {
    const existing = await db.selectFrom('project').select('id').where('name', '=', name).where('domain_id', '=', domainId).executeTakeFirst();
    if (existing) return existing.id;
    const pid = id ?? newId();
    await db
      .insertInto('project')
      .values({ id: pid, name, description, enabled: 1, domain_id: domainId, parent_id: isDomain ? null : domainId, is_domain: isDomain ? 1 : 0, extra: '{}', created_at: now })
      .execute();
    return pid;
  };
  await ensureProject(DEFAULT_DOMAIN_ID, 'Default', ROOT_DOMAIN, true, 'The default domain');

  const roleIds: Record<string, string> = {};
  for (const name of ['admin', 'member', 'reader', 'service', ...(options.extraRoles ?? [])]) {
    const existing = await db.selectFrom('role').select('id').where('name', '=', name).where('domain_id', '=', GLOBAL_ROLE).executeTakeFirst();
    roleIds[name] = existing?.id ?? newId();
    if (!existing) await db.insertInto('role').values({ id: roleIds[name] ?? '', name, domain_id: GLOBAL_ROLE, description: null, options: '{}', extra: '{}' }).execute();
  }
  for (const [prior, implied] of [['admin', 'member'], ['member', 'reader']] as const) {
    const values = { prior_role_id: roleIds[prior] ?? '', implied_role_id: roleIds[implied] ?? '' };
    const exists = await db.selectFrom('implied_role').select('prior_role_id').where('prior_role_id', '=', values.prior_role_id).where('implied_role_id', '=', values.implied_role_id).executeTakeFirst();
    if (!exists) await db.insertInto('implied_role').values(values).execute();
  }

  const adminProjectId = await ensureProject(null, options.adminProject, DEFAULT_DOMAIN_ID, false, 'Bootstrap project for initializing the cloud.');
  const serviceProjectId = await ensureProject(null, 'service', DEFAULT_DOMAIN_ID, false, 'Service users of the cloud');

  const ensureUser = async (name: string, password: string): Promise<{ id: string; created: boolean }> => {
    const existing = await db.selectFrom('user').select('id').where('name', '=', name).where('domain_id', '=', DEFAULT_DOMAIN_ID).executeTakeFirst();
    if (existing) return { id: existing.id, created: false };
    const id = newId();
    await db
      .insertInto('user')
      .values({
        id,
        name,
        domain_id: DEFAULT_DOMAIN_ID,
        enabled: 1,
        default_project_id: null,
        password_hash: await identity.hasher.hash(password),
        password_created_at: now,
        password_expires_at: null,
        extra: '{}',
        options: '{}',
        created_at: now,
        last_active_at: null,
        failed_auth_count: 0,
        failed_auth_at: null,
      })
      .execute();
    return { id, created: true };
  };
  const grant = async (type: string, actorId: string, targetId: string, roleId: string): Promise<void> => {
    const exists = await db
      .selectFrom('assignment')
      .select('role_id')
      .where('type', '=', type)
      .where('actor_id', '=', actorId)
      .where('target_id', '=', targetId)
      .where('role_id', '=', roleId)
      .where('inherited', '=', 0)
      .executeTakeFirst();
    if (!exists) await db.insertInto('assignment').values({ type, actor_id: actorId, target_id: targetId, role_id: roleId, inherited: 0 }).execute();
  };

  const generated = options.adminPassword === '' ? randomBytes(18).toString('base64url') : null;
  const admin = await ensureUser(options.adminUser, options.adminPassword || (generated ?? ''));
  await grant('UserProject', admin.id, adminProjectId, roleIds.admin ?? '');
  await grant('UserSystem', admin.id, 'system', roleIds.admin ?? '');
  for (const su of options.serviceUsers) {
    const user = await ensureUser(su.name, su.password);
    // A service user's password follows the configuration (the operator may change it there).
    if (!user.created) {
      const current = await db.selectFrom('user').select('password_hash').where('id', '=', user.id).executeTakeFirst();
      if (!(await identity.hasher.verify(current?.password_hash ?? null, su.password))) {
        await db.updateTable('user').set({ password_hash: await identity.hasher.hash(su.password), password_created_at: now }).where('id', '=', user.id).execute();
      }
    }
    await grant('UserProject', user.id, serviceProjectId, roleIds.admin ?? '');
    await grant('UserProject', user.id, serviceProjectId, roleIds.service ?? '');
    for (const role of su.roles ?? []) {
      const roleId = roleIds[role];
      if (roleId) await grant('UserProject', user.id, serviceProjectId, roleId);
    }
  }

  const region = await db.selectFrom('region').select('id').where('id', '=', options.region).executeTakeFirst();
  if (!region) await db.insertInto('region').values({ id: options.region, description: '', parent_region_id: null, extra: '{}' }).execute();

  for (const service of options.services) await ensureCatalogService(identity, service, options.region);
  identity.changed();
  return { created: admin.created, adminPassword: admin.created ? (generated ?? null) : null, adminUserId: admin.id, adminProjectId };
}

async function ensureCatalogService(identity: Identity, service: CatalogService, region: string): Promise<void> {
  const db = identity.db;
  let row = await db.selectFrom('service').select('id').where('type', '=', service.type).executeTakeFirst();
  if (!row) {
    row = { id: newId() };
    await db
      .insertInto('service')
      .values({ id: row.id, type: service.type, enabled: 1, extra: JSON.stringify({ name: service.name, description: service.description }) })
      .execute();
  }
  for (const iface of ['public', 'internal', 'admin'] as const) {
    const url = service.urls[iface];
    const existing = await db.selectFrom('endpoint').select(['id', 'url']).where('service_id', '=', row.id).where('interface', '=', iface).where('region_id', '=', region).executeTakeFirst();
    if (!existing) {
      await db.insertInto('endpoint').values({ id: newId(), service_id: row.id, interface: iface, url, region_id: region, enabled: 1, extra: '{}' }).execute();
    } else if (existing.url !== url) {
      await db.updateTable('endpoint').set({ url }).where('id', '=', existing.id).execute();
    }
  }
}
