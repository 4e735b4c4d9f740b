import type { FastifyInstance } from 'fastify';
import { isUniqueViolation } from '../../core/db/database.js';
import { Conflict, Forbidden, NotFound } from '../../core/errors.js';
import { newId, splitExtra } from '../common.js';
import { GLOBAL_ROLE, type RoleRow } from '../db/schema.js';
import { authorize, collectionLinks, selfLink, type Identity } from '../identity.js';
import { revoke } from '../revocation.js';
import { impliedRoleMap } from '../roles.js';
import { roleRef, roleView } from '../views.js';
import { registerGrants } from './grants.js';
import { getDomain, getRole } from './lookup.js';
import { description, entityBody, name255, options } from './schemas.js';

const KNOWN = ['id', 'name', 'domain_id', 'description', 'options', 'links'];
/** Roles no rule may imply (Keystone's `prohibited_implied_role`). */
const PROHIBITED_IMPLIED = ['admin'];

/** Roles (global and domain-specific), implied roles, and (via grants.ts) assignments. */
export function registerRoles(app: FastifyInstance, identity: Identity): void {
  const db = identity.db;
  const conflict = (name: string): Conflict => new Conflict(`Conflict occurred attempting to store role - Duplicate entry found with name ${name}.`);

  app.post<{ Body: { role: Record<string, unknown> & { name: string; domain_id?: string | null; description?: string | null; options?: Record<string, unknown> } } }>(
    '/v3/roles',
    { schema: { body: entityBody('role', { name: name255, domain_id: { type: ['string', 'null'] }, description, options }, ['name']) } },
    async (req, reply) => {
      const r = req.body.role;
      authorize(identity, req, r.domain_id ? 'identity:create_domain_role' : 'identity:create_role', { target: { role: { domain_id: r.domain_id ?? null } } });
      if (r.domain_id) await getDomain(identity, r.domain_id);
      const row: RoleRow = { id: newId(), name: r.name, domain_id: r.domain_id ?? GLOBAL_ROLE, description: r.description ?? null, options: JSON.stringify(r.options ?? {}), extra: JSON.stringify(splitExtra(r, KNOWN)) };
      try {
        await db.insertInto('role').values(row).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(r.name);
        throw err;
      }
      identity.changed();
      identity.notify('role', 'created', row.id);
      reply.code(201);
      return { role: roleView(identity, row) };
    },
  );

  app.get<{ Querystring: { name?: string; domain_id?: string } }>('/v3/roles', async (req) => {
    authorize(identity, req, req.query.domain_id ? 'identity:list_domain_roles' : 'identity:list_roles', req.query.domain_id ? { target: { domain_id: req.query.domain_id } } : {});
    let sel = db.selectFrom('role').selectAll().where('domain_id', '=', req.query.domain_id ?? GLOBAL_ROLE);
    if (req.query.name !== undefined) sel = sel.where('name', '=', req.query.name);
    const rows = await sel.orderBy('name').execute();
    return { roles: rows.map((r) => roleView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { id: string } }>('/v3/roles/:id', async (req) => {
    const row = await getRole(identity, req.params.id);
    authorize(identity, req, row.domain_id === GLOBAL_ROLE ? 'identity:get_role' : 'identity:get_domain_role', { target: { role: { id: row.id } } });
    return { role: roleView(identity, row) };
  });

  app.patch<{ Params: { id: string }; Body: { role: Record<string, unknown> & { name?: string; description?: string | null; domain_id?: string | null; options?: Record<string, unknown> } } }>(
    '/v3/roles/:id',
    { schema: { body: entityBody('role', { name: name255, description, options, domain_id: { type: ['string', 'null'] } }) } },
    async (req) => {
      const row = await getRole(identity, req.params.id);
      authorize(identity, req, row.domain_id === GLOBAL_ROLE ? 'identity:update_role' : 'identity:update_domain_role', { target: { role: { id: row.id } } });
      const r = req.body.role;
      const current = row.domain_id === GLOBAL_ROLE ? null : row.domain_id;
      if (r.domain_id !== undefined && r.domain_id !== current) throw new Forbidden('Update of `domain_id` of a role is not allowed.');
      const updated: RoleRow = {
        ...row,
        name: r.name ?? row.name,
        description: r.description === undefined ? row.description : r.description,
        options: r.options ? JSON.stringify({ ...JSON.parse(row.options), ...r.options }) : row.options,
        extra: JSON.stringify({ ...JSON.parse(row.extra), ...splitExtra(r, KNOWN) }),
      };
      try {
        await db.updateTable('role').set({ name: updated.name, description: updated.description, options: updated.options, extra: updated.extra }).where('id', '=', row.id).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(updated.name);
        throw err;
      }
      identity.changed();
      identity.notify('role', 'updated', row.id);
      return { role: roleView(identity, updated) };
    },
  );

  app.delete<{ Params: { id: string } }>('/v3/roles/:id', async (req, reply) => {
    const row = await getRole(identity, req.params.id);
    authorize(identity, req, row.domain_id === GLOBAL_ROLE ? 'identity:delete_role' : 'identity:delete_domain_role', { target: { role: { id: row.id } } });
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('assignment').where('role_id', '=', row.id).execute();
      await trx.deleteFrom('implied_role').where((eb) => eb.or([eb('prior_role_id', '=', row.id), eb('implied_role_id', '=', row.id)])).execute();
      await trx.deleteFrom('application_credential_role').where('role_id', '=', row.id).execute();
      await trx.deleteFrom('role').where('id', '=', row.id).execute();
    });
    await revoke(db, { role_id: row.id });
    identity.changed();
    identity.notify('role', 'deleted', row.id);
    return reply.code(204).send();
  });

  registerImpliedRoles(app, identity);
  registerGrants(app, identity);
}

function registerImpliedRoles(app: FastifyInstance, identity: Identity): void {
  const db = identity.db;
  const inference = (prior: RoleRow, implied: RoleRow): Record<string, unknown> => ({
    role_inference: { prior_role: roleRef(identity, prior), implies: roleRef(identity, implied) },
    links: selfLink(identity, `roles/${prior.id}/implies/${implied.id}`),
  });
  const rule = async (priorId: string, impliedId: string): Promise<{ prior: RoleRow; implied: RoleRow }> => {
    const prior = await getRole(identity, priorId);
    const implied = await getRole(identity, impliedId);
    const found = await db.selectFrom('implied_role').select('prior_role_id').where('prior_role_id', '=', prior.id).where('implied_role_id', '=', implied.id).executeTakeFirst();
    if (!found) throw new NotFound(`${prior.id} does not imply ${implied.id}.`);
    return { prior, implied };
  };

  app.put<{ Params: { prior: string; implied: string } }>('/v3/roles/:prior/implies/:implied', async (req, reply) => {
    authorize(identity, req, 'identity:create_implied_role');
    const prior = await getRole(identity, req.params.prior);
    const implied = await getRole(identity, req.params.implied);
    if (prior.domain_id === GLOBAL_ROLE && implied.domain_id !== GLOBAL_ROLE) throw new Forbidden(`A global role cannot imply the domain-specific role ${implied.id}.`);
    if (PROHIBITED_IMPLIED.includes(implied.name) && implied.domain_id === GLOBAL_ROLE) throw new Forbidden(`${implied.name} may not be an implied role.`);
    const graph = await impliedRoleMap(db);
    const reachable = new Set<string>();
    const stack = [implied.id];
    while (stack.length) {
      const id = stack.pop();
      if (id === undefined || reachable.has(id)) continue;
      reachable.add(id);
      stack.push(...(graph.get(id) ?? []));
    }
    if (reachable.has(prior.id)) throw new Forbidden(`Implying ${implied.id} from ${prior.id} would make a cycle of implied roles.`);
    const exists = await db.selectFrom('implied_role').select('prior_role_id').where('prior_role_id', '=', prior.id).where('implied_role_id', '=', implied.id).executeTakeFirst();
    if (!exists) await db.insertInto('implied_role').values({ prior_role_id: prior.id, implied_role_id: implied.id }).execute();
    identity.changed();
    reply.code(201);
    return inference(prior, implied);
  });

  app.get<{ Params: { prior: string; implied: string } }>('/v3/roles/:prior/implies/:implied', { exposeHeadRoute: false }, async (req) => {
    authorize(identity, req, 'identity:get_implied_role');
    const { prior, implied } = await rule(req.params.prior, req.params.implied);
    return inference(prior, implied);
  });

  app.head<{ Params: { prior: string; implied: string } }>('/v3/roles/:prior/implies/:implied', async (req, reply) => {
    authorize(identity, req, 'identity:check_implied_role');
    await rule(req.params.prior, req.params.implied);
    return reply.code(204).send();
  });

  app.delete<{ Params: { prior: string; implied: string } }>('/v3/roles/:prior/implies/:implied', async (req, reply) => {
    authorize(identity, req, 'identity:delete_implied_role');
    const { prior, implied } = await rule(req.params.prior, req.params.implied);
    await db.deleteFrom('implied_role').where('prior_role_id', '=', prior.id).where('implied_role_id', '=', implied.id).execute();
    await revoke(db, { role_id: prior.id });
    identity.changed();
    return reply.code(204).send();
  });

  app.get<{ Params: { prior: string } }>('/v3/roles/:prior/implies', async (req) => {
    authorize(identity, req, 'identity:list_implied_roles');
    const prior = await getRole(identity, req.params.prior);
    const ids = (await impliedRoleMap(db)).get(prior.id) ?? [];
    const implied = ids.length ? await db.selectFrom('role').selectAll().where('id', 'in', ids).execute() : [];
    return { role_inference: { prior_role: roleRef(identity, prior), implies: implied.map((r) => roleRef(identity, r)) }, links: selfLink(identity, `roles/${prior.id}/implies`) };
  });

  app.get('/v3/role_inferences', async (req) => {
    authorize(identity, req, 'identity:list_role_inference_rules');
    const graph = await impliedRoleMap(db);
    const roles = new Map((await db.selectFrom('role').selectAll().execute()).map((r) => [r.id, r]));
    const out = [];
    for (const [priorId, impliedIds] of graph) {
      const prior = roles.get(priorId);
      if (!prior) continue;
      out.push({
        prior_role: roleRef(identity, prior),
        implies: impliedIds.flatMap((id) => {
          const r = roles.get(id);
          return r ? [roleRef(identity, r)] : [];
        }),
      });
    }
    return { role_inferences: out, links: collectionLinks(identity, req) };
  });
}
