import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { BadRequest, Conflict, NotFound } from '../../core/errors.js';
import { endpointsMatching, filteredEndpointIds } from '../catalog.js';
import { newId, parseJson } from '../common.js';
import { ROOT_DOMAIN, type IdentitySchema, type ProjectRow } from '../db/schema.js';
import { authorize, collectionLinks, selfLink, type Identity } from '../identity.js';
import { projectView } from '../views.js';
import { endpointView, entityOf, entitySchema, expecting, getEndpoint, queryText, requireMatchingId, written, type Entity } from './catalog.js';
import { tagsOf } from './lookup.js';

type Db = Kysely<IdentitySchema>;
type GroupRow = IdentitySchema['endpoint_group'];

const PREFIX = '/v3/OS-EP-FILTER';
const VALID_FILTERS = ['service_id', 'region_id', 'interface'];
const groupProperties = {
  description: { type: ['string', 'null'] },
  filters: { type: 'object' },
  name: { type: 'string', minLength: 1, maxLength: 255, pattern: '[\\S]+' },
};

/**
 * OS-EP-FILTER: endpoint groups, and which endpoints (directly or through
 * endpoint groups) a project's tokens carry in their catalog.
 */
export function registerEndpointFilter(app: FastifyInstance, identity: Identity): void {
  registerEndpointGroups(app, identity);
  registerGroupProjects(app, identity);
  registerProjectEndpoints(app, identity);
}

function groupView(identity: Identity, row: GroupRow): Entity {
  return { id: row.id, name: row.name, description: row.description, filters: parseJson(row.filters), links: selfLink(identity, `OS-EP-FILTER/endpoint_groups/${row.id}`) };
}

async function getGroup(db: Db, id: string): Promise<GroupRow> {
  const row = await db.selectFrom('endpoint_group').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find Endpoint Group: ${id}.`);
  return row;
}

/** A project as Keystone's `get_project` finds it (domains are projects too). */
async function getProjectRow(db: Db, id: string): Promise<ProjectRow> {
  const row = await db.selectFrom('project').selectAll().where('id', '=', id).where('id', '!=', ROOT_DOMAIN).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find project: ${id}.`);
  return row;
}

async function projectsView(identity: Identity, ids: string[]): Promise<Entity[]> {
  if (ids.length === 0) return [];
  const rows = await identity.db.selectFrom('project').selectAll().where('id', 'in', ids).execute();
  const tags = await tagsOf(identity, rows.map((r) => r.id));
  return rows.map((r) => projectView(identity, r, tags.get(r.id) ?? []));
}

function checkFilters(filters: unknown): void {
  if (typeof filters !== 'object' || filters === null) return;
  for (const key of Object.keys(filters)) {
    if (!VALID_FILTERS.includes(key)) throw expecting(VALID_FILTERS.join(' or '), 'endpoint_group');
  }
}

async function createGroup(identity: Identity, entity: Entity): Promise<GroupRow> {
  const filters = entity.filters as Entity;
  if (Object.keys(filters).length === 0) throw new BadRequest('filters field is required and cannot be empty');
  checkFilters(filters);
  const row: GroupRow = {
    id: newId(),
    name: String(entity.name),
    description: typeof entity.description === 'string' ? entity.description : '',
    filters: JSON.stringify(filters),
  };
  await identity.db.insertInto('endpoint_group').values(row).execute();
  written(identity, 'endpoint_group', 'created', row.id);
  return row;
}

async function updateGroup(identity: Identity, id: string, entity: Entity): Promise<GroupRow> {
  const row = await getGroup(identity.db, id);
  const updated: GroupRow = {
    id: row.id,
    name: typeof entity.name === 'string' ? entity.name : row.name,
    description: 'description' in entity ? (typeof entity.description === 'string' ? entity.description : '') : row.description,
    filters: typeof entity.filters === 'object' && entity.filters !== null ? JSON.stringify(entity.filters) : row.filters,
  };
  await identity.db.updateTable('endpoint_group').set({ name: updated.name, description: updated.description, filters: updated.filters }).where('id', '=', row.id).execute();
  written(identity, 'endpoint_group', 'updated', row.id);
  return updated;
}

