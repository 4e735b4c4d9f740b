import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../core/auth/context.js';
import type { GroupRow, GroupSnapshotRow, VolumeRow } from './db/schema.js';
import { badRequest, notFound, VolumeError } from './errors.js';
import { findGroupType } from './group-types.js';
import { projectLimits } from './quotas.js';
import { SchedulerRpc } from './rpc.js';
import { findVolumeType, type VolumeType } from './volume-types.js';
import { authorize, isAdmin, now, type VolumeService } from './volume.js';

/**
 * Generic volume groups (Cinder's `group.API`, without driver support):
 * a group is placed on one backend (every volume type of it must fit
 * there) and its volumes are created there; a group snapshot is one
 * snapshot of each volume of the group; a group from a source is one
 * volume per snapshot or source volume. The volume and snapshot work goes
 * through the ordinary volume and snapshot paths; the conductor calls
 * `settleGroup`/`settleGroupSnapshot` as those finish, which move the group
 * or group snapshot out of `creating`/`deleting`.
 */

/** Cinder's `GroupStatus.ALL`. */
export const GROUP_STATUSES = ['error', 'available', 'creating', 'deleting', 'deleted', 'updating', 'in-use', 'error_deleting'] as const;
/** Cinder's `GroupSnapshotStatus.ALL` (group `reset_status` checks against it too, as Cinder does). */
export const GROUP_SNAPSHOT_STATUSES = ['error', 'available', 'creating', 'deleting', 'deleted', 'updating', 'error_deleting'] as const;

const REMOVABLE = ['available', 'in-use', 'error', 'error_deleting'];
const ADDABLE = ['available', 'in-use'];

/** Cinder's `InvalidGroup` (400). */
export const invalidGroup = (reason: string): VolumeError => badRequest(`Invalid Group: ${reason}`);
/** Cinder's `GroupNotFound`. */
export const groupNotFound = (id: string): VolumeError => notFound(`Group ${id} could not be found.`);
/** Cinder's `GroupSnapshotNotFound`. */
export const groupSnapshotNotFound = (id: string): VolumeError => notFound(`GroupSnapshot ${id} could not be found.`);

/** The policy target of a group or group snapshot. */
export function groupTarget(row: { project_id: string; user_id: string }): Record<string, unknown> {
  return { project_id: row.project_id, user_id: row.user_id };
}

/** A group the caller may see (another project's is 404 for a non-administrator), `group:get` checked. */
export async function getGroup(volume: VolumeService, ctx: RequestContext, id: string): Promise<GroupRow> {
  const row = await volume.db.selectFrom('volume_group').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw groupNotFound(id);
  authorize(volume, ctx, 'group:get', groupTarget(row));
  return row;
}

/** A group snapshot the caller may see, `group:get_group_snapshot` checked. */
export async function getGroupSnapshot(volume: VolumeService, ctx: RequestContext, id: string): Promise<GroupSnapshotRow> {
  const row = await volume.db.selectFrom('group_snapshot').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw groupSnapshotNotFound(id);
  authorize(volume, ctx, 'group:get_group_snapshot', groupTarget(row));
  return row;
}

/** The volume type ids of each group, in the order they were given. */
export async function groupVolumeTypes(volume: VolumeService, groupIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (groupIds.length === 0) return out;
  const rows = await volume.db.selectFrom('group_volume_type').select(['group_id', 'volume_type_id']).where('group_id', 'in', [...groupIds]).execute();
  for (const r of rows) out.set(r.group_id, [...(out.get(r.group_id) ?? []), r.volume_type_id]);
  return out;
}

/** The volumes of a group. */
export function groupVolumes(volume: VolumeService, groupId: string): Promise<VolumeRow[]> {
  return volume.db.selectFrom('volume').selectAll().where('group_id', '=', groupId).orderBy('created_at').execute();
}

/** Cinder's group quota: 413 `GroupLimitExceeded` when the project has its `groups` already. */
async function checkGroupQuota(volume: VolumeService, projectId: string): Promise<void> {
  const limit = (await projectLimits(volume, projectId)).groups ?? -1;
  if (limit < 0) return;
  const used = await volume.db
    .selectFrom('volume_group')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  if (Number(used?.n ?? 0) + 1 > limit) {
    const error = new VolumeError(413, `Maximum number of groups allowed (${limit}) exceeded`);
    error.headers['Retry-After'] = '0';
    throw error;
  }
}

