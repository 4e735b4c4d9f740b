import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { authorize, contextOf, type ComputeService } from '../compute.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, invalidState, notFound, serverNotFound } from '../errors.js';
import { addTag, deleteAllTags, deleteTag, MAX_TAG_LENGTH, MAX_TAGS, replaceTags, tagsOf } from '../server-tags.js';
import { bodyOf, checkObject, invalidField, notOfType, pyRepr, requireVersion } from './nova-input.js';

/**
 * `/servers/{id}/tags` (2.26): list, replace all, check one, add one,
 * delete one, delete all. Changes need the server ACTIVE, PAUSED,
 * SUSPENDED or STOPPED (409 otherwise), as Nova's tag API checks.
 */

/** Why `tag` is not a valid tag (jsonschema's words), or null when it is. */
function tagProblem(tag: unknown): string | null {
  if (typeof tag !== 'string') return notOfType(tag, 'string');
  if (tag.length < 1) return "'' is too short";
  if ([...tag].length > MAX_TAG_LENGTH) return `${pyRepr(tag, true)} is too long`;
  if (/[,/]/.test(tag)) return `${pyRepr(tag, true)} does not match '^[^,/]*$'`;
  return null;
}

/**
 * Checks a list of tags as Nova's schema does (the body of `PUT
 * /servers/{id}/tags`, and `server.tags` of a server create from 2.52):
 * an array of at most 50 tags of 1..60 characters without `/` or `,`.
 * Returns them deduplicated; throws Nova's 400.
 */
export function validateTags(value: unknown, name = 'tags'): string[] {
  if (!Array.isArray(value)) throw invalidField(name, value, notOfType(value, 'array'));
  if (value.length > MAX_TAGS) throw invalidField(name, value, `${pyRepr(value, true)} is too long`);
  value.forEach((tag: unknown, i) => {
    const problem = tagProblem(tag);
    if (problem) throw invalidField(String(i), tag, problem);
  });
  return [...new Set(value as string[])];
}

/** The states in which a server's tags may change. */
const TAGGABLE_STATES = ['active', 'paused', 'suspended', 'stopped'];

/**
 * The server of a tag request, as Nova's tag API finds it: a server never
 * known is 404, another project's is the policy's 403 (the rule is checked
 * on the server's project), a deleted one 404.
 */
async function loadServer(compute: ComputeService, ctx: RequestContext, uuid: string, rule: string): Promise<InstanceRow> {
  const row = await compute.db.selectFrom('instance').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (!row) throw notFound(`Instance ${uuid} has no mapping to a cell.`);
  authorize(compute, ctx, rule, { project_id: row.project_id });
  if (row.deleted) throw serverNotFound(uuid);
  return row;
}

function checkTaggable(server: InstanceRow, action: string): void {
  if (!TAGGABLE_STATES.includes(server.vm_state)) throw invalidState('vm_state', server.vm_state, action, server.uuid);
}

type ServerParams = { Params: { server_id: string } };
type TagParams = { Params: { server_id: string; tag: string } };

async function serverFor(compute: ComputeService, req: FastifyRequest<ServerParams | TagParams>, rule: string): Promise<InstanceRow> {
  requireVersion(req, '2.26');
  return loadServer(compute, contextOf(req), req.params.server_id, `os-server-tags:${rule}`);
}

/** Registers the `/servers/{id}/tags` routes. */
export function registerServerTags(app: FastifyInstance, compute: ComputeService): void {
  app.get<ServerParams>('/v2.1/servers/:server_id/tags', async (req) => {
    const server = await serverFor(compute, req, 'index');
    return { tags: await tagsOf(compute.db, server.uuid) };
  });

  app.put<ServerParams>('/v2.1/servers/:server_id/tags', async (req) => {
    requireVersion(req, '2.26');
    const body = checkObject(bodyOf(req), null, ['tags'], ['tags']);
    const tags = validateTags(body.tags);
    const server = await serverFor(compute, req, 'update_all');
    checkTaggable(server, 'update tags');
    return { tags: await replaceTags(compute.db, server.uuid, tags) };
  });

  app.delete<ServerParams>('/v2.1/servers/:server_id/tags', async (req, reply) => {
    const server = await serverFor(compute, req, 'delete_all');
    checkTaggable(server, 'delete tags');
    await deleteAllTags(compute.db, server.uuid);
    return reply.code(204).send();
  });

  app.get<TagParams>('/v2.1/servers/:server_id/tags/:tag', async (req, reply) => {
    const server = await serverFor(compute, req, 'show');
    const tags = await tagsOf(compute.db, server.uuid);
    if (!tags.includes(req.params.tag)) throw notFound(`Server ${server.uuid} has no tag '${req.params.tag}'`);
    return reply.code(204).send();
  });

  app.put<TagParams>('/v2.1/servers/:server_id/tags/:tag', async (req, reply) => {
    requireVersion(req, '2.26');
    const body = bodyOf(req);
    if (body !== null) throw badRequest(`${pyRepr(body, true)} is not of type 'null'`);
    const server = await serverFor(compute, req, 'update');
    checkTaggable(server, 'update tag');
    const tag = req.params.tag;
    const problem = tagProblem(tag);
    if (problem) throw badRequest(`Tag '${tag}' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: ${problem}`);
    const tags = await tagsOf(compute.db, server.uuid);
    if (tags.length >= MAX_TAGS) throw badRequest(`The number of tags exceeded the per-server limit ${MAX_TAGS}`);
    if (tags.includes(tag) || !(await addTag(compute.db, server.uuid, tag))) return reply.code(204).send();
    reply.header('Location', `${compute.publicUrl}/v2.1/servers/${server.uuid}/tags/${encodeURIComponent(tag)}`);
    return reply.code(201).send();
  });

  app.delete<TagParams>('/v2.1/servers/:server_id/tags/:tag', async (req, reply) => {
    const server = await serverFor(compute, req, 'delete');
    checkTaggable(server, 'delete tag');
    if (!(await deleteTag(compute.db, server.uuid, req.params.tag))) throw notFound(`Instance ${server.uuid} has no tag '${req.params.tag}'`);
    return reply.code(204).send();
  });
}