function registerEndpointGroups(app: FastifyInstance, identity: Identity): void {
  app.get<{ Querystring: Entity }>(`${PREFIX}/endpoint_groups`, async (req) => {
    authorize(identity, req, 'identity:endpoint_groups');
    let query = identity.db.selectFrom('endpoint_group').selectAll();
    const name = queryText(req.query.name);
    if (name !== undefined) query = query.where('name', '=', name);
    const rows = await query.execute();
    return { endpoint_groups: rows.map((r) => groupView(identity, r)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { endpoint_group_id: string } }>(`${PREFIX}/endpoint_groups/:endpoint_group_id`, async (req) => {
    authorize(identity, req, 'identity:endpoint_groups');
    return { endpoint_group: groupView(identity, await getGroup(identity.db, req.params.endpoint_group_id)) };
  });

  app.post(`${PREFIX}/endpoint_groups`, { schema: { body: entitySchema('endpoint_group', groupProperties, { required: ['name', 'filters'] }) } }, async (req, reply) => {
    authorize(identity, req, 'identity:manage_endpoint_groups');
    const row = await createGroup(identity, entityOf(req.body, 'endpoint_group'));
    reply.code(201);
    return { endpoint_group: groupView(identity, row) };
  });

  app.patch<{ Params: { endpoint_group_id: string } }>(
    `${PREFIX}/endpoint_groups/:endpoint_group_id`,
    { schema: { body: entitySchema('endpoint_group', groupProperties, { update: true }) } },
    async (req) => {
      authorize(identity, req, 'identity:manage_endpoint_groups');
      const entity = entityOf(req.body, 'endpoint_group');
      checkFilters(entity.filters);
      requireMatchingId(entity, req.params.endpoint_group_id);
      return { endpoint_group: groupView(identity, await updateGroup(identity, req.params.endpoint_group_id, entity)) };
    },
  );

  app.delete<{ Params: { endpoint_group_id: string } }>(`${PREFIX}/endpoint_groups/:endpoint_group_id`, async (req, reply) => {
    authorize(identity, req, 'identity:manage_endpoint_groups');
    const row = await getGroup(identity.db, req.params.endpoint_group_id);
    await identity.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('project_endpoint_group').where('endpoint_group_id', '=', row.id).execute();
      await trx.deleteFrom('endpoint_group').where('id', '=', row.id).execute();
    });
    written(identity, 'endpoint_group', 'deleted', row.id);
    return reply.code(204).send();
  });

  app.get<{ Params: { endpoint_group_id: string } }>(`${PREFIX}/endpoint_groups/:endpoint_group_id/endpoints`, async (req) => {
    authorize(identity, req, 'identity:endpoint_groups');
    const group = await getGroup(identity.db, req.params.endpoint_group_id);
    const all = await identity.db.selectFrom('endpoint').selectAll().execute();
    const matching = endpointsMatching(all, parseJson(group.filters));
    return { endpoints: matching.map((e) => endpointView(identity, e)), links: collectionLinks(identity, req) };
  });
}

type GroupProjectParams = { Params: { endpoint_group_id: string; project_id: string } };

async function findGroupProject(db: Db, groupId: string, projectId: string): Promise<boolean> {
  const row = await db
    .selectFrom('project_endpoint_group')
    .select('project_id')
    .where('endpoint_group_id', '=', groupId)
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  return row !== undefined;
}

/** 404 for an unknown project or group, 409 when already associated. */
async function addGroupToProject(identity: Identity, groupId: string, projectId: string): Promise<void> {
  await getProjectRow(identity.db, projectId);
  await getGroup(identity.db, groupId);
  const conflict = (): Conflict => new Conflict('Conflict occurred attempting to store project_endpoint_group - Duplicate entry.');
  if (await findGroupProject(identity.db, groupId, projectId)) throw conflict();
  try {
    await identity.db.insertInto('project_endpoint_group').values({ endpoint_group_id: groupId, project_id: projectId }).execute();
  } catch (err) {
    if (await findGroupProject(identity.db, groupId, projectId)) throw conflict();
    throw err;
  }
  written(identity, 'project_endpoint_group', 'created', `${groupId}:${projectId}`);
}

function registerGroupProjects(app: FastifyInstance, identity: Identity): void {
  const path = `${PREFIX}/endpoint_groups/:endpoint_group_id/projects/:project_id`;
  const notAssociated = (): NotFound => new NotFound('Endpoint Group Project Association not found');

  app.get<GroupProjectParams>(path, async (req) => {
    authorize(identity, req, 'identity:endpoint_groups');
    const { endpoint_group_id: groupId, project_id: projectId } = req.params;
    await getProjectRow(identity.db, projectId);
    await getGroup(identity.db, groupId);
    if (!(await findGroupProject(identity.db, groupId, projectId))) throw notAssociated();
    const links = selfLink(identity, `OS-EP-FILTER/endpoint_groups/${groupId}/projects/${projectId}`);
    return { project_endpoint_group: { endpoint_group_id: groupId, project_id: projectId, links } };
  });

  app.put<GroupProjectParams>(path, async (req, reply) => {
    authorize(identity, req, 'identity:manage_endpoint_groups');
    await addGroupToProject(identity, req.params.endpoint_group_id, req.params.project_id);
    return reply.code(204).send();
  });

  app.delete<GroupProjectParams>(path, async (req, reply) => {
    authorize(identity, req, 'identity:manage_endpoint_groups');
    const { endpoint_group_id: groupId, project_id: projectId } = req.params;
    await getProjectRow(identity.db, projectId);
    await getGroup(identity.db, groupId);
    const removed = await identity.db.deleteFrom('project_endpoint_group').where('endpoint_group_id', '=', groupId).where('project_id', '=', projectId).executeTakeFirst();
    if (Number(removed.numDeletedRows) === 0) throw notAssociated();
    written(identity, 'project_endpoint_group', 'deleted', `${groupId}:${projectId}`);
    return reply.code(204).send();
  });

  // Keystone answers an empty list for an unknown endpoint group here.
  app.get<{ Params: { endpoint_group_id: string } }>(`${PREFIX}/endpoint_groups/:endpoint_group_id/projects`, async (req) => {
    authorize(identity, req, 'identity:endpoint_groups');
    const refs = await identity.db.selectFrom('project_endpoint_group').select('project_id').where('endpoint_group_id', '=', req.params.endpoint_group_id).execute();
    return { projects: await projectsView(identity, refs.map((r) => r.project_id)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { project_id: string } }>(`${PREFIX}/projects/:project_id/endpoint_groups`, async (req) => {
    authorize(identity, req, 'identity:endpoint_groups');
    await getProjectRow(identity.db, req.params.project_id);
    const rows = await identity.db
      .selectFrom('endpoint_group')
      .innerJoin('project_endpoint_group', 'project_endpoint_group.endpoint_group_id', 'endpoint_group.id')
      .selectAll('endpoint_group')
      .where('project_endpoint_group.project_id', '=', req.params.project_id)
      .execute();
    return { endpoint_groups: rows.map((r) => groupView(identity, r)), links: collectionLinks(identity, req) };
  });
}

type ProjectEndpointParams = { Params: { project_id: string; endpoint_id: string } };

async function findProjectEndpoint(db: Db, projectId: string, endpointId: string): Promise<boolean> {
  const row = await db.selectFrom('project_endpoint').select('project_id').where('project_id', '=', projectId).where('endpoint_id', '=', endpointId).executeTakeFirst();
  return row !== undefined;
}

function registerProjectEndpoints(app: FastifyInstance, identity: Identity): void {
  const path = `${PREFIX}/projects/:project_id/endpoints/:endpoint_id`;
  const notAssociated = (endpointId: string, projectId: string): NotFound => new NotFound(`Endpoint ${endpointId} not found in project ${projectId}`);

  // GET and HEAD: 204 when associated, as Keystone answers.
  app.get<ProjectEndpointParams>(path, async (req, reply) => {
    authorize(identity, req, 'identity:project_endpoints');
    const { project_id: projectId, endpoint_id: endpointId } = req.params;
    await getEndpoint(identity.db, endpointId);
    await getProjectRow(identity.db, projectId);
    if (!(await findProjectEndpoint(identity.db, projectId, endpointId))) throw notAssociated(endpointId, projectId);
    return reply.code(204).send();
  });

  app.put<ProjectEndpointParams>(path, async (req, reply) => {
    authorize(identity, req, 'identity:manage_project_endpoints');
    const { project_id: projectId, endpoint_id: endpointId } = req.params;
    await getEndpoint(identity.db, endpointId);
    await getProjectRow(identity.db, projectId);
    if (!(await findProjectEndpoint(identity.db, projectId, endpointId))) {
      try {
        await identity.db.insertInto('project_endpoint').values({ project_id: projectId, endpoint_id: endpointId }).execute();
      } catch (err) {
        if (!(await findProjectEndpoint(identity.db, projectId, endpointId))) throw err;
      }
    }
    written(identity, 'project_endpoint', 'created', `${projectId}:${endpointId}`);
    return reply.code(204).send();
  });

  app.delete<ProjectEndpointParams>(path, async (req, reply) => {
    authorize(identity, req, 'identity:manage_project_endpoints');
    const { project_id: projectId, endpoint_id: endpointId } = req.params;
    const removed = await identity.db.deleteFrom('project_endpoint').where('project_id', '=', projectId).where('endpoint_id', '=', endpointId).executeTakeFirst();
    if (Number(removed.numDeletedRows) === 0) throw notAssociated(endpointId, projectId);
    written(identity, 'project_endpoint', 'deleted', `${projectId}:${endpointId}`);
    return reply.code(204).send();
  });

  app.get<{ Params: { project_id: string } }>(`${PREFIX}/projects/:project_id/endpoints`, async (req) => {
    authorize(identity, req, 'identity:project_endpoints');
    await getProjectRow(identity.db, req.params.project_id);
    const ids = await filteredEndpointIds(identity.db, req.params.project_id);
    const rows = ids && ids.size > 0 ? await identity.db.selectFrom('endpoint').selectAll().where('id', 'in', [...ids]).execute() : [];
    return { endpoints: rows.map((e) => endpointView(identity, e)), links: collectionLinks(identity, req) };
  });

  app.get<{ Params: { endpoint_id: string } }>(`${PREFIX}/endpoints/:endpoint_id/projects`, async (req) => {
    authorize(identity, req, 'identity:project_endpoints');
    await getEndpoint(identity.db, req.params.endpoint_id);
    const refs = await identity.db.selectFrom('project_endpoint').select('project_id').where('endpoint_id', '=', req.params.endpoint_id).execute();
    return { projects: await projectsView(identity, refs.map((r) => r.project_id)), links: collectionLinks(identity, req) };
  });
}