/** Removes a group's records. */
async function destroyGroupRows(volume: VolumeService, id: string): Promise<void> {
  await volume.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('group_volume_type').where('group_id', '=', id).execute();
    await trx.deleteFrom('volume_group').where('id', '=', id).execute();
  });
}

/** Cinder's `_extract_availability_zone`: the asked zone, else the default; it must be known. */
async function groupZone(volume: VolumeService, asked: string | null): Promise<string> {
  const rows = await volume.db.selectFrom('service').select('availability_zone').where('binary', '=', 'cinder-volume').distinct().execute();
  const known = new Set([...rows.map((r) => r.availability_zone), volume.config.volume.storage_availability_zone]);
  const zone = asked ?? (volume.config.volume.default_availability_zone || volume.config.volume.storage_availability_zone);
  if (!known.has(zone)) throw badRequest(`Invalid input received: Availability zone '${zone}' is invalid.`);
  return zone;
}

/**
 * The pool a group with `types` goes to (the scheduler's choice for the
 * first type, where every other type fits too), or null.
 */
async function placeGroup(volume: VolumeService, zone: string, types: VolumeType[]): Promise<string | null> {
  const rpc = new SchedulerRpc(volume.bus);
  const [first, ...rest] = types;
  if (!first) return null;
  const backends = (await volume.db.selectFrom('service').select('host').where('binary', '=', 'cinder-volume').execute()).map((r) => r.host);
  const pool = await rpc.findBackend({ size: 0, availability_zone: zone, volume_type: { id: first.id, name: first.name, extra_specs: first.extra_specs }, ignore_backends: [] });
  if (!pool) return null;
  const backend = pool.split('#')[0] ?? pool;
  const others = backends.filter((b) => b !== backend);
  for (const type of rest) {
    const fits = await rpc.findBackend({ size: 0, availability_zone: zone, volume_type: { id: type.id, name: type.name, extra_specs: type.extra_specs }, ignore_backends: others });
    if (!fits) return null;
  }
  return pool;
}

/** What a new group is made of. */
export interface NewGroup {
  name: string | null;
  description: string | null;
  groupType: string;
  volumeTypes: string[];
  availabilityZone: string | null;
}

/**
 * Creates a group (`creating`, within the `groups` quota), places it on a
 * backend that takes all its volume types, and makes it `available`
 * (`error` when no backend does). A refused request records nothing.
 */
export async function createGroup(volume: VolumeService, ctx: RequestContext, input: NewGroup): Promise<GroupRow> {
  authorize(volume, ctx, 'group:create');
  const types: VolumeType[] = [];
  for (const identity of input.volumeTypes) types.push(await findVolumeType(volume, null, identity));
  const groupType = await findGroupType(volume, ctx, input.groupType);
  const zone = await groupZone(volume, input.availabilityZone);
  const projectId = ctx.projectId ?? '';
  await checkGroupQuota(volume, projectId);
  const row: GroupRow = {
    id: randomUUID(),
    project_id: projectId,
    user_id: ctx.userId,
    host: null,
    availability_zone: zone,
    name: input.name,
    description: input.description,
    status: 'creating',
    group_type_id: groupType.id,
    group_snapshot_id: null,
    source_group_id: null,
    replication_status: 'disabled',
    created_at: now(),
    updated_at: null,
  };
  await insertGroup(volume, row, [...new Set(types.map((t) => t.id))]);
  volume.notify('group.create.start', groupUsage(row));
  let pool: string | null = null;
  try {
    pool = await placeGroup(volume, zone, types);
  } catch (err) {
    volume.log.warn({ err, group_id: row.id }, 'could not place the group');
  }
  const status = pool ? 'available' : 'error';
  await volume.db.updateTable('volume_group').set({ host: pool, status, updated_at: now() }).where('id', '=', row.id).where('status', '=', 'creating').execute();
  volume.notify(pool ? 'group.create.end' : 'group.create.error', groupUsage({ ...row, host: pool, status }));
  return { ...row, host: pool, status };
}

