import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import { isUniqueViolation } from '../core/db/database.js';
import { isoNow, newUuid, parseJson } from './common.js';
import { authorize, type ComputeService } from './compute.js';
import type { ComputeSchema, InstanceGroupRow } from './db/schema.js';
import { ComputeError, forbidden, notFound } from './errors.js';
import { lockProjectQuota, projectLimits } from './quotas.js';

/**
 * Server groups (Nova's instance groups): a name, one scheduling policy
 * with its rules, and the servers in it. A group belongs to the project that
 * made it; names need not be unique.
 */

type Db = Kysely<ComputeSchema>;

/** The policies a group may have (the soft ones from 2.15). */
export const GROUP_POLICIES = ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity'] as const;
export type GroupPolicy = (typeof GROUP_POLICIES)[number];

/** The rules of a group (only `anti-affinity` has any). */
export interface GroupRules {
  max_server_per_host?: number;
}

/** A server group as the API and the scheduler see it. */
export interface ServerGroup {
  uuid: string;
  name: string;
  project_id: string;
  user_id: string;
  policy: GroupPolicy;
  rules: GroupRules;
  created_at: string;
}

function toGroup(row: InstanceGroupRow): ServerGroup {
  const stored = parseJson<Record<string, unknown>>(row.rules, {});
  const rules: GroupRules = {};
  if (stored.max_server_per_host !== undefined) rules.max_server_per_host = Number(stored.max_server_per_host);
  return { uuid: row.uuid, name: row.name, project_id: row.project_id, user_id: row.user_id, policy: row.policy as GroupPolicy, rules, created_at: row.created_at };
}

/** Nova's message for a group that does not exist (404 in the group API, 400 in a server create's hint). */
export function groupNotFoundMessage(uuid: string): string {
  return `Instance group ${uuid} could not be found.`;
}

/** A group by uuid, whatever its project; undefined when there is none. */
export async function findGroup(db: Db, uuid: string): Promise<ServerGroup | undefined> {
  const row = await db.selectFrom('instance_group').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  return row ? toGroup(row) : undefined;
}

/**
 * Loads a group and checks `rule` on its project, as Nova does: a missing
 * group is 404, another project's group is the policy's 403 (not a 404).
 * With `rule` null, only loads (a server create's `group` hint names any
 * group the caller knows the uuid of).
 */
export async function loadGroupFor(compute: ComputeService, ctx: RequestContext, uuid: string, rule: string | null = 'os-server-groups:show'): Promise<ServerGroup> {
  const group = await findGroup(compute.db, uuid);
  if (!group) throw notFound(groupNotFoundMessage(uuid));
  if (rule !== null) authorize(compute, ctx, rule, { project_id: group.project_id });
  return group;
}

/** The servers in a group that are not deleted, oldest first. */
export async function groupMembers(db: Db, uuid: string): Promise<string[]> {
  return (await membersOf(db, [uuid])).get(uuid) ?? [];
}

/** The members of several groups at once (for lists). */
export async function membersOf(db: Db, uuids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < uuids.length; i += 500) {
    const rows = await db
      .selectFrom('instance_group_member as m')
      .innerJoin('instance as i', 'i.uuid', 'm.instance_uuid')
      .select(['m.group_uuid', 'm.instance_uuid'])
      .where('m.group_uuid', 'in', uuids.slice(i, i + 500))
      .where('i.deleted', '=', 0)
      .orderBy('i.created_at')
      .orderBy('i.uuid')
      .execute();
    for (const row of rows) {
      const list = out.get(row.group_uuid) ?? [];
      list.push(row.instance_uuid);
      out.set(row.group_uuid, list);
    }
  }
  return out;
}

/** Adds a server to a group; adding it again changes nothing. Call it in the transaction that records the server. */
export async function addMember(db: Db, groupUuid: string, instanceUuid: string): Promise<void> {
  const existing = await db.selectFrom('instance_group_member').select('instance_uuid').where('group_uuid', '=', groupUuid).where('instance_uuid', '=', instanceUuid).executeTakeFirst();
  if (existing) return;
  await db.insertInto('instance_group_member').values({ group_uuid: groupUuid, instance_uuid: instanceUuid }).execute();
}

