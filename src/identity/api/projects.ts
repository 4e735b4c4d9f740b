import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import { isUniqueViolation } from '../../core/db/database.js';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../core/errors.js';
import { bool, isoNow, newId, queryBool, splitExtra } from '../common.js';
import { ROOT_DOMAIN, type IdentitySchema, type ProjectRow } from '../db/schema.js';
import { authorize, collectionLinks, type Identity } from '../identity.js';
import { revoke } from '../revocation.js';
import { projectView } from '../views.js';
import { defaultDomainOf, getDomain, getProject, tagsOf } from './lookup.js';
import { deleteDomain } from './domains.js';
import { description, enabled, entityBody, name64, options, tags } from './schemas.js';

const KNOWN = ['id', 'name', 'description', 'enabled', 'domain_id', 'parent_id', 'is_domain', 'tags', 'options', 'links'];
/** Keystone's `max_project_tree_depth`. */
const MAX_DEPTH = 5;

type ProjectBody = Record<string, unknown> & { name: string; description?: string | null; enabled?: boolean; domain_id?: string | null; parent_id?: string | null; is_domain?: boolean; tags?: string[] };

/** Removes what belongs to a project (assignments, tags, endpoint filters, credentials scoped to it). */
export async function deleteProjectData(trx: Transaction<IdentitySchema> | Kysely<IdentitySchema>, id: string): Promise<void> {
  await trx.deleteFrom('assignment').where('target_id', '=', id).execute();
  await trx.deleteFrom('project_tag').where('project_id', '=', id).execute();
  await trx.deleteFrom('project_endpoint').where('project_id', '=', id).execute();
  await trx.deleteFrom('project_endpoint_group').where('project_id', '=', id).execute();
  await trx.deleteFrom('application_credential').where('project_id', '=', id).execute();
  await trx.deleteFrom('project').where('id', '=', id).execute();
}

async function depthOf(identity: Identity, id: string): Promise<number> {
  let depth = 1;
  let current = await identity.db.selectFrom('project').select(['parent_id', 'is_domain']).where('id', '=', id).executeTakeFirst();
  while (current && current.is_domain === 0 && current.parent_id) {
    const parent = await identity.db.selectFrom('project').select(['parent_id', 'is_domain']).where('id', '=', current.parent_id).executeTakeFirst();
    if (!parent || parent.is_domain === 1) break;
    depth += 1;
    current = parent;
  }
  return depth;
}

async function children(identity: Identity, id: string): Promise<ProjectRow[]> {
  return identity.db.selectFrom('project').selectAll().where('parent_id', '=', id).where('is_domain', '=', 0).execute();
}

async function subtree(identity: Identity, id: string): Promise<ProjectRow[]> {
  const out: ProjectRow[] = [];
  const stack = [id];
  while (stack.length) {
    const next = stack.pop();
    if (next === undefined) break;
    for (const c of await children(identity, next)) {
      out.push(c);
      stack.push(c.id);
    }
  }
  return out;
}

async function parents(identity: Identity, row: ProjectRow): Promise<ProjectRow[]> {
  const out: ProjectRow[] = [];
  let parentId = row.parent_id;
  while (parentId && parentId !== row.domain_id) {
    const p = await identity.db.selectFrom('project').selectAll().where('id', '=', parentId).where('is_domain', '=', 0).executeTakeFirst();
    if (!p) break;
    out.push(p);
    parentId = p.parent_id;
  }
  return out;
}

