import { NotFound } from '../../core/errors.js';
import type { ProjectRow, RoleRow, UserRow } from '../db/schema.js';
import type { Identity } from '../identity.js';

/** Loaders that answer Keystone's 404 ("Could not find project: <id>.") for unknown ids. */

export async function getDomain(identity: Identity, id: string): Promise<ProjectRow> {
  const row = await identity.db.selectFrom('project').selectAll().where('id', '=', id).where('is_domain', '=', 1).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find domain: ${id}.`);
  return row;
}

/** A project; with `actingAsDomain`, also a domain seen through the projects API (`is_domain: true`). */
export async function getProject(identity: Identity, id: string, options: { actingAsDomain?: boolean } = {}): Promise<ProjectRow> {
  let q = identity.db.selectFrom('project').selectAll().where('id', '=', id);
  if (!options.actingAsDomain) q = q.where('is_domain', '=', 0);
  const row = await q.executeTakeFirst();
  if (!row) throw new NotFound(`Could not find project: ${id}.`);
  return row;
}

export async function getUser(identity: Identity, id: string): Promise<UserRow> {
  const row = await identity.db.selectFrom('user').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find user: ${id}.`);
  return row;
}

export async function getGroup(identity: Identity, id: string): Promise<{ id: string; name: string; domain_id: string; description: string | null; extra: string }> {
  const row = await identity.db.selectFrom('group').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find group: ${id}.`);
  return row;
}

export async function getRole(identity: Identity, id: string): Promise<RoleRow> {
  const row = await identity.db.selectFrom('role').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFound(`Could not find role: ${id}.`);
  return row;
}

/** Project tags, by project id. */
export async function tagsOf(identity: Identity, ids: string[]): Promise<Map<string, string[]>> {
  const map = new Map<string, string[]>();
  if (ids.length === 0) return map;
  const rows = await identity.db.selectFrom('project_tag').selectAll().where('project_id', 'in', ids).orderBy('name').execute();
  for (const r of rows) map.set(r.project_id, [...(map.get(r.project_id) ?? []), r.name]);
  return map;
}

/** The domain a new entity goes to when the request names none: the token's. */
export function defaultDomainOf(ctx: { domainId: string | null; projectDomainId: string | null; userDomainId: string }): string {
  return ctx.domainId ?? ctx.projectDomainId ?? ctx.userDomainId;
}