/** The group a server is in, if any (for the server view's `server_groups` from 2.71). */
export async function groupOfServer(db: Db, instanceUuid: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('instance_group_member as m')
    .innerJoin('instance_group as g', 'g.uuid', 'm.group_uuid')
    .select('m.group_uuid')
    .where('m.instance_uuid', '=', instanceUuid)
    .executeTakeFirst();
  return row?.group_uuid;
}

/**
 * Refuses with Nova's 403 `Quota exceeded, too many servers in group` when
 * `adding` more servers of `userId` would pass the `server_group_members`
 * limit of the caller's project (the user's own limit when one is set).
 */
export async function checkGroupMembersQuota(compute: ComputeService, db: Db, projectId: string, userId: string, groupUuid: string, adding: number): Promise<void> {
  const limit = (await projectLimits(db, compute.config.compute, projectId, userId)).server_group_members;
  if (limit < 0) return;
  const row = await db
    .selectFrom('instance_group_member as m')
    .innerJoin('instance as i', 'i.uuid', 'm.instance_uuid')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('m.group_uuid', '=', groupUuid)
    .where('i.user_id', '=', userId)
    .where('i.deleted', '=', 0)
    .executeTakeFirst();
  if (Number(row?.n ?? 0) + adding > limit) throw forbidden('Quota exceeded, too many servers in group');
}

/** The groups of one project, or of every project; ordered oldest first, then `offset` and `limit` applied. */
export async function listGroups(db: Db, options: { projectId: string | null; offset: number; limit: number }): Promise<ServerGroup[]> {
  let query = db.selectFrom('instance_group').selectAll().orderBy('created_at').orderBy('uuid');
  if (options.projectId !== null) query = query.where('project_id', '=', options.projectId);
  const rows = await query.limit(options.limit).offset(options.offset).execute();
  return rows.map(toGroup);
}

async function checkGroupQuota(compute: ComputeService, db: Db, projectId: string, userId: string): Promise<void> {
  const limit = (await projectLimits(db, compute.config.compute, projectId)).server_groups;
  const projectCount = await db.selectFrom('instance_group').select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', projectId).executeTakeFirst();
  const overProject = limit >= 0 && Number(projectCount?.n ?? 0) + 1 > limit;
  const userLimit = await db.selectFrom('quota').select('hard_limit').where('project_id', '=', projectId).where('user_id', '=', userId).where('resource', '=', 'server_groups').executeTakeFirst();
  let overUser = false;
  if (userLimit && Number(userLimit.hard_limit) >= 0) {
    const userCount = await db.selectFrom('instance_group').select((eb) => eb.fn.countAll<number>().as('n')).where('project_id', '=', projectId).where('user_id', '=', userId).executeTakeFirst();
    overUser = Number(userCount?.n ?? 0) + 1 > Number(userLimit.hard_limit);
  }
  if (overProject || overUser) throw forbidden('Quota exceeded, too many server groups.');
}

/**
 * Creates a group in the caller's project after checking its
 * `server_groups` quota (project and, when set, user limits) under the
 * project's quota lock; 403 `Quota exceeded, too many server groups.` when
 * full. Not idempotent: each call makes a new group.
 */
export async function createGroup(compute: ComputeService, ctx: RequestContext, values: { name: string; policy: GroupPolicy; rules: GroupRules }): Promise<ServerGroup> {
  const projectId = ctx.projectId;
  if (!projectId) throw new ComputeError(400, 'A project-scoped token is needed to create a server group.');
  const row: InstanceGroupRow = {
    uuid: newUuid(),
    name: values.name,
    project_id: projectId,
    user_id: ctx.userId,
    policy: values.policy,
    rules: JSON.stringify(values.rules),
    created_at: isoNow(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      await compute.db.transaction().execute(async (trx) => {
        await lockProjectQuota(trx, projectId);
        await checkGroupQuota(compute, trx, projectId, ctx.userId);
        await trx.insertInto('instance_group').values(row).execute();
      });
      return toGroup(row);
    } catch (err) {
      if (!isUniqueViolation(err) || attempt >= 2) throw err;
      row.uuid = newUuid();
    }
  }
}

/** Deletes a group and its member list (the servers stay); false when it was gone already. */
export async function deleteGroup(db: Db, uuid: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const result = await trx.deleteFrom('instance_group').where('uuid', '=', uuid).executeTakeFirst();
    await trx.deleteFrom('instance_group_member').where('group_uuid', '=', uuid).execute();
    return Number(result.numDeletedRows) > 0;
  });
}
