import type { FastifyInstance, FastifyRequest } from 'fastify';
import { computeCandidates, type Candidate, type RequestGroup, type RequestWide, type World } from '../candidates.js';
import { loadWorld } from '../candidates-data.js';
import { ErrorCode, badRequest } from '../errors.js';
import { capacityOf } from '../inventories.js';
import { minorOf } from '../microversion.js';
import { authorize, type PlacementService } from '../placement.js';
import { parseInTree, parseMemberOf, parseRequired, parseResources, parseRootRequired } from '../query-filters.js';
import { checkQueryKeys, lastValue, queryOf, requireJsonAccepted } from '../validation.js';
import { registerRoutes, sendJson } from './routing.js';

const PREFIXES = 'resources|required|member_of|in_tree';

function allowedKeys(minor: number): (string | RegExp)[] {
  if (minor < 25) {
    const keys = ['resources'];
    if (minor >= 16) keys.push('limit');
    if (minor >= 17) keys.push('required');
    if (minor >= 21) keys.push('member_of');
    return keys;
  }
  const suffix = minor >= 33 ? '[a-zA-Z0-9_-]{1,64}' : '[1-9][0-9]*';
  const prefixes = minor >= 31 ? PREFIXES : 'resources|required|member_of';
  const keys: (string | RegExp)[] = [new RegExp(`^(${prefixes})(${suffix})?$`), 'group_policy', 'limit'];
  if (minor >= 35) keys.push('root_required');
  if (minor >= 36) keys.push('same_subtree');
  return keys;
}

function parseGroups(query: URLSearchParams, minor: number): RequestGroup[] {
  const suffix = minor >= 33 ? '[a-zA-Z0-9_-]{1,64}' : '[1-9][0-9]*';
  const pattern = new RegExp(`^(${PREFIXES})(${suffix})?$`);
  const groups = new Map<string, RequestGroup>();
  for (const key of new Set(query.keys())) {
    const match = pattern.exec(key);
    if (!match) continue;
    const prefix = match[1] ?? '';
    const s = match[2] ?? '';
    const group = groups.get(s) ?? { suffix: s, sameProvider: s !== '', resources: new Map(), traits: { required: [], forbidden: new Set() }, aggregates: { required: [], forbidden: new Set() }, inTree: null };
    groups.set(s, group);
    const value = lastValue(query, key) ?? '';
    if (prefix === 'resources') group.resources = parseResources(value);
    else if (prefix === 'required') group.traits = parseRequired(query, key, minor);
    else if (prefix === 'member_of') group.aggregates = parseMemberOf(query, key, minor);
    else group.inTree = parseInTree(value);
  }
  // The unsuffixed group first, then the others by suffix.
  return [...groups.values()].sort((a, b) => (a.suffix === '' ? -1 : b.suffix === '' ? 1 : a.suffix.localeCompare(b.suffix)));
}

function checkGroups(groups: RequestGroup[], wide: RequestWide, minor: number): void {
  if (minor >= 36) {
    const resourceless = groups.filter((g) => g.resources.size === 0).map((g) => g.suffix);
    if (resourceless.length === groups.length) throw badRequest('There must be at least one resources or resources[$S] parameter.', ErrorCode.QUERYPARAM_MISSING_VALUE);
    const inSubtree = new Set(wide.sameSubtree.flat());
    const bad = resourceless.filter((s) => !inSubtree.has(s));
    if (bad.length > 0) throw badRequest(`Resourceless suffixed group request should be specified in \`same_subtree\` query param: bad group(s) - ${JSON.stringify(bad)}.`, ErrorCode.QUERYPARAM_BAD_VALUE);
    const known = new Set(groups.map((g) => g.suffix));
    const unknown = [...inSubtree].filter((s) => !known.has(s));
    if (unknown.length > 0) throw badRequest(`Real suffixes should be specified in \`same_subtree\`: ${JSON.stringify(unknown)} not found in ${JSON.stringify([...known])}.`, ErrorCode.QUERYPARAM_BAD_VALUE);
  } else {
    const traitOrphans = groups.filter((g) => g.traits.required.length > 0 && g.resources.size === 0).map((g) => `required${g.suffix}`);
    if (traitOrphans.length > 0) throw badRequest(`All traits parameters must be associated with resources.  Found the following orphaned traits keys: ${traitOrphans.join(', ')}`);
    const aggOrphans = groups.filter((g) => g.resources.size === 0 && (g.aggregates.required.length > 0 || g.aggregates.forbidden.size > 0)).map((g) => `member_of${g.suffix}`);
    if (aggOrphans.length > 0) throw badRequest(`All member_of parameters must be associated with resources. Found the following orphaned member_of keys: ${aggOrphans.join(', ')}`);
    if (groups.some((g) => g.resources.size === 0)) throw badRequest('All request groups must specify resources.');
    if (groups.length === 0) throw badRequest('At least one request group (`resources` or `resources{$S}`) is required.');
  }
  if (minor >= 22) {
    const conflicting = groups.flatMap((g) => g.traits.required.filter((any) => any.every((t) => g.traits.forbidden.has(t))).map((any) => `required${g.suffix}: (${[...any].sort().join(', ')})`));
    if (conflicting.length > 0) throw badRequest(`Conflicting required and forbidden traits found in the following traits keys: ${conflicting.sort().join(', ')}`);
  }
  if (!wide.groupPolicy && groups.filter((g) => g.sameProvider).length > 1) {
    throw badRequest('The "group_policy" parameter is required when specifying more than one "resources{N}" parameter.');
  }
}