async function insertGroup(volume: VolumeService, row: GroupRow, typeIds: string[]): Promise<void> {
  await volume.db.transaction().execute(async (trx) => {
    await trx.insertInto('volume_group').values(row).execute();
    if (typeIds.length > 0) await trx.insertInto('group_volume_type').values(typeIds.map((volume_type_id) => ({ group_id: row.id, volume_type_id }))).execute();
  });
}

/** The notification payload of a group (Cinder's `_usage_from_group`). */
export function groupUsage(row: GroupRow): Record<string, unknown> {
  return { tenant_id: row.project_id, user_id: row.user_id, availability_zone: row.availability_zone, group_id: row.id, name: row.name, created_at: row.created_at, status: row.status };
}

/** A volume of a group made from a source: what `createVolume` is asked. */
export interface GroupMember {
  size: number;
  volumeTypeId: string;
  snapshotId: string | null;
  sourceVolid: string | null;
}

/** Creates one volume of a group made from a source (the volume create path, group checks skipped). */
export type CreateMember = (group: GroupRow, member: GroupMember) => Promise<void>;

/**
 * Creates a group from a group snapshot (a volume from each of its
 * snapshots) or from another group (a clone of each of its volumes), on
 * the source's backend; the group is `creating` until its volumes are made.
 * An empty source is refused; when a volume cannot be recorded the group
 * and the volumes made so far go.
 */
export async function createGroupFromSource(
  volume: VolumeService,
  ctx: RequestContext,
  input: { name: string | null; description: string | null; groupSnapshotId: string | null; sourceGroupId: string | null },
  createMember: CreateMember,
  deleteMembers: (group: GroupRow) => Promise<void>,
): Promise<GroupRow> {
  authorize(volume, ctx, 'group:create');
  let source: GroupRow;
  let members: GroupMember[];
  if (input.groupSnapshotId !== null) {
    const groupSnapshot = await getGroupSnapshot(volume, ctx, input.groupSnapshotId);
    source = await getGroup(volume, ctx, groupSnapshot.group_id);
    const snapshots = await volume.db.selectFrom('snapshot').selectAll().where('group_snapshot_id', '=', groupSnapshot.id).orderBy('created_at').execute();
    if (snapshots.length === 0) throw invalidGroup('Group snapshot is empty. No group will be created.');
    members = snapshots.map((s) => ({ size: s.volume_size, volumeTypeId: s.volume_type_id, snapshotId: s.id, sourceVolid: null }));
  } else if (input.sourceGroupId !== null) {
    source = await getGroup(volume, ctx, input.sourceGroupId);
    const volumes = await groupVolumes(volume, source.id);
    if (volumes.length === 0) throw invalidGroup('Source Group is empty. No group will be created.');
    members = volumes.map((v) => ({ size: v.size, volumeTypeId: v.volume_type_id, snapshotId: null, sourceVolid: v.id }));
  } else {
    throw badRequest('Either group_snapshot_id or source_group_id must be given.');
  }
  if (!source.host) throw invalidGroup(`No valid host to create group ${source.id}.`);
  await checkGroupQuota(volume, ctx.projectId ?? '');
  const typeIds = (await groupVolumeTypes(volume, [source.id])).get(source.id) ?? [];
  const row: GroupRow = {
    id: randomUUID(),
    project_id: ctx.projectId ?? '',
    user_id: ctx.userId,
    host: source.host,
    availability_zone: source.availability_zone,
    name: input.name,
    description: input.description,
    status: 'creating',
    group_type_id: source.group_type_id,
    group_snapshot_id: input.groupSnapshotId,
    source_group_id: input.groupSnapshotId === null ? input.sourceGroupId : null,
    replication_status: 'disabled',
    created_at: now(),
    updated_at: null,
  };
  await insertGroup(volume, row, [...new Set([...typeIds, ...members.map((m) => m.volumeTypeId)])]);
  volume.notify('group.create.start', groupUsage(row));
  try {
    for (const member of members) await createMember(row, member);
  } catch (err) {
    await deleteMembers(row).catch((cleanup: unknown) => volume.log.warn({ err: cleanup, group_id: row.id }, 'could not remove the volumes of a failed group'));
    await destroyGroupRows(volume, row.id);
    throw err;
  }
  await settleGroup(volume, row.id);
  return row;
}

