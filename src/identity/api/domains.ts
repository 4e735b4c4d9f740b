import type { FastifyInstance } from 'fastify';
import { Conflict, Forbidden } from '../../core/errors.js';
import { isUniqueViolation } from '../../core/db/database.js';
import { bool, isoNow, newId, queryBool, splitExtra } from '../common.js';
import { ROOT_DOMAIN, type ProjectRow } from '../db/schema.js';
import { authorize, collectionLinks, type Identity } from '../identity.js';
import { revoke } from '../revocation.js';
import { domainView } from '../views.js';
import { getDomain, tagsOf } from './lookup.js';
import { description, enabled, entityBody, name64, options, tags } from './schemas.js';
import { deleteProjectData } from './projects.js';

const KNOWN = ['id', 'name', 'description', 'enabled', 'tags', 'options', 'explicit_domain_id', 'links'];

/** Domains: create, list (filters name, enabled), show, update, delete (only when disabled, with all it holds). */
export function registerDomains(app: FastifyInstance, identity: Identity): void {
  const db = identity.db;

  app.post<{ Body: { domain: Record<string, unknown> & { name: string; description?: string | null; enabled?: boolean; tags?: string[]; explicit_domain_id?: string } } }>(
    '/v3/domains',
    { schema: { body: entityBody('domain', { name: name64, description, enabled, tags, options, explicit_domain_id: { type: 'string', pattern: '^[0-9a-f]{32}$' } }, ['name']) } },
    async (req, reply) => {
      authorize(identity, req, 'identity:create_domain');
      const d = req.body.domain;
      const row: ProjectRow = {
        id: d.explicit_domain_id ?? newId(),
        name: d.name,
        description: d.description ?? '',
        enabled: d.enabled === false ? 0 : 1,
        domain_id: ROOT_DOMAIN,
        parent_id: null,
        is_domain: 1,
        extra: JSON.stringify(splitExtra(d, KNOWN)),
        created_at: isoNow(),
      };
      try {
        await db.transaction().execute(async (trx) => {
          await trx.insertInto('project').values(row).execute();
          if (d.tags?.length) await trx.insertInto('project_tag').values(d.tags.map((name) => ({ project_id: row.id, name }))).execute();
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store domain - Duplicate entry found with name ${d.name}.`);
        throw err;
      }
      identity.changed();
      identity.notify('domain', 'created', row.id);
      reply.code(201);
      return { domain: domainView(identity, row, d.tags ?? []) };
    },
  );

  app.get<{ Querystring: { name?: string; enabled?: string } }>('/v3/domains', async (req) => {
    authorize(identity, req, 'identity:list_domains');
    let q = db.selectFrom('project').selectAll().where('is_domain', '=', 1);
    if (req.query.name !== undefined) q = q.where('name', '=', req.query.name);
    const en = queryBool(req.query.enabled);
    if (en !== undefined) q = q.where('enabled', '=', en ? 1 : 0);
    const rows = await q.orderBy('name').execute();
    const tagMap = await tagsOf(identity, rows.map((r) => r.id));
    return { domains: rows.map((r) => domainView(identity, r, tagMap.get(r.id))), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { id: string } }>('/v3/domains/:id', async (req) => {
    const row = await getDomain(identity, req.params.id).catch((err: unknown) => {
      authorize(identity, req, 'identity:get_domain', { target: { domain: { id: req.params.id } } });
      throw err;
    });
    authorize(identity, req, 'identity:get_domain', { target: { domain: { id: row.id } } });
    const tagMap = await tagsOf(identity, [row.id]);
    return { domain: domainView(identity, row, tagMap.get(row.id)) };
  });

  app.patch<{ Params: { id: string }; Body: { domain: Record<string, unknown> & { name?: string; description?: string | null; enabled?: boolean; tags?: string[] } } }>(
    '/v3/domains/:id',
    { schema: { body: entityBody('domain', { name: name64, description, enabled, tags, options, id: { type: 'string' } }) } },
    async (req) => {
      authorize(identity, req, 'identity:update_domain', { target: { domain: { id: req.params.id } } });
      const row = await getDomain(identity, req.params.id);
      const d = req.body.domain;
      if (d.id !== undefined && d.id !== row.id) throw new Forbidden('The domain id cannot be changed.');
      const extra = { ...JSON.parse(row.extra), ...splitExtra(d, KNOWN) } as Record<string, unknown>;
      const updated: ProjectRow = {
        ...row,
        name: d.name ?? row.name,
        description: d.description === undefined ? row.description : (d.description ?? ''),
        enabled: d.enabled === undefined ? row.enabled : d.enabled ? 1 : 0,
        extra: JSON.stringify(extra),
      };
      try {
        await db.transaction().execute(async (trx) => {
          await trx.updateTable('project').set({ name: updated.name, description: updated.description, enabled: updated.enabled, extra: updated.extra }).where('id', '=', row.id).execute();
          if (d.tags) {
            await trx.deleteFrom('project_tag').where('project_id', '=', row.id).execute();
            if (d.tags.length) await trx.insertInto('project_tag').values(d.tags.map((name) => ({ project_id: row.id, name }))).execute();
          }
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store domain - Duplicate entry found with name ${updated.name}.`);
        throw err;
      }
      if (bool(row.enabled) && !bool(updated.enabled)) {
        await revoke(db, { domain_id: row.id });
        identity.notify('domain', 'disabled', row.id);
      }
      identity.changed();
      identity.notify('domain', 'updated', row.id);
      const tagMap = await tagsOf(identity, [row.id]);
      return { domain: domainView(identity, updated, tagMap.get(row.id)) };
    },
  );

  app.delete<{ Params: { id: string } }>('/v3/domains/:id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_domain', { target: { domain: { id: req.params.id } } });
    await deleteDomain(identity, await getDomain(identity, req.params.id));
    return reply.code(204).send();
  });
}

