import type { FastifyInstance } from 'fastify';
import { isUniqueViolation } from '../../core/db/database.js';
import { Conflict, NotFound } from '../../core/errors.js';
import { splitExtra, newId } from '../common.js';
import { authorize, collectionLinks, type Identity } from '../identity.js';
import { revoke } from '../revocation.js';
import { groupView, userView } from '../views.js';
import { defaultDomainOf, getDomain, getGroup, getUser } from './lookup.js';
import { description, entityBody, name64 } from './schemas.js';

const KNOWN = ['id', 'name', 'domain_id', 'description', 'links'];

/** Groups and their members (`/v3/groups...`). */
export function registerGroups(app: FastifyInstance, identity: Identity): void {
  const db = identity.db;
  const target = (g: { id: string; domain_id: string }): Record<string, unknown> => ({ target: { group: { id: g.id, domain_id: g.domain_id } } });

  app.post<{ Body: { group: Record<string, unknown> & { name: string; domain_id?: string; description?: string | null } } }>(
    '/v3/groups',
    { schema: { body: entityBody('group', { name: name64, domain_id: { type: 'string' }, description }, ['name']) } },
    async (req, reply) => {
      const g = req.body.group;
      const domainId = g.domain_id ?? defaultDomainOf(req.ctx);
      authorize(identity, req, 'identity:create_group', { target: { group: { domain_id: domainId } } });
      await getDomain(identity, domainId);
      const row = { id: newId(), name: g.name, domain_id: domainId, description: g.description ?? '', extra: JSON.stringify(splitExtra(g, KNOWN)) };
      try {
        await db.insertInto('group').values(row).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store group - Duplicate entry found with name ${g.name}.`);
        throw err;
      }
      identity.changed();
      identity.notify('group', 'created', row.id);
      reply.code(201);
      return { group: groupView(identity, row) };
    },
  );

  app.get<{ Querystring: { name?: string; domain_id?: string } }>('/v3/groups', async (req) => {
    authorize(identity, req, 'identity:list_groups', req.query.domain_id ? { target: { group: { domain_id: req.query.domain_id } } } : {});
    let sel = db.selectFrom('group').selectAll();
    if (req.query.name !== undefined) sel = sel.where('name', '=', req.query.name);
    if (req.query.domain_id !== undefined) sel = sel.where('domain_id', '=', req.query.domain_id);
    const rows = await sel.orderBy('name').execute();
    return { groups: rows.map((r) => groupView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { id: string } }>('/v3/groups/:id', async (req) => {
    const row = await getGroup(identity, req.params.id);
    authorize(identity, req, 'identity:get_group', target(row));
    return { group: groupView(identity, row) };
  });

  app.patch<{ Params: { id: string }; Body: { group: Record<string, unknown> & { name?: string; description?: string | null } } }>(
    '/v3/groups/:id',
    { schema: { body: entityBody('group', { name: name64, description, domain_id: { type: 'string' } }) } },
    async (req) => {
      const row = await getGroup(identity, req.params.id);
      authorize(identity, req, 'identity:update_group', target(row));
      const g = req.body.group;
      const updated = {
        ...row,
        name: g.name ?? row.name,
        description: g.description === undefined ? row.description : g.description,
        extra: JSON.stringify({ ...JSON.parse(row.extra), ...splitExtra(g, KNOWN) }),
      };
      try {
        await db.updateTable('group').set({ name: updated.name, description: updated.description, extra: updated.extra }).where('id', '=', row.id).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store group - Duplicate entry found with name ${updated.name}.`);
        throw err;
      }
      identity.changed();
      identity.notify('group', 'updated', row.id);
      return { group: groupView(identity, updated) };
    },
  );

  app.delete<{ Params: { id: string } }>('/v3/groups/:id', async (req, reply) => {
    const row = await getGroup(identity, req.params.id);
    authorize(identity, req, 'identity:delete_group', target(row));
    const members = await db.selectFrom('user_group_membership').select('user_id').where('group_id', '=', row.id).execute();
    const hadRoles = await db.selectFrom('assignment').select('role_id').where('actor_id', '=', row.id).executeTakeFirst();
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('assignment').where('actor_id', '=', row.id).execute();
      await trx.deleteFrom('user_group_membership').where('group_id', '=', row.id).execute();
      await trx.deleteFrom('group').where('id', '=', row.id).execute();
    });
    if (hadRoles) for (const m of members) await revoke(db, { user_id: m.user_id });
    identity.changed();
    identity.notify('group', 'deleted', row.id);
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string }; Querystring: { name?: string; enabled?: string } }>('/v3/groups/:id/users', async (req) => {
    const row = await getGroup(identity, req.params.id);
    authorize(identity, req, 'identity:list_users_in_group', target(row));
    const users = await db
      .selectFrom('user')
      .innerJoin('user_group_membership', 'user_group_membership.user_id', 'user.id')
      .selectAll('user')
      .where('user_group_membership.group_id', '=', row.id)
      .orderBy('user.name')
      .execute();
    return { users: users.map((u) => userView(identity, u)), links: collectionLinks(identity, req) };
  });

  app.put<{ Params: { id: string; userId: string } }>('/v3/groups/:id/users/:userId', async (req, reply) => {
    const row = await getGroup(identity, req.params.id);
    authorize(identity, req, 'identity:add_user_to_group', target(row));
    const user = await getUser(identity, req.params.userId);
    const exists = await db.selectFrom('user_group_membership').select('user_id').where('group_id', '=', row.id).where('user_id', '=', user.id).executeTakeFirst();
    if (!exists) await db.insertInto('user_group_membership').values({ group_id: row.id, user_id: user.id }).execute();
    identity.changed();
    return reply.code(204).send();
  });

  app.head<{ Params: { id: string; userId: string } }>('/v3/groups/:id/users/:userId', async (req, reply) => checkMember(req.params.id, req.params.userId, req, reply));
  app.get<{ Params: { id: string; userId: string } }>('/v3/groups/:id/users/:userId', { exposeHeadRoute: false }, async (req, reply) => checkMember(req.params.id, req.params.userId, req, reply));

  async function checkMember(groupId: string, userId: string, req: Parameters<typeof authorize>[1], reply: { code(n: number): { send(): unknown } }): Promise<unknown> {
    const row = await getGroup(identity, groupId);
    authorize(identity, req, 'identity:check_user_in_group', target(row));
    const user = await getUser(identity, userId);
    const exists = await db.selectFrom('user_group_membership').select('user_id').where('group_id', '=', row.id).where('user_id', '=', user.id).executeTakeFirst();
    if (!exists) throw new NotFound(`User '${user.id}' not found in group '${row.id}'.`);
    return reply.code(204).send();
  }

  app.delete<{ Params: { id: string; userId: string } }>('/v3/groups/:id/users/:userId', async (req, reply) => {
    const row = await getGroup(identity, req.params.id);
    authorize(identity, req, 'identity:remove_user_from_group', target(row));
    const user = await getUser(identity, req.params.userId);
    const res = await db.deleteFrom('user_group_membership').where('group_id', '=', row.id).where('user_id', '=', user.id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new NotFound(`User '${user.id}' not found in group '${row.id}'.`);
    await revoke(db, { user_id: user.id });
    identity.changed();
    return reply.code(204).send();
  });
}