/** The comma-separated ids of `add_volumes`/`remove_volumes`. */
function idList(text: string | null): string[] {
  if (!text) return [];
  return text
    .replace(/^,+|,+$/g, '')
    .split(',')
    .filter((id) => id !== '');
}

/**
 * Renames a group and adds or removes volumes (Cinder's `group.API.update`;
 * the generic implementation needs no backend, so the volumes change at
 * once and the group stays `available`). 400 for a volume that cannot join
 * or leave, with nothing changed.
 */
export async function updateGroup(volume: VolumeService, ctx: RequestContext, group: GroupRow, input: { name: string | null | undefined; description: string | null | undefined; addVolumes: string | null; removeVolumes: string | null }): Promise<void> {
  authorize(volume, ctx, 'group:update', groupTarget(group));
  const name = input.name === group.name ? undefined : input.name;
  const description = input.description === group.description ? undefined : input.description;
  const add = idList(input.addVolumes);
  const remove = idList(input.removeVolumes);
  const both = add.filter((id) => remove.includes(id));
  if (both.length > 0) throw badRequest(`Invalid volume: UUIDs ${pyList(both)} are in both add and remove volume list.`);
  const members = await groupVolumes(volume, group.id);
  const toRemove: string[] = [];
  for (const id of remove) {
    const member = members.find((v) => v.id === id);
    if (!member) throw badRequest(`Invalid volume: Cannot remove volume ${id} from group ${group.id} because it is not in the group.`);
    if (!REMOVABLE.includes(member.status)) {
      throw badRequest(`Invalid volume: Cannot remove volume ${id} from group ${group.id} because volume is in an invalid state: ${member.status}. Valid states are: ${pyList(REMOVABLE, true)}.`);
    }
    toRemove.push(id);
  }
  const toAdd: string[] = [];
  const typeIds = (await groupVolumeTypes(volume, [group.id])).get(group.id) ?? [];
  for (const id of add) {
    if (members.some((v) => v.id === id)) continue;
    const vol = await volume.db.selectFrom('volume').selectAll().where('id', '=', id).executeTakeFirst();
    const cannot = `Invalid volume: Cannot add volume ${id} to group ${group.id}`;
    if (!vol || (vol.project_id !== ctx.projectId && !isAdmin(volume, ctx))) throw badRequest(`${cannot} because volume cannot be found.`);
    if (vol.group_id) throw badRequest(`${cannot} because it is already in group ${vol.group_id}.`);
    if (vol.project_id !== group.project_id) throw badRequest(`${cannot} as they belong to different projects.`);
    if (!typeIds.includes(vol.volume_type_id)) throw badRequest(`${cannot} because volume type ${vol.volume_type_id} is not supported by the group.`);
    if (!ADDABLE.includes(vol.status)) throw badRequest(`${cannot} because volume is in an invalid state: ${vol.status}. Valid states are: ${pyList(ADDABLE, true)}.`);
    if (backendOfHost(vol.host) !== backendOfHost(group.host)) throw badRequest('Invalid volume: Volume is not local to this node.');
    toAdd.push(id);
  }
  if ((name === undefined || name === null) && (description === undefined || description === null) && toAdd.length === 0 && toRemove.length === 0) {
    throw invalidGroup(`Cannot update group ${group.id} because no valid name, description, add_volumes, or remove_volumes were provided.`);
  }
  const changesVolumes = toAdd.length > 0 || toRemove.length > 0;
  await volume.db.transaction().execute(async (trx) => {
    const values: Partial<GroupRow> = { updated_at: now() };
    if (name !== undefined && name !== null) values.name = name;
    if (description !== undefined && description !== null) values.description = description;
    if (!changesVolumes) values.status = 'available';
    let q = trx.updateTable('volume_group').set(values).where('id', '=', group.id);
    if (changesVolumes) q = q.where('status', '=', 'available');
    const res = await q.executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw invalidGroup('Group status must be available.');
    if (toAdd.length > 0) await trx.updateTable('volume').set({ group_id: group.id, updated_at: now() }).where('id', 'in', toAdd).where('group_id', 'is', null).execute();
    if (toRemove.length > 0) await trx.updateTable('volume').set({ group_id: null, updated_at: now() }).where('id', 'in', toRemove).where('group_id', '=', group.id).execute();
  });
  volume.notify('group.update.end', groupUsage({ ...group, name: name ?? group.name }));
}