/**
 * Deletes a domain and everything in it: projects, users, groups, its roles
 * and configuration; every token in it stops. 403 while it is enabled.
 */
export async function deleteDomain(identity: Identity, row: ProjectRow): Promise<void> {
  if (bool(row.enabled)) throw new Forbidden('Cannot delete a domain that is enabled, please disable it first.');
  await identity.db.transaction().execute(async (trx) => {
    const projects = await trx.selectFrom('project').select('id').where('domain_id', '=', row.id).where('is_domain', '=', 0).execute();
    for (const p of projects) await deleteProjectData(trx, p.id);
    const users = await trx.selectFrom('user').select('id').where('domain_id', '=', row.id).execute();
    const groups = await trx.selectFrom('group').select('id').where('domain_id', '=', row.id).execute();
    const actors = [...users.map((u) => u.id), ...groups.map((g) => g.id)];
    if (actors.length) await trx.deleteFrom('assignment').where('actor_id', 'in', actors).execute();
    if (users.length) {
      const userIds = users.map((u) => u.id);
      await trx.deleteFrom('application_credential').where('user_id', 'in', userIds).execute();
      await trx.deleteFrom('credential').where('user_id', 'in', userIds).execute();
    }
    await trx.deleteFrom('user').where('domain_id', '=', row.id).execute();
    await trx.deleteFrom('group').where('domain_id', '=', row.id).execute();
    const roles = await trx.selectFrom('role').select('id').where('domain_id', '=', row.id).execute();
    if (roles.length) await trx.deleteFrom('assignment').where('role_id', 'in', roles.map((r) => r.id)).execute();
    await trx.deleteFrom('role').where('domain_id', '=', row.id).execute();
    await trx.deleteFrom('domain_config').where('domain_id', '=', row.id).execute();
    await trx.deleteFrom('assignment').where('target_id', '=', row.id).execute();
    await trx.deleteFrom('project_tag').where('project_id', '=', row.id).execute();
    await trx.deleteFrom('project').where('id', '=', row.id).execute();
  });
  await revoke(identity.db, { domain_id: row.id });
  identity.changed();
  identity.notify('domain', 'deleted', row.id);
}
