import type { FastifyInstance } from 'fastify';
import { isUniqueViolation } from '../../core/db/database.js';
import { BadRequest, Conflict, Unauthorized } from '../../core/errors.js';
import { accessibleProjects } from '../access.js';
import { bool, isoNow, newId, queryBool, splitExtra } from '../common.js';
import type { UserRow } from '../db/schema.js';
import { authorize, collectionLinks, type Identity } from '../identity.js';
import { revoke } from '../revocation.js';
import { groupView, projectView, userView } from '../views.js';
import { defaultDomainOf, getDomain, getUser } from './lookup.js';
import { description, enabled, entityBody, name255, options } from './schemas.js';

const KNOWN = ['id', 'name', 'domain_id', 'enabled', 'default_project_id', 'password', 'options', 'links', 'password_expires_at'];

type UserBody = Record<string, unknown> & { name: string; domain_id?: string; password?: string | null; enabled?: boolean; default_project_id?: string | null; options?: Record<string, unknown> };

/** Users, passwords, and a user's groups and projects (`/v3/users...`). */
export function registerUsers(app: FastifyInstance, identity: Identity): void {
  const db = identity.db;
  const maxPassword = identity.config.identity.max_password_length;
  const password = { type: ['string', 'null'], maxLength: maxPassword } as const;

  app.post<{ Body: { user: UserBody } }>(
    '/v3/users',
    { schema: { body: entityBody('user', { name: name255, domain_id: { type: 'string' }, password, enabled, default_project_id: { type: ['string', 'null'] }, description, options }, ['name']) } },
    async (req, reply) => {
      const u = req.body.user;
      const domainId = u.domain_id ?? defaultDomainOf(req.ctx);
      authorize(identity, req, 'identity:create_user', { target: { user: { domain_id: domainId } } });
      await getDomain(identity, domainId);
      const now = isoNow();
      const row: UserRow = {
        id: newId(),
        name: u.name,
        domain_id: domainId,
        enabled: u.enabled === false ? 0 : 1,
        default_project_id: u.default_project_id ?? null,
        password_hash: typeof u.password === 'string' ? await identity.hasher.hash(u.password) : null,
        password_created_at: typeof u.password === 'string' ? now : null,
        password_expires_at: null,
        extra: JSON.stringify(splitExtra(u, KNOWN)),
        options: JSON.stringify(u.options ?? {}),
        created_at: now,
        last_active_at: null,
        failed_auth_count: 0,
        failed_auth_at: null,
      };
      try {
        await db.insertInto('user').values(row).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store user - Duplicate entry found with name ${u.name} at domain ID ${domainId}.`);
        throw err;
      }
      identity.changed();
      identity.notify('user', 'created', row.id);
      reply.code(201);
      return { user: userView(identity, row) };
    },
  );

  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/users', async (req) => {
    const q = req.query;
    authorize(identity, req, 'identity:list_users', q.domain_id ? { target: { domain_id: q.domain_id }, domain_id: q.domain_id } : {});
    let sel = db.selectFrom('user').selectAll();
    if (q.name !== undefined) sel = sel.where('name', '=', q.name);
    if (q.domain_id !== undefined) sel = sel.where('domain_id', '=', q.domain_id);
    const en = queryBool(q.enabled);
    if (en !== undefined) sel = sel.where('enabled', '=', en ? 1 : 0);
    const rows = await sel.orderBy('name').execute();
    return { users: rows.map((r) => userView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { id: string } }>('/v3/users/:id', async (req) => {
    const row = await getUser(identity, req.params.id).catch((err: unknown) => {
      authorize(identity, req, 'identity:get_user', { target: { user: { id: req.params.id } } });
      throw err;
    });
    authorize(identity, req, 'identity:get_user', { target: { user: { id: row.id, domain_id: row.domain_id } } });
    return { user: userView(identity, row) };
  });

  app.patch<{ Params: { id: string }; Body: { user: Partial<UserBody> } }>(
    '/v3/users/:id',
    { schema: { body: entityBody('user', { name: name255, domain_id: { type: 'string' }, password, enabled, default_project_id: { type: ['string', 'null'] }, description, options }) } },
    async (req) => {
      authorize(identity, req, 'identity:update_user', { target: { user: { id: req.params.id } } });
      const row = await getUser(identity, req.params.id);
      const u = req.body.user;
      if (u.domain_id !== undefined && u.domain_id !== row.domain_id) throw new BadRequest('Update of `domain_id` is not allowed.');
      const now = isoNow();
      const newPassword = typeof u.password === 'string' ? await identity.hasher.hash(u.password) : undefined;
      const updated: UserRow = {
        ...row,
        name: u.name ?? row.name,
        enabled: u.enabled === undefined ? row.enabled : u.enabled ? 1 : 0,
        default_project_id: u.default_project_id === undefined ? row.default_project_id : u.default_project_id,
        password_hash: newPassword ?? (u.password === null ? null : row.password_hash),
        password_created_at: newPassword ? now : row.password_created_at,
        extra: JSON.stringify({ ...JSON.parse(row.extra), ...splitExtra(u, KNOWN) }),
        options: u.options ? JSON.stringify({ ...JSON.parse(row.options), ...u.options }) : row.options,
      };
      try {
        await db.transaction().execute(async (trx) => {
          const { id: _id, ...values } = updated;
          await trx.updateTable('user').set(values).where('id', '=', row.id).execute();
          if (newPassword) await trx.insertInto('password_history').values({ id: newId(), user_id: row.id, hash: newPassword, created_at: now }).execute();
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store user - Duplicate entry found with name ${updated.name} at domain ID ${row.domain_id}.`);
        throw err;
      }
      if ((bool(row.enabled) && !bool(updated.enabled)) || u.password !== undefined) {
        await revoke(db, { user_id: row.id });
        if (!bool(updated.enabled)) identity.notify('user', 'disabled', row.id);
      }
      identity.changed();
      identity.notify('user', 'updated', row.id);
      return { user: userView(identity, updated) };
    },
  );

  app.delete<{ Params: { id: string } }>('/v3/users/:id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_user', { target: { user: { id: req.params.id } } });
    const row = await getUser(identity, req.params.id);
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('assignment').where('actor_id', '=', row.id).execute();
      await trx.deleteFrom('application_credential').where('user_id', '=', row.id).execute();
      await trx.deleteFrom('credential').where('user_id', '=', row.id).execute();
      await trx.deleteFrom('user').where('id', '=', row.id).execute();
    });
    await revoke(db, { user_id: row.id });
    identity.changed();
    identity.notify('user', 'deleted', row.id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string }; Body: { user: { password: string; original_password: string } } }>(
    '/v3/users/:id/password',
    {
      schema: {
        body: {
          type: 'object',
          required: ['user'],
          properties: { user: { type: 'object', required: ['password', 'original_password'], properties: { password: { type: 'string', maxLength: maxPassword }, original_password: { type: 'string', maxLength: maxPassword } } } },
        },
      },
    },
    async (req, reply) => {
      authorize(identity, req, 'identity:change_password', { target: { user: { id: req.params.id } } });
      const row = await getUser(identity, req.params.id);
      if (!(await identity.hasher.verify(row.password_hash, req.body.user.original_password))) {
        throw new Unauthorized('The request you have made requires authentication.');
      }
      const hash = await identity.hasher.hash(req.body.user.password);
      const now = isoNow();
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('user').set({ password_hash: hash, password_created_at: now }).where('id', '=', row.id).execute();
        await trx.insertInto('password_history').values({ id: newId(), user_id: row.id, hash, created_at: now }).execute();
      });
      await revoke(db, { user_id: row.id });
      identity.changed();
      identity.notify('user', 'updated', row.id);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: { name?: string } }>('/v3/users/:id/groups', async (req) => {
    const row = await getUser(identity, req.params.id);
    authorize(identity, req, 'identity:list_groups_for_user', { user_id: row.id, target: { user: { id: row.id, domain_id: row.domain_id } } });
    let sel = db.selectFrom('group').innerJoin('user_group_membership', 'user_group_membership.group_id', 'group.id').selectAll('group').where('user_group_membership.user_id', '=', row.id);
    if (req.query.name !== undefined) sel = sel.where('group.name', '=', req.query.name);
    const groups = await sel.orderBy('group.name').execute();
    return { groups: groups.map((g) => groupView(identity, g)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { id: string }; Querystring: { name?: string; enabled?: string; domain_id?: string } }>('/v3/users/:id/projects', async (req) => {
    const row = await getUser(identity, req.params.id);
    authorize(identity, req, 'identity:list_user_projects', { target: { user: { id: row.id, domain_id: row.domain_id } } });
    const en = queryBool(req.query.enabled);
    const projects = (await accessibleProjects(identity.db, row.id, { includeDisabled: true })).filter(
      (p) =>
        (req.query.name === undefined || p.name === req.query.name) &&
        (req.query.domain_id === undefined || p.domain_id === req.query.domain_id) &&
        (en === undefined || bool(p.enabled) === en),
    );
    return { projects: projects.map((p) => projectView(identity, p)), links: collectionLinks(identity, req) };
  });
}
