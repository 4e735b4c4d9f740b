import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, forbidden } from '../errors.js';
import { classLimits, projectLimits, projectOwnLimits, projectUsage, quotaResourceNames } from '../quotas.js';
import { authorize, contextOf, isAdmin, type VolumeService } from '../volume.js';
import { bodyOf, boolParam, checkKeys, DB_MAX_INT, integerValue, invalidField, isObject, notOfType, pyRepr, queryOf, type Obj } from './catalog-input.js';

/**
 * `os-quota-sets` (a project's limits: show, `?usage=True` with in_use and
 * reserved, defaults, update, delete) and `os-quota-class-sets` (the
 * `default` class and any other), as Cinder's quotas and quota_classes
 * controllers. Per-type limits (`volumes_<type>`, `gigabytes_<type>`,
 * `snapshots_<type>`) are listed for every volume type.
 */

/** Keys a quota set body may carry besides the resources (ignored). */
const NON_QUOTA_KEYS = ['tenant_id', 'id'];

/** The limits in Cinder's order (resources first, `groups` last). */
function ordered(names: string[], values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, values[n] ?? -1]));
}

async function showQuotas(volume: VolumeService, req: FastifyRequest<{ Params: { project: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const projectId = req.params.project;
  authorize(volume, ctx, 'volume_extension:quotas:show', { project_id: projectId });
  const usage = boolParam(queryOf(req), 'usage');
  const names = await quotaResourceNames(volume);
  const limits = await projectLimits(volume, projectId);
  if (!usage) return { quota_set: { id: projectId, ...ordered(names, limits) } };
  const used = await projectUsage(volume, projectId);
  const detail = Object.fromEntries(names.map((n) => [n, { limit: limits[n] ?? -1, in_use: used[n] ?? 0, reserved: 0 }]));
  return { quota_set: { id: projectId, ...detail } };
}

/** Cinder's `quota_set` format: known keys only (400 `Bad key(s) in quota set: ...`), integers from -1. */
function parseQuotaSet(value: unknown, names: string[]): Record<string, number> {
  if (!isObject(value)) throw invalidField('quota_set', value, notOfType(value, 'object'));
  if (Object.keys(value).length < 1) throw invalidField('quota_set', value, `${pyRepr(value)} does not have enough properties`);
  const bad = Object.keys(value).filter((k) => !names.includes(k) && !NON_QUOTA_KEYS.includes(k));
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(value)) {
    if (bad.includes(key) || NON_QUOTA_KEYS.includes(key)) continue;
    out[key] = integerValue(v, key, -1, DB_MAX_INT);
  }
  if (bad.length > 0) throw badRequest(`Invalid input received: Bad key(s) in quota set: ${bad.join(', ')}`);
  return out;
}

async function updateQuotas(volume: VolumeService, req: FastifyRequest<{ Params: { project: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const projectId = req.params.project;
  const body = bodyOf(req.body);
  checkKeys(body, null, ['quota_set'], ['quota_set']);
  const names = await quotaResourceNames(volume);
  const values = parseQuotaSet(body.quota_set, names);
  authorize(volume, ctx, 'volume_extension:quotas:update', { project_id: projectId });
  if (projectId.length < 1 || projectId.length > 255) throw badRequest('quota_set_name has a length outside 1-255.');
  // Cinder compares with the usage only where the project has its own limit already.
  const own = await projectOwnLimits(volume, projectId);
  const checked = Object.entries(values).filter(([key, limit]) => key !== 'per_volume_gigabytes' && limit !== -1 && key in own);
  if (checked.length > 0) {
    const used = await projectUsage(volume, projectId);
    for (const [key, limit] of checked) {
      const usage = used[key] ?? 0;
      if (limit < usage) throw badRequest(`Quota ${key} limit must be equal or greater than existing resources. Current usage is ${usage} and the requested limit is ${limit}.`);
    }
  }
  await volume.db.transaction().execute(async (trx) => {
    for (const [resource, limit] of Object.entries(values)) {
      const res = await trx.updateTable('quota').set({ hard_limit: limit }).where('project_id', '=', projectId).where('resource', '=', resource).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) await trx.insertInto('quota').values({ project_id: projectId, resource, hard_limit: limit }).execute();
    }
  });
  return { quota_set: ordered(names, await projectLimits(volume, projectId)) };
}

/** `quota_class_set`: keys of resources (400 `Bad key(s) in quota class set: ...`), integers or digit strings. */
function parseClassSet(value: unknown, names: string[]): Record<string, number> {
  if (!isObject(value)) throw invalidField('quota_class_set', value, notOfType(value, 'object'));
  const bad = Object.keys(value).filter((k) => !names.includes(k));
  if (bad.length > 0) throw badRequest(`Invalid input received: Bad key(s) in quota class set: ${bad.join(', ')}`);
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(value as Obj)) {
    if (typeof v === 'number' && Number.isInteger(v)) {
      if (v < -1) throw invalidField(key, v, `${v} is less than the minimum of -1`);
      if (v > DB_MAX_INT) throw invalidField(key, v, `${v} is greater than the maximum of ${DB_MAX_INT}`);
      out[key] = v;
    } else if (typeof v === 'string') {
      if (v.length < 1) throw invalidField(key, v, `'' is too short`);
      if (!/^[0-9]*$/.test(v)) throw invalidField(key, v, `${pyRepr(v)} does not match '^[0-9]*$'`);
      const n = Number(v);
      if (n > DB_MAX_INT) throw invalidField(key, v, `${pyRepr(v)} is greater than the maximum of ${DB_MAX_INT}`);
      out[key] = n;
    } else throw invalidField(key, v, notOfType(v, 'integer', 'string'));
  }
  return out;
}

async function updateClass(volume: VolumeService, req: FastifyRequest<{ Params: { name: string } }>): Promise<unknown> {
  const ctx = contextOf(req);
  const body = bodyOf(req.body);
  checkKeys(body, null, ['quota_class_set'], ['quota_class_set']);
  const names = await quotaResourceNames(volume);
  const values = parseClassSet(body.quota_class_set, names);
  authorize(volume, ctx, 'volume_extension:quota_classes:update');
  const className = req.params.name;
  if (className.length < 1 || className.length > 255) throw badRequest('quota_class_name has a length outside 1-255.');
  await volume.db.transaction().execute(async (trx) => {
    for (const [resource, limit] of Object.entries(values)) {
      const res = await trx.updateTable('quota_class').set({ hard_limit: limit }).where('class_name', '=', className).where('resource', '=', resource).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) await trx.insertInto('quota_class').values({ class_name: className, resource, hard_limit: limit }).execute();
    }
  });
  return { quota_class_set: ordered(names, await classLimits(volume, className)) };
}