/**
 * Deletes a group (Cinder's `group.API.delete`): with `deleteVolumes` its
 * volumes go too (none attached, none with snapshots); without, it must be
 * empty and `available` or `error`. A group with group snapshots stays.
 * The group row goes when its last volume is gone.
 */
export async function deleteGroup(volume: VolumeService, ctx: RequestContext, group: GroupRow, deleteVolumes: boolean, deleteMember: (row: VolumeRow) => Promise<void>): Promise<void> {
  authorize(volume, ctx, 'group:delete', groupTarget(group));
  const volumes = await groupVolumes(volume, group.id);
  if (!group.host && volumes.length === 0) {
    await destroyGroupRows(volume, group.id);
    volume.notify('group.delete.end', groupUsage({ ...group, status: 'deleted' }));
    return;
  }
  if (!deleteVolumes && !['available', 'error'].includes(group.status)) throw invalidGroup(`Group status must be available or error, but current status is: ${group.status}`);
  const snapshots = await volume.db.selectFrom('group_snapshot').select('id').where('group_id', '=', group.id).executeTakeFirst();
  if (snapshots) throw invalidGroup('Group has existing snapshots.');
  if (volumes.length > 0 && !deleteVolumes) throw invalidGroup(`Group ${group.id} still contains volumes. The delete-volumes flag is required to delete it.`);
  for (const vol of volumes) {
    if (vol.attach_status === 'attached') throw invalidGroup(`Volume in group ${group.id} is attached. Need to detach first.`);
    const snap = await volume.db.selectFrom('snapshot').select('id').where('volume_id', '=', vol.id).executeTakeFirst();
    if (snap) throw invalidGroup('Volume in group still has dependent snapshots.');
  }
  const creating = await volume.db
    .selectFrom('volume_group')
    .select('id')
    .where('status', '=', 'creating')
    .where((eb) => eb.or([eb('source_group_id', '=', group.id)]))
    .executeTakeFirst();
  let q = volume.db.updateTable('volume_group').set({ status: 'deleting', updated_at: now() }).where('id', '=', group.id);
  if (!deleteVolumes) q = q.where('status', 'in', ['available', 'error']);
  const res = creating ? { numUpdatedRows: 0n } : await q.executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) {
    const reason = deleteVolumes ? 'Group status must be available or error and must not have dependent group snapshots' : 'Group must not have attached volumes, volumes with snapshots, or dependent group snapshots';
    throw invalidGroup(`Cannot delete group ${group.id}. ${reason}, and it cannot be the source for an ongoing group or group snapshot creation.`);
  }
  volume.notify('group.delete.start', groupUsage({ ...group, status: 'deleting' }));
  await volume.db.updateTable('volume').set({ status: 'deleting', updated_at: now() }).where('group_id', '=', group.id).execute();
  for (const vol of volumes) await deleteMember({ ...vol, status: 'deleting' });
  await settleGroup(volume, group.id);
}

/** Sets a group's status (administrators; `reset_status`, 3.20). */
export async function resetGroupStatus(volume: VolumeService, ctx: RequestContext, group: GroupRow, status: string): Promise<void> {
  authorize(volume, ctx, 'group:reset_status', groupTarget(group));
  await volume.db.updateTable('volume_group').set({ status, updated_at: now() }).where('id', '=', group.id).execute();
}

/**
 * Moves a group out of a transient status once its volumes are done: a
 * `creating` group becomes `available` (every volume available) or
 * `error`; a `deleting` group goes when its last volume has, or becomes
 * `error_deleting` when a volume could not be deleted. Idempotent; called
 * by the conductor after each volume change.
 */
