import type { Kysely } from 'kysely';
import type { CatalogEntry } from '../core/auth/context.js';
import { bool, parseJson } from './common.js';
import type { IdentitySchema } from './db/schema.js';

/**
 * Builds the service catalog a token carries: every enabled service with its
 * enabled endpoints. URLs with `$(project_id)s`, `%(project_id)s` or
 * `%(tenant_id)s` get the token's project; without a project such endpoints
 * are left out, as Keystone does. When the project has endpoint filters
 * (OS-EP-FILTER: endpoints or endpoint groups associated to it), only those.
 */
export async function buildCatalog(db: Kysely<IdentitySchema>, projectId: string | null): Promise<CatalogEntry[]> {
  const services = await db.selectFrom('service').selectAll().where('enabled', '=', 1).execute();
  let endpoints = await db.selectFrom('endpoint').selectAll().where('enabled', '=', 1).execute();
  if (projectId) {
    const allowed = await filteredEndpointIds(db, projectId);
    if (allowed) endpoints = endpoints.filter((e) => allowed.has(e.id));
  }
  const catalog: CatalogEntry[] = [];
  for (const service of services) {
    const extra = parseJson(service.extra);
    const entries: CatalogEntry['endpoints'] = [];
    for (const e of endpoints.filter((x) => x.service_id === service.id)) {
      const url = substitute(e.url, projectId);
      if (url === null) continue;
      entries.push({ id: e.id, interface: e.interface, region: e.region_id, region_id: e.region_id, url });
    }
    catalog.push({ id: service.id, type: service.type, name: typeof extra.name === 'string' ? extra.name : '', endpoints: entries });
  }
  return catalog;
}

function substitute(url: string, projectId: string | null): string | null {
  const pattern = /\$\((project_id|tenant_id)\)s|%\((project_id|tenant_id)\)s/g;
  if (!pattern.test(url)) return url;
  if (!projectId) return null;
  return url.replace(pattern, projectId);
}

/** The endpoint ids a project is restricted to, or null when it has no filter. */
export async function filteredEndpointIds(db: Kysely<IdentitySchema>, projectId: string): Promise<Set<string> | null> {
  const direct = await db.selectFrom('project_endpoint').select('endpoint_id').where('project_id', '=', projectId).execute();
  const groups = await db
    .selectFrom('project_endpoint_group')
    .innerJoin('endpoint_group', 'endpoint_group.id', 'project_endpoint_group.endpoint_group_id')
    .select('endpoint_group.filters')
    .where('project_endpoint_group.project_id', '=', projectId)
    .execute();
  if (direct.length === 0 && groups.length === 0) return null;
  const ids = new Set(direct.map((r) => r.endpoint_id));
  if (groups.length > 0) {
    const all = await db.selectFrom('endpoint').selectAll().execute();
    for (const g of groups) {
      for (const e of endpointsMatching(all, parseJson(g.filters))) ids.add(e.id);
    }
  }
  return ids;
}

/** Endpoints that match an endpoint group's filters (`service_id`, `region_id`, `interface`). */
export function endpointsMatching<T extends { service_id: string; region_id: string | null; interface: string; enabled: number }>(
  endpoints: T[],
  filters: Record<string, unknown>,
): T[] {
  return endpoints.filter(
    (e) =>
      (filters.service_id === undefined || filters.service_id === e.service_id) &&
      (filters.region_id === undefined || filters.region_id === e.region_id) &&
      (filters.interface === undefined || filters.interface === e.interface) &&
      (filters.enabled === undefined || Boolean(filters.enabled) === bool(e.enabled)),
  );
}
