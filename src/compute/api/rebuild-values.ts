import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { atLeast, authorize, type ComputeService } from '../compute.js';
import { projectLimits } from '../quotas.js';
import type { InstanceRow } from '../db/schema.js';
import { badRequest, invalidState } from '../errors.js';
import { canonicalIpv6, checkAccessIps, diskConfigOf } from '../server-views.js';
import { invalidField, isObject, notOfType } from './nova-input.js';
import { validateMetadata } from './server-metadata.js';

/** What a rebuild changes on the server row, and the metadata that replaces the server's (when given). */
export interface RebuildChanges {
  values: Partial<InstanceRow>;
  metadata?: Record<string, string>;
}

/**
 * Checks the rebuild body's fields besides the image, as Nova does, and
 * returns what they change: the new image, `name`, `metadata` (replaces
 * all), `accessIPv4/6`, `description` (2.19), `key_name` (2.54; null
 * removes the key), `user_data` (2.57; null removes it). Changes nothing.
 */
export async function rebuildChanges(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, arg: Record<string, unknown>, imageId: string): Promise<RebuildChanges> {
  const values: Partial<InstanceRow> = { image_ref: imageId };
  if (arg.name !== undefined) {
    if (typeof arg.name !== 'string') throw invalidField('name', arg.name, notOfType(arg.name, 'string'));
    if (arg.name.trim() === '' || arg.name.length > 255) throw invalidField('name', arg.name, `'${arg.name}' does not match the name pattern`);
    values.display_name = arg.name;
  }
  checkAccessIps(arg);
  const diskConfig = diskConfigOf(arg);
  if (diskConfig) values.disk_config = diskConfig;
  if (typeof arg.accessIPv4 === 'string') values.access_ip_v4 = arg.accessIPv4;
  if (typeof arg.accessIPv6 === 'string') values.access_ip_v6 = canonicalIpv6(arg.accessIPv6);
  if (arg.description !== undefined && atLeast(req, '2.19')) {
    if (arg.description !== null && (typeof arg.description !== 'string' || arg.description.length > 255)) throw invalidField('description', arg.description, notOfType(arg.description, 'string'));
    values.display_description = arg.description;
  }
  if (arg.key_name !== undefined && atLeast(req, '2.54')) {
    if (arg.key_name === null) {
      values.key_name = null;
      values.key_data = null;
    } else {
      const key = await compute.db.selectFrom('key_pair').select('public_key').where('user_id', '=', instance.user_id).where('name', '=', String(arg.key_name)).executeTakeFirst();
      if (!key) throw badRequest(`Invalid key_name provided.`);
      values.key_name = String(arg.key_name);
      values.key_data = key.public_key;
    }
  }
  if (arg.user_data !== undefined && atLeast(req, '2.57')) {
    if (arg.user_data !== null && (typeof arg.user_data !== 'string' || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(arg.user_data))) throw invalidField('user_data', arg.user_data, `'${String(arg.user_data)}' is not a 'base64'`);
    values.user_data = arg.user_data;
  }
  let metadata: Record<string, string> | undefined;
  if (arg.metadata !== undefined) {
    if (!isObject(arg.metadata)) throw invalidField('metadata', arg.metadata, notOfType(arg.metadata, 'object'));
    const limit = (await projectLimits(compute.db, compute.config.compute, ctx.projectId ?? instance.project_id, ctx.userId)).metadata_items;
    metadata = validateMetadata(arg.metadata, limit);
  }
  return metadata ? { values, metadata } : { values };
}

/** Replaces the server's metadata with `metadata`. */
export async function replaceMetadata(compute: ComputeService, uuid: string, metadata: Record<string, string> | undefined): Promise<void> {
  if (!metadata) return;
  await compute.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('instance_metadata').where('instance_uuid', '=', uuid).execute();
    for (const [key, value] of Object.entries(metadata)) await trx.insertInto('instance_metadata').values({ instance_uuid: uuid, key, value }).execute();
  });
}

/**
 * The `restore` action (deferred delete): Stratus deletes at once (Nova's
 * `reclaim_instance_interval = 0`), so no server is ever soft-deleted and
 * restore is Nova's 409 for a server in any other state.
 */
export function restoreServer(compute: ComputeService, ctx: RequestContext, instance: InstanceRow): never {
  authorize(compute, ctx, 'os-deferred-delete:restore', { project_id: instance.project_id });
  throw invalidState('vm_state', instance.vm_state, 'restore', instance.uuid);
}