function parseWide(query: URLSearchParams, minor: number): RequestWide {
  const wide: RequestWide = { limit: null, groupPolicy: null, rootRequired: null, sameSubtree: [], nestedAware: minor >= 29 };
  const limits = query.getAll('limit');
  if (limits.length > 0) {
    const limit = limits[limits.length - 1] ?? '';
    if (!/^[1-9][0-9]*$/.test(limit)) throw badRequest(`Invalid query string parameters: '${limit}' does not match '^[1-9][0-9]*$'`);
    wide.limit = Number(limits[0]);
  }
  const policies = query.getAll('group_policy');
  if (policies.length > 0) {
    const last = policies[policies.length - 1] ?? '';
    if (last !== 'none' && last !== 'isolate') throw badRequest(`Invalid query string parameters: '${last}' is not one of ['none', 'isolate']`);
    wide.groupPolicy = policies[0] === 'isolate' ? 'isolate' : 'none';
  }
  const roots = query.getAll('root_required');
  if (roots.length > 1) throw badRequest("Query parameter 'root_required' may be specified only once.", ErrorCode.ILLEGAL_DUPLICATE_QUERYPARAM);
  if (roots[0] !== undefined) {
    const parsed = parseRootRequired(roots[0]);
    const clash = [...parsed.required].filter((t) => parsed.forbidden.has(t));
    if (clash.length > 0) throw badRequest(`Conflicting required and forbidden traits found in root_required: ${clash.join(', ')}`, ErrorCode.QUERYPARAM_BAD_VALUE);
    wide.rootRequired = parsed;
  }
  for (const value of query.getAll('same_subtree')) {
    const suffixes = [...new Set(value.split(',').map((s) => s.trim()))];
    if (suffixes.includes('')) throw badRequest('Empty string (unsuffixed group) can not be specified in `same_subtree` ', ErrorCode.QUERYPARAM_BAD_VALUE);
    wide.sameSubtree.push(suffixes);
  }
  return wide;
}

function requestView(world: World, c: Candidate, minor: number): Record<string, unknown> {
  const byProvider = new Map<string, Record<string, number>>();
  for (const part of c.parts) {
    const uuid = world.providers.get(part.providerId)?.uuid ?? '';
    const resources = byProvider.get(uuid) ?? {};
    resources[part.resourceClass] = part.amount;
    byProvider.set(uuid, resources);
  }
  if (minor < 12) return { allocations: [...byProvider].map(([uuid, resources]) => ({ resource_provider: { uuid }, resources })) };
  const view: Record<string, unknown> = { allocations: Object.fromEntries([...byProvider].map(([uuid, resources]) => [uuid, { resources }])) };
  if (minor >= 34) {
    view.mappings = Object.fromEntries([...c.mappings].map(([suffix, ids]) => [suffix, [...ids].map((id) => world.providers.get(id)?.uuid ?? '').sort()]));
  }
  return view;
}

function summariesView(world: World, ids: number[], requested: Set<string>, minor: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const id of ids) {
    const p = world.providers.get(id);
    if (!p) continue;
    const resources: Record<string, { capacity: number; used: number }> = {};
    for (const [rc, inv] of world.inventories.get(id) ?? []) {
      if (minor < 27 && !requested.has(rc)) continue;
      resources[rc] = { capacity: capacityOf({ total: inv.total, reserved: inv.reserved, allocation_ratio: inv.ratio }), used: inv.used };
    }
    const summary: Record<string, unknown> = { resources };
    if (minor >= 17) summary.traits = [...(world.traits.get(id) ?? [])].sort();
    if (minor >= 29) {
      summary.parent_provider_uuid = p.parentId === null ? null : (world.providers.get(p.parentId)?.uuid ?? null);
      summary.root_provider_uuid = world.providers.get(p.rootId)?.uuid ?? p.uuid;
    }
    out[p.uuid] = summary;
  }
  return out;
}

async function candidates(svc: PlacementService, req: FastifyRequest): Promise<Record<string, unknown>> {
  const minor = minorOf(req);
  const query = queryOf(req);
  checkQueryKeys(query, allowedKeys(minor));
  if (minor < 25 && !query.has('resources')) throw badRequest("Invalid query string parameters: 'resources' is a required property");
  const wide = parseWide(query, minor);
  const groups = parseGroups(query, minor);
  checkGroups(groups, wide, minor);
  const world = await loadWorld(svc, groups, wide, minor >= 27);
  const { candidates: found, summaryProviders } = computeCandidates(world, groups, wide);
  const requested = new Set(groups.flatMap((g) => [...g.resources.keys()]));
  return {
    allocation_requests: found.map((c) => requestView(world, c, minor)),
    provider_summaries: summariesView(world, summaryProviders, requested, minor),
  };
}

/** `GET /allocation_candidates` (1.10). */
export function registerAllocationCandidates(app: FastifyInstance, svc: PlacementService): void {
  registerRoutes(app, [
    {
      method: 'GET',
      url: '/allocation_candidates',
      since: 10,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:allocation_candidates:list');
        requireJsonAccepted(req);
        return sendJson(req, reply, 200, await candidates(svc, req));
      },
    },
  ]);
}
