import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, forbidden, notFound, VolumeError } from '../errors.js';
import { allowed, atLeast, contextOf, now, type VolumeService } from '../volume.js';
import { findVolumeType } from '../volume-types.js';
import { bodyObject, checkKeys, nameField, projectExists, versionNotSupported } from './catalog-input.js';

/**
 * Per-project default volume types (Block Storage 3.62 `/default-types`):
 * set, show, list, unset. A volume created without a type in that project
 * gets it (see `defaultVolumeType`); such a type cannot be deleted.
 */

function needs362(req: FastifyRequest): void {
  if (!atLeast(req, '3.62')) throw versionNotSupported(req);
}

/** Cinder's `validate_project_and_authorize`: 404 for an unknown project, 403 when the rule refuses. */
async function validateProject(volume: VolumeService, req: FastifyRequest, projectId: string, rule: string): Promise<void> {
  if (!(await projectExists(volume, req, projectId))) throw notFound(`Project with id ${projectId} not found.`);
  if (!allowed(volume, contextOf(req), rule, { project_id: projectId })) throw forbidden('You are not authorized to perform this operation.');
}

const view = (row: { project_id: string; volume_type_id: string }): Record<string, string> => ({ project_id: row.project_id, volume_type_id: row.volume_type_id });

async function setDefault(volume: VolumeService, req: FastifyRequest<{ Params: { project: string } }>): Promise<unknown> {
  needs362(req);
  const inner = bodyObject(req.body, 'default_type');
  checkKeys(inner, 'default_type', ['volume_type'], ['volume_type']);
  const identity = nameField(inner.volume_type, 'volume_type');
  const projectId = req.params.project;
  await validateProject(volume, req, projectId, 'volume_extension:default_set_or_update');
  const type = await findVolumeType(volume, null, identity).catch((err: unknown) => {
    if (err instanceof VolumeError && err.status === 404) throw badRequest(err.message);
    throw err;
  });
  const row = { project_id: projectId, volume_type_id: type.id };
  await volume.db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('default_volume_type').select('project_id').where('project_id', '=', projectId).executeTakeFirst();
    if (existing) await trx.updateTable('default_volume_type').set({ volume_type_id: type.id, updated_at: now() }).where('project_id', '=', projectId).execute();
    else await trx.insertInto('default_volume_type').values({ ...row, created_at: now(), updated_at: null }).execute();
  });
  return { default_type: view(row) };
}

async function showDefault(volume: VolumeService, req: FastifyRequest<{ Params: { project: string } }>): Promise<unknown> {
  needs362(req);
  const projectId = req.params.project;
  await validateProject(volume, req, projectId, 'volume_extension:default_get');
  const row = await volume.db.selectFrom('default_volume_type').select(['project_id', 'volume_type_id']).where('project_id', '=', projectId).executeTakeFirst();
  if (!row) throw notFound(`Default type for project ${projectId} not found.`);
  return { default_type: view(row) };
}

async function unsetDefault(volume: VolumeService, req: FastifyRequest<{ Params: { project: string } }>, reply: FastifyReply): Promise<unknown> {
  needs362(req);
  const projectId = req.params.project;
  // A project identity no longer knows still gets its default removed, as in Cinder.
  if (!allowed(volume, contextOf(req), 'volume_extension:default_unset', { project_id: projectId })) throw forbidden('You are not authorized to perform this operation.');
  await volume.db.deleteFrom('default_volume_type').where('project_id', '=', projectId).execute();
  return reply.code(204).send();
}

/** Registers `/default-types`. */
export function registerDefaultTypes(app: FastifyInstance, volume: VolumeService): void {
  app.put<{ Params: { project: string } }>('/v3/default-types/:project', async (req) => setDefault(volume, req));
  app.get<{ Params: { project: string } }>('/v3/default-types/:project', async (req) => showDefault(volume, req));
  app.get('/v3/default-types', async (req) => {
    needs362(req);
    if (!allowed(volume, contextOf(req), 'volume_extension:default_get_all')) throw forbidden('You are not authorized to perform this operation.');
    const rows = await volume.db.selectFrom('default_volume_type').select(['project_id', 'volume_type_id']).orderBy('project_id').execute();
    return { default_types: rows.map(view) };
  });
  app.delete<{ Params: { project: string } }>('/v3/default-types/:project', async (req, reply) => unsetDefault(volume, req, reply));
}