async function createProject(identity: Identity, req: FastifyRequest, p: ProjectBody): Promise<ProjectRow> {
  const isDomain = p.is_domain === true;
  let domainId = p.domain_id ?? null;
  let parentId = p.parent_id ?? null;
  if (isDomain) {
    if (parentId) throw new BadRequest('A project acting as a domain cannot have a parent.');
    domainId = ROOT_DOMAIN;
  } else {
    if (parentId) {
      const parent = await identity.db.selectFrom('project').selectAll().where('id', '=', parentId).executeTakeFirst();
      if (!parent) throw new NotFound(`Could not find project: ${parentId}.`);
      const parentDomain = parent.is_domain === 1 ? parent.id : parent.domain_id;
      if (domainId && domainId !== parentDomain) throw new BadRequest('The project must be in the same domain as its parent.');
      domainId = parentDomain;
      if (parent.is_domain === 0 && (await depthOf(identity, parent.id)) + 1 > MAX_DEPTH) {
        throw new Forbidden(`Max hierarchy depth reached for ${parent.id} branch.`);
      }
    }
    domainId ??= defaultDomainOf(req.ctx);
    await getDomain(identity, domainId).catch(() => {
      throw new NotFound(`Could not find domain: ${domainId}.`);
    });
    parentId ??= domainId;
  }
  const row: ProjectRow = {
    id: newId(),
    name: p.name,
    description: p.description ?? '',
    enabled: p.enabled === false ? 0 : 1,
    domain_id: domainId,
    parent_id: isDomain ? null : parentId,
    is_domain: isDomain ? 1 : 0,
    extra: JSON.stringify(splitExtra(p, KNOWN)),
    created_at: isoNow(),
  };
  try {
    await identity.db.transaction().execute(async (trx) => {
      await trx.insertInto('project').values(row).execute();
      if (p.tags?.length) await trx.insertInto('project_tag').values(p.tags.map((name) => ({ project_id: row.id, name }))).execute();
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : ${p.name}.`);
    throw err;
  }
  return row;
}

/** Projects, their hierarchy and tags (`/v3/projects...`). */
export function registerProjects(app: FastifyInstance, identity: Identity): void {
  const db = identity.db;
  const view = async (row: ProjectRow): Promise<Record<string, unknown>> => projectView(identity, row, (await tagsOf(identity, [row.id])).get(row.id) ?? []);

  app.post<{ Body: { project: ProjectBody } }>(
    '/v3/projects',
    { schema: { body: entityBody('project', { name: name64, description, enabled, domain_id: { type: ['string', 'null'] }, parent_id: { type: ['string', 'null'] }, is_domain: { type: 'boolean' }, tags, options }, ['name']) } },
    async (req, reply) => {
      const p = req.body.project;
      authorize(identity, req, 'identity:create_project', { target: { project: { domain_id: p.domain_id ?? defaultDomainOf(req.ctx) } } });
      const row = await createProject(identity, req, p);
      identity.changed();
      identity.notify('project', 'created', row.id);
      reply.code(201);
      return { project: projectView(identity, row, p.tags ?? []) };
    },
  );

  app.get<{ Querystring: Record<string, string | undefined> }>('/v3/projects', async (req) => {
    const q = req.query;
    authorize(identity, req, 'identity:list_projects', q.domain_id ? { target: { domain_id: q.domain_id }, domain_id: q.domain_id } : {});
    let sel = db.selectFrom('project').selectAll();
    const isDomain = queryBool(q.is_domain);
    sel = sel.where('is_domain', '=', isDomain ? 1 : 0);
    if (q.name !== undefined) sel = sel.where('name', '=', q.name);
    if (q.domain_id !== undefined) sel = sel.where('domain_id', '=', q.domain_id);
    if (q.parent_id !== undefined) sel = sel.where('parent_id', '=', q.parent_id);
    const en = queryBool(q.enabled);
    if (en !== undefined) sel = sel.where('enabled', '=', en ? 1 : 0);
    const rows = await sel.orderBy('name').execute();
    const tagMap = await tagsOf(identity, rows.map((r) => r.id));
    const filtered = rows.filter((r) => matchesTags(tagMap.get(r.id) ?? [], q));
    return { projects: filtered.map((r) => projectView(identity, r, tagMap.get(r.id))), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>('/v3/projects/:id', async (req) => {
    const row = await getProject(identity, req.params.id, { actingAsDomain: true }).catch((err: unknown) => {
      authorize(identity, req, 'identity:get_project', { target: { project: { id: req.params.id } } });
      throw err;
    });
    authorize(identity, req, 'identity:get_project', { target: { project: { id: row.id, domain_id: row.domain_id } } });
    const body = await view(row);
    const q = req.query;
    if (q.parents_as_list !== undefined) body.parents = await Promise.all((await parents(identity, row)).map(async (p) => ({ project: await view(p) })));
    if (q.subtree_as_list !== undefined) body.subtree = await Promise.all((await subtree(identity, row.id)).map(async (p) => ({ project: await view(p) })));
    if (q.parents_as_ids !== undefined) body.parents = nestIds((await parents(identity, row)).map((p) => p.id));
    if (q.subtree_as_ids !== undefined) body.subtree = await subtreeIds(identity, row.id);
    return { project: body };
  });

  app.patch<{ Params: { id: string }; Body: { project: Partial<ProjectBody> } }>(
    '/v3/projects/:id',
    { schema: { body: entityBody('project', { name: name64, description, enabled, tags, options, domain_id: { type: ['string', 'null'] }, parent_id: { type: ['string', 'null'] }, is_domain: { type: 'boolean' } }) } },
    async (req) => {
      authorize(identity, req, 'identity:update_project', { target: { project: { id: req.params.id } } });
      const row = await getProject(identity, req.params.id, { actingAsDomain: true });
      const p = req.body.project;
      if (p.domain_id !== undefined && p.domain_id !== row.domain_id) throw new BadRequest('Update of `domain_id` is not allowed.');
      if (p.parent_id !== undefined && p.parent_id !== (row.parent_id ?? null)) throw new BadRequest('Update of `parent_id` is not allowed.');
      if (p.is_domain !== undefined && p.is_domain !== bool(row.is_domain)) throw new BadRequest('Update of `is_domain` is not allowed.');
      const enabling = p.enabled === true && !bool(row.enabled);
      const disabling = p.enabled === false && bool(row.enabled);
      if (enabling && (await parents(identity, row)).some((x) => !bool(x.enabled))) throw new Forbidden(`Cannot enable project ${row.id} since it has disabled parents.`);
      if (disabling && row.is_domain === 0 && (await subtree(identity, row.id)).some((x) => bool(x.enabled))) throw new Forbidden(`Cannot disable project ${row.id} since its subtree contains enabled projects.`);
      const updated: ProjectRow = {
        ...row,
        name: p.name ?? row.name,
        description: p.description === undefined ? row.description : (p.description ?? ''),
        enabled: p.enabled === undefined ? row.enabled : p.enabled ? 1 : 0,
        extra: JSON.stringify({ ...JSON.parse(row.extra), ...splitExtra(p, KNOWN) }),
      };
      try {
        await db.transaction().execute(async (trx) => {
          await trx.updateTable('project').set({ name: updated.name, description: updated.description, enabled: updated.enabled, extra: updated.extra }).where('id', '=', row.id).execute();
          if (p.tags) await replaceTags(trx, row.id, p.tags);
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new Conflict(`Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : ${updated.name}.`);
        throw err;
      }
      if (disabling) {
        await revoke(db, row.is_domain ? { domain_id: row.id } : { project_id: row.id });
        identity.notify('project', 'disabled', row.id);
      }
      identity.changed();
      identity.notify('project', 'updated', row.id);
      return { project: await view(updated) };
    },
  );

  app.delete<{ Params: { id: string } }>('/v3/projects/:id', async (req, reply) => {
    authorize(identity, req, 'identity:delete_project', { target: { project: { id: req.params.id } } });
    const row = await getProject(identity, req.params.id, { actingAsDomain: true });
    if (row.is_domain === 1) {
      await deleteDomain(identity, row);
      return reply.code(204).send();
    }
    if ((await children(identity, row.id)).length > 0) throw new Forbidden(`Cannot delete the project ${row.id} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree.`);
    await db.transaction().execute((trx) => deleteProjectData(trx, row.id));
    await revoke(db, { project_id: row.id });
    identity.changed();
    identity.notify('project', 'deleted', row.id);
    return reply.code(204).send();
  });

  registerProjectTags(app, identity);
}

function matchesTags(have: string[], q: Record<string, string | undefined>): boolean {
  const list = (v: string | undefined): string[] | null => (v === undefined ? null : v.split(',').filter(Boolean));
  const all = list(q.tags);
  const any = list(q['tags-any']);
  const notAll = list(q['not-tags']);
  const notAny = list(q['not-tags-any']);
  if (all && !all.every((t) => have.includes(t))) return false;
  if (any && !any.some((t) => have.includes(t))) return false;
  if (notAll && notAll.every((t) => have.includes(t))) return false;
  if (notAny && notAny.some((t) => have.includes(t))) return false;
  return true;
}

function nestIds(ids: string[]): Record<string, unknown> | null {
  let node: Record<string, unknown> | null = null;
  for (const id of [...ids].reverse()) node = { [id]: node };
  return node;
}

async function subtreeIds(identity: Identity, id: string): Promise<Record<string, unknown> | null> {
  const kids = await children(identity, id);
  if (kids.length === 0) return null;
  const out: Record<string, unknown> = {};
  for (const k of kids) out[k.id] = await subtreeIds(identity, k.id);
  return out;
}

async function replaceTags(trx: Transaction<IdentitySchema>, projectId: string, names: string[]): Promise<void> {
  await trx.deleteFrom('project_tag').where('project_id', '=', projectId).execute();
  if (names.length) await trx.insertInto('project_tag').values([...new Set(names)].map((name) => ({ project_id: projectId, name }))).execute();
}

function registerProjectTags(app: FastifyInstance, identity: Identity): void {
  const db = identity.db;
  const target = (row: ProjectRow): Record<string, unknown> => ({ target: { project: { id: row.id, domain_id: row.domain_id } } });
  const validTag = (name: string): void => {
    if (name.length < 1 || name.length > 255 || /[,/]/.test(name)) throw new BadRequest(`Invalid input for field 'tag': '${name}' is not a valid tag (1 to 255 characters, no ',' or '/').`);
  };

  app.get<{ Params: { id: string } }>('/v3/projects/:id/tags', async (req) => {
    const row = await getProject(identity, req.params.id);
    authorize(identity, req, 'identity:list_project_tags', target(row));
    return { tags: (await tagsOf(identity, [row.id])).get(row.id) ?? [] };
  });
  app.put<{ Params: { id: string }; Body: { tags: string[] } }>(
    '/v3/projects/:id/tags',
    { schema: { body: { type: 'object', required: ['tags'], properties: { tags } } } },
    async (req) => {
      const row = await getProject(identity, req.params.id);
      authorize(identity, req, 'identity:update_project_tags', target(row));
      await db.transaction().execute((trx) => replaceTags(trx, row.id, req.body.tags));
      identity.changed();
      return { tags: (await tagsOf(identity, [row.id])).get(row.id) ?? [] };
    },
  );
  app.delete<{ Params: { id: string } }>('/v3/projects/:id/tags', async (req, reply) => {
    const row = await getProject(identity, req.params.id);
    authorize(identity, req, 'identity:delete_project_tags', target(row));
    await db.deleteFrom('project_tag').where('project_id', '=', row.id).execute();
    identity.changed();
    return reply.code(204).send();
  });
  app.get<{ Params: { id: string; tag: string } }>('/v3/projects/:id/tags/:tag', async (req, reply) => {
    const row = await getProject(identity, req.params.id);
    authorize(identity, req, 'identity:get_project_tag', target(row));
    const found = await db.selectFrom('project_tag').select('name').where('project_id', '=', row.id).where('name', '=', req.params.tag).executeTakeFirst();
    if (!found) throw new NotFound(`Tag ${req.params.tag} was not found for project ${row.id}.`);
    return reply.code(204).send();
  });
  app.put<{ Params: { id: string; tag: string } }>('/v3/projects/:id/tags/:tag', async (req, reply) => {
    const row = await getProject(identity, req.params.id);
    authorize(identity, req, 'identity:create_project_tag', target(row));
    validTag(req.params.tag);
    const have = (await tagsOf(identity, [row.id])).get(row.id) ?? [];
    if (!have.includes(req.params.tag)) {
      if (have.length >= 80) throw new BadRequest('A project may have at most 80 tags.');
      await db.insertInto('project_tag').values({ project_id: row.id, name: req.params.tag }).execute();
      identity.changed();
    }
    reply.code(201).header('Location', `${identity.publicUrl}/v3/projects/${row.id}/tags/${encodeURIComponent(req.params.tag)}`);
    return reply.send();
  });
  app.delete<{ Params: { id: string; tag: string } }>('/v3/projects/:id/tags/:tag', async (req, reply) => {
    const row = await getProject(identity, req.params.id);
    authorize(identity, req, 'identity:delete_project_tag', target(row));
    const res = await db.deleteFrom('project_tag').where('project_id', '=', row.id).where('name', '=', req.params.tag).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new NotFound(`Tag ${req.params.tag} was not found for project ${row.id}.`);
    identity.changed();
    return reply.code(204).send();
  });
}