export async function settleGroup(volume: VolumeService, groupId: string): Promise<void> {
  const group = await volume.db.selectFrom('volume_group').selectAll().where('id', '=', groupId).executeTakeFirst();
  if (!group) return;
  const volumes = await volume.db.selectFrom('volume').select('status').where('group_id', '=', groupId).execute();
  if (group.status === 'creating') {
    if (volumes.some((v) => v.status === 'creating')) return;
    const status = volumes.every((v) => v.status === 'available') ? 'available' : 'error';
    const res = await volume.db.updateTable('volume_group').set({ status, updated_at: now() }).where('id', '=', groupId).where('status', '=', 'creating').executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) volume.notify(status === 'available' ? 'group.create.end' : 'group.create.error', groupUsage({ ...group, status }));
  } else if (group.status === 'deleting') {
    if (volumes.length === 0) {
      await destroyGroupRows(volume, groupId);
      volume.notify('group.delete.end', groupUsage({ ...group, status: 'deleted' }));
    } else if (!volumes.some((v) => v.status === 'deleting')) {
      await volume.db.updateTable('volume_group').set({ status: 'error_deleting', updated_at: now() }).where('id', '=', groupId).where('status', '=', 'deleting').execute();
    }
  }
}

/** `settleGroup` for the group of a volume, if it has one. */
export async function settleGroupOfVolume(volume: VolumeService, volumeId: string): Promise<void> {
  const row = await volume.db.selectFrom('volume').select('group_id').where('id', '=', volumeId).executeTakeFirst();
  if (row?.group_id) await settleGroup(volume, row.group_id);
}

/** Takes one snapshot of a volume of a group snapshot (the snapshot path, with the group snapshot's id). */
export type SnapshotMember = (row: VolumeRow, groupSnapshot: GroupSnapshotRow) => Promise<void>;

/**
 * Creates a group snapshot (`creating`) and a snapshot of each volume of
 * the group; it becomes `available` when they all are. Every volume must
 * be `available` or `in-use` (nothing is taken otherwise); when a snapshot
 * cannot be recorded, those taken so far and the group snapshot go.
 */
export async function createGroupSnapshot(
  volume: VolumeService,
  ctx: RequestContext,
  group: GroupRow,
  input: { name: string | null; description: string | null },
  snapshotMember: SnapshotMember,
  dropMembers: (groupSnapshot: GroupSnapshotRow) => Promise<void>,
): Promise<GroupSnapshotRow> {
  authorize(volume, ctx, 'group:create_group_snapshot', groupTarget(group));
  const volumes = await groupVolumes(volume, group.id);
  for (const vol of volumes) {
    if (!['available', 'in-use'].includes(vol.status)) throw badRequest(`Invalid volume: Volume ${vol.id} status must be available or in-use, but current status is: ${vol.status}.`);
    if (!vol.host) throw badRequest('Invalid volume: The snapshot cannot be created because volume has not been scheduled to any host.');
  }
  const row: GroupSnapshotRow = {
    id: randomUUID(),
    group_id: group.id,
    project_id: ctx.projectId ?? group.project_id,
    user_id: ctx.userId,
    name: input.name,
    description: input.description,
    status: 'creating',
    group_type_id: group.group_type_id,
    created_at: now(),
    updated_at: null,
  };
  await volume.db.insertInto('group_snapshot').values(row).execute();
  volume.notify('group_snapshot.create.start', groupSnapshotUsage(row));
  try {
    for (const vol of volumes) await snapshotMember(vol, row);
  } catch (err) {
    await dropMembers(row).catch((cleanup: unknown) => volume.log.warn({ err: cleanup, group_snapshot_id: row.id }, 'could not remove the snapshots of a failed group snapshot'));
    await volume.db.deleteFrom('group_snapshot').where('id', '=', row.id).execute();
    throw err;
  }
  await settleGroupSnapshot(volume, row.id);
  return row;
}

/**
 * Deletes a group snapshot: `available` or `error`, no group being created
 * from it; its snapshots go to `deleting` and `deleteMember` removes each;
 * the row goes with the last of them.
 */
