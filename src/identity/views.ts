import { bool, isoTimeNoZone, parseJson } from './common.js';
import { GLOBAL_ROLE, ROOT_DOMAIN, type ProjectRow, type RoleRow, type UserRow } from './db/schema.js';
import { selfLink, type Identity } from './identity.js';

/** How Keystone writes each entity in responses. */

export function domainView(identity: Identity, row: ProjectRow, tags: string[] = []): Record<string, unknown> {
  return {
    ...parseJson(row.extra),
    id: row.id,
    name: row.name,
    description: row.description,
    enabled: bool(row.enabled),
    tags,
    options: {},
    links: selfLink(identity, `domains/${row.id}`),
  };
}

/** A project; a domain seen through the projects API has `is_domain: true` and no domain or parent. */
export function projectView(identity: Identity, row: ProjectRow, tags: string[] = []): Record<string, unknown> {
  const isDomain = row.is_domain === 1;
  return {
    ...parseJson(row.extra),
    id: row.id,
    name: row.name,
    description: row.description,
    enabled: bool(row.enabled),
    domain_id: isDomain || row.domain_id === ROOT_DOMAIN ? null : row.domain_id,
    parent_id: isDomain ? null : (row.parent_id ?? row.domain_id),
    is_domain: isDomain,
    tags,
    options: {},
    links: selfLink(identity, `projects/${row.id}`),
  };
}

export function userView(identity: Identity, row: UserRow): Record<string, unknown> {
  const view: Record<string, unknown> = {
    ...parseJson(row.extra),
    id: row.id,
    name: row.name,
    domain_id: row.domain_id,
    enabled: bool(row.enabled),
    password_expires_at: isoTimeNoZone(row.password_expires_at),
    options: parseJson(row.options),
    links: selfLink(identity, `users/${row.id}`),
  };
  if (row.default_project_id) view.default_project_id = row.default_project_id;
  return view;
}

export function groupView(identity: Identity, row: { id: string; name: string; domain_id: string; description: string | null; extra: string }): Record<string, unknown> {
  return { ...parseJson(row.extra), id: row.id, name: row.name, domain_id: row.domain_id, description: row.description ?? '', links: selfLink(identity, `groups/${row.id}`) };
}

export function roleView(identity: Identity, row: RoleRow): Record<string, unknown> {
  return {
    ...parseJson(row.extra),
    id: row.id,
    name: row.name,
    domain_id: row.domain_id === GLOBAL_ROLE ? null : row.domain_id,
    description: row.description,
    options: parseJson(row.options),
    links: selfLink(identity, `roles/${row.id}`),
  };
}

/** The short form of a role inside implied-role documents. */
export function roleRef(identity: Identity, row: RoleRow): Record<string, unknown> {
  return { id: row.id, name: row.name, links: selfLink(identity, `roles/${row.id}`) };
}