/** Registers `os-quota-sets` and `os-quota-class-sets`. */
export function registerQuotas(app: FastifyInstance, volume: VolumeService): void {
  app.get<{ Params: { project: string } }>('/v3/os-quota-sets/:project', async (req) => showQuotas(volume, req));
  app.get<{ Params: { project: string } }>('/v3/os-quota-sets/:project/defaults', async (req) => {
    const projectId = req.params.project;
    authorize(volume, contextOf(req), 'volume_extension:quotas:show', { project_id: projectId });
    const names = await quotaResourceNames(volume);
    return { quota_set: { id: projectId, ...ordered(names, await classLimits(volume)) } };
  });
  app.put<{ Params: { project: string } }>('/v3/os-quota-sets/:project', async (req) => updateQuotas(volume, req));
  app.delete<{ Params: { project: string } }>('/v3/os-quota-sets/:project', async (req, reply) => {
    const projectId = req.params.project;
    authorize(volume, contextOf(req), 'volume_extension:quotas:delete', { project_id: projectId });
    await volume.db.deleteFrom('quota').where('project_id', '=', projectId).execute();
    return reply.code(200).send();
  });
  app.get<{ Params: { name: string } }>('/v3/os-quota-class-sets/:name', async (req) => {
    const ctx = contextOf(req);
    authorize(volume, ctx, 'volume_extension:quota_classes:get');
    // Cinder's authorize_quota_class_context: a non-admin sees only its own class (none here).
    if (!isAdmin(volume, ctx)) throw forbidden('You are not authorized to perform this operation.');
    const names = await quotaResourceNames(volume);
    return { quota_class_set: { id: req.params.name, ...ordered(names, await classLimits(volume, req.params.name)) } };
  });
  app.put<{ Params: { name: string } }>('/v3/os-quota-class-sets/:name', async (req) => updateClass(volume, req));
}