export async function deleteGroupSnapshot(volume: VolumeService, ctx: RequestContext, groupSnapshot: GroupSnapshotRow, deleteMember: (snapshotId: string) => Promise<void>): Promise<void> {
  authorize(volume, ctx, 'group:delete_group_snapshot', groupTarget(groupSnapshot));
  const source = await volume.db.selectFrom('volume_group').select('id').where('group_snapshot_id', '=', groupSnapshot.id).where('status', '=', 'creating').executeTakeFirst();
  const res = source
    ? { numUpdatedRows: 0n }
    : await volume.db.updateTable('group_snapshot').set({ status: 'deleting', updated_at: now() }).where('id', '=', groupSnapshot.id).where('status', 'in', ['available', 'error']).executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) {
    throw badRequest('Invalid GroupSnapshot: GroupSnapshot status must be available or error, and no Group can be currently using it as source for its creation.');
  }
  volume.notify('group_snapshot.delete.start', groupSnapshotUsage({ ...groupSnapshot, status: 'deleting' }));
  const snapshots = await volume.db.selectFrom('snapshot').select('id').where('group_snapshot_id', '=', groupSnapshot.id).execute();
  await volume.db.updateTable('snapshot').set({ status: 'deleting', updated_at: now() }).where('group_snapshot_id', '=', groupSnapshot.id).execute();
  for (const snap of snapshots) await deleteMember(snap.id);
  await settleGroupSnapshot(volume, groupSnapshot.id);
}

/** Sets a group snapshot's status (administrators; `reset_status`, 3.19). */
export async function resetGroupSnapshotStatus(volume: VolumeService, ctx: RequestContext, groupSnapshot: GroupSnapshotRow, status: string): Promise<void> {
  authorize(volume, ctx, 'group:reset_group_snapshot_status', groupTarget(groupSnapshot));
  await volume.db.updateTable('group_snapshot').set({ status, updated_at: now() }).where('id', '=', groupSnapshot.id).execute();
}

/** The notification payload of a group snapshot (Cinder's `_usage_from_group_snapshot`). */
export function groupSnapshotUsage(row: GroupSnapshotRow): Record<string, unknown> {
  return { tenant_id: row.project_id, user_id: row.user_id, group_snapshot_id: row.id, name: row.name, group_id: row.group_id, created_at: row.created_at, status: row.status };
}

/**
 * Moves a group snapshot out of `creating` (`available` when every
 * snapshot is, else `error`) or `deleting` (the row goes with its last
 * snapshot; `error_deleting` when one could not be deleted). Idempotent;
 * called by the conductor after each snapshot change.
 */
export async function settleGroupSnapshot(volume: VolumeService, groupSnapshotId: string): Promise<void> {
  const row = await volume.db.selectFrom('group_snapshot').selectAll().where('id', '=', groupSnapshotId).executeTakeFirst();
  if (!row) return;
  const snapshots = await volume.db.selectFrom('snapshot').select('status').where('group_snapshot_id', '=', groupSnapshotId).execute();
  if (row.status === 'creating') {
    if (snapshots.some((s) => s.status === 'creating')) return;
    const status = snapshots.every((s) => s.status === 'available') ? 'available' : 'error';
    const res = await volume.db.updateTable('group_snapshot').set({ status, updated_at: now() }).where('id', '=', row.id).where('status', '=', 'creating').executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) volume.notify(status === 'available' ? 'group_snapshot.create.end' : 'group_snapshot.create.error', groupSnapshotUsage({ ...row, status }));
  } else if (row.status === 'deleting') {
    if (snapshots.length === 0) {
      await volume.db.deleteFrom('group_snapshot').where('id', '=', row.id).execute();
      volume.notify('group_snapshot.delete.end', groupSnapshotUsage({ ...row, status: 'deleted' }));
    } else if (!snapshots.some((s) => s.status === 'deleting')) {
      await volume.db.updateTable('group_snapshot').set({ status: 'error_deleting', updated_at: now() }).where('id', '=', row.id).where('status', '=', 'deleting').execute();
    }
  }
}

/** `settleGroupSnapshot` for the group snapshot of a snapshot, if it has one. */
export async function settleGroupSnapshotOf(volume: VolumeService, snapshotId: string): Promise<void> {
  const row = await volume.db.selectFrom('snapshot').select('group_snapshot_id').where('id', '=', snapshotId).executeTakeFirst();
  if (row?.group_snapshot_id) await settleGroupSnapshot(volume, row.group_snapshot_id);
}

function backendOfHost(host: string | null): string | null {
  return host ? (host.split('#')[0] ?? null) : null;
}

/** A Python list or tuple repr of strings (`['a', 'b']`, `('a', 'b')`). */
function pyList(items: string[], tuple = false): string {
  const inner = items.map((i) => `'${i}'`).join(', ');
  return tuple ? `(${inner})` : `[${inner}]`;
}
