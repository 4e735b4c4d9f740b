import { capacityOf } from './inventories.js';
import type { AggregateFilter, TraitFilter } from './query-filters.js';

/**
 * Allocation candidates, computed in memory from a {@link World} loaded in a
 * few queries (candidates-data.ts), with placement's semantics:
 * - the unsuffixed group may be satisfied by several providers of one tree
 *   (a root and its descendants) plus sharing providers
 *   (MISC_SHARES_VIA_AGGREGATE) of an aggregate the tree is in; its required
 *   traits hold for the providers used, together;
 * - each suffixed group (1.25) is satisfied by one provider;
 * - all groups of one candidate share an anchor (the root of the tree),
 *   `group_policy=isolate` puts suffixed groups on different providers,
 *   `same_subtree` (1.36) puts the named groups under one of their providers,
 *   `root_required` (1.35) filters anchors by the root's traits;
 * - an aggregate on a root counts for its whole tree.
 */

/** One request group (`resources<S>`, `required<S>`, `member_of<S>`, `in_tree<S>`). */
export interface RequestGroup {
  suffix: string;
  /** True for suffixed groups: one provider satisfies the whole group. */
  sameProvider: boolean;
  resources: Map<string, number>;
  traits: TraitFilter;
  aggregates: AggregateFilter;
  inTree: string | null;
}

/** Parameters of the whole request. */
export interface RequestWide {
  limit: number | null;
  groupPolicy: 'none' | 'isolate' | null;
  rootRequired: { required: Set<string>; forbidden: Set<string> } | null;
  sameSubtree: string[][];
  /** 1.29+: candidates may combine providers of one tree. */
  nestedAware: boolean;
}

/** A provider of a candidate tree. */
export interface WorldProvider {
  id: number;
  uuid: string;
  parentId: number | null;
  rootId: number;
}

/** An inventory record with what is used of it. */
export interface WorldInventory {
  total: number;
  reserved: number;
  minUnit: number;
  maxUnit: number;
  stepSize: number;
  ratio: number;
  used: number;
}

/** The providers that can matter to a request: the candidate trees with their inventories, usage, traits and aggregates. */
export interface World {
  providers: Map<number, WorldProvider>;
  /** By provider id, then class name. */
  inventories: Map<number, Map<string, WorldInventory>>;
  traits: Map<number, Set<string>>;
  aggregates: Map<number, Set<string>>;
  /** Sharing provider id to the roots of trees it shares with. */
  anchors: Map<number, Set<number>>;
  /** `in_tree` UUIDs to their root ids (absent: no such provider). */
  treeRoots: Map<string, number>;
}

/** One amount of one class from one provider. */
export interface CandidatePart {
  providerId: number;
  resourceClass: string;
  amount: number;
}

/** One allocation request: the parts and which providers satisfied which group. */
export interface Candidate {
  anchor: number;
  parts: CandidatePart[];
  mappings: Map<string, Set<number>>;
}

const EMPTY = new Set<string>();

function fits(inv: WorldInventory | undefined, amount: number): boolean {
  if (!inv) return false;
  return (inv.total - inv.reserved) * inv.ratio >= inv.used + amount && inv.minUnit <= amount && amount <= inv.maxUnit && amount % inv.stepSize === 0;
}

function traitsSatisfy(traits: Set<string>, filter: TraitFilter): boolean {
  return filter.required.every((any) => any.some((t) => traits.has(t)));
}

function hasForbidden(traits: Set<string>, filter: TraitFilter): boolean {
  for (const t of filter.forbidden) if (traits.has(t)) return true;
  return false;
}

function aggregatesOf(world: World, ids: number[]): Set<string> {
  const out = new Set<string>();
  for (const id of ids) for (const a of world.aggregates.get(id) ?? EMPTY) out.add(a);
  return out;
}

function aggregatesAllow(mine: Set<string>, filter: AggregateFilter): boolean {
  if (!filter.required.every((any) => any.some((a) => mine.has(a)))) return false;
  for (const a of filter.forbidden) if (mine.has(a)) return false;
  return true;
}

function rootAllowed(world: World, rootId: number, wide: RequestWide): boolean {
  if (!wide.rootRequired) return true;
  const traits = world.traits.get(rootId) ?? EMPTY;
  for (const t of wide.rootRequired.required) if (!traits.has(t)) return false;
  for (const t of wide.rootRequired.forbidden) if (traits.has(t)) return false;
  return true;
}

function inTreeRoot(world: World, group: RequestGroup): number | null | undefined {
  if (group.inTree === null) return undefined;
  return world.treeRoots.get(group.inTree) ?? null;
}

function sortedProviders(world: World): WorldProvider[] {
  return [...world.providers.values()].sort((a, b) => a.id - b.id);
}

/** Candidates of a suffixed group: single providers with room for all of it. */
function singleProviderCandidates(world: World, group: RequestGroup, wide: RequestWide): Candidate[] {
  const tree = inTreeRoot(world, group);
  if (tree === null) return [];
  const out: Candidate[] = [];
  for (const p of sortedProviders(world)) {
    if (tree !== undefined && p.rootId !== tree) continue;
    const invs = world.inventories.get(p.id);
    if (![...group.resources].every(([rc, amount]) => fits(invs?.get(rc), amount))) continue;
    const traits = world.traits.get(p.id) ?? EMPTY;
    if (!traitsSatisfy(traits, group.traits) || hasForbidden(traits, group.traits)) continue;
    if (!aggregatesAllow(aggregatesOf(world, [p.id, p.rootId]), group.aggregates)) continue;
    const anchors = new Set([p.rootId, ...(world.anchors.get(p.id) ?? [])]);
    for (const anchor of anchors) {
      if (!rootAllowed(world, anchor, wide)) continue;
      const parts = [...group.resources].map(([resourceClass, amount]) => ({ providerId: p.id, resourceClass, amount }));
      out.push({ anchor, parts, mappings: new Map([[group.suffix, new Set([p.id])]]) });
    }
  }
  return out;
}

/** Every combination of one element from each list. */
function* product<T>(lists: T[][]): Generator<T[]> {
  if (lists.length === 0) {
    yield [];
    return;
  }
  const [first, ...rest] = lists;
  for (const item of first ?? []) for (const tail of product(rest)) yield [item, ...tail];
}

/** Candidates of the unsuffixed group: providers of one tree (and sharing providers) that together have room and the traits. */
function treeCandidates(world: World, group: RequestGroup, wide: RequestWide): Candidate[] {
  const tree = inTreeRoot(world, group);
  if (tree === null) return [];
  // anchor -> class -> providers with room for that class
  const byAnchor = new Map<number, Map<string, number[]>>();
  const add = (anchor: number, rc: string, providerId: number): void => {
    const classes = byAnchor.get(anchor) ?? new Map<string, number[]>();
    byAnchor.set(anchor, classes);
    const list = classes.get(rc) ?? [];
    if (!list.includes(providerId)) list.push(providerId);
    classes.set(rc, list);
  };
  for (const p of sortedProviders(world)) {
    const traits = world.traits.get(p.id) ?? EMPTY;
    if (hasForbidden(traits, group.traits)) continue;
    const invs = world.inventories.get(p.id);
    for (const [rc, amount] of group.resources) {
      if (!fits(invs?.get(rc), amount)) continue;
      if ((tree === undefined || p.rootId === tree) && aggregatesAllow(aggregatesOf(world, [p.id, p.rootId]), group.aggregates)) add(p.rootId, rc, p.id);
      if (tree !== undefined) continue;
      for (const anchor of world.anchors.get(p.id) ?? []) {
        if (anchor !== p.rootId && aggregatesAllow(aggregatesOf(world, [p.id, anchor]), group.aggregates)) add(anchor, rc, p.id);
      }
    }
  }
  const classes = [...group.resources.keys()];
  const out: Candidate[] = [];
  for (const anchor of [...byAnchor.keys()].sort((a, b) => a - b)) {
    if (!rootAllowed(world, anchor, wide)) continue;
    const lists = classes.map((rc) => byAnchor.get(anchor)?.get(rc) ?? []);
    if (lists.some((l) => l.length === 0)) continue;
    for (const combo of product(lists)) {
      const used = new Set(combo);
      const traits = new Set<string>();
      for (const id of used) for (const t of world.traits.get(id) ?? EMPTY) traits.add(t);
      if (!traitsSatisfy(traits, group.traits)) continue;
      const parts = combo.map((providerId, i) => ({ providerId, resourceClass: classes[i] ?? '', amount: group.resources.get(classes[i] ?? '') ?? 0 }));
      out.push({ anchor, parts, mappings: new Map([[group.suffix, used]]) });
    }
  }
  return out;
}

/** A resourceless suffixed group (1.36, only within `same_subtree`): any provider of a known tree with the traits and aggregates. */
function resourcelessCandidates(world: World, group: RequestGroup, wide: RequestWide): Candidate[] {
  const tree = inTreeRoot(world, group);
  if (tree === null) return [];
  const out: Candidate[] = [];
  for (const p of sortedProviders(world)) {
    if (tree !== undefined && p.rootId !== tree) continue;
    const traits = world.traits.get(p.id) ?? EMPTY;
    if (!traitsSatisfy(traits, group.traits) || hasForbidden(traits, group.traits)) continue;
    if (!aggregatesAllow(aggregatesOf(world, [p.id, p.rootId]), group.aggregates) || !rootAllowed(world, p.rootId, wide)) continue;
    out.push({ anchor: p.rootId, parts: [], mappings: new Map([[group.suffix, new Set([p.id])]]) });
  }
  return out;
}

function ancestorsOf(world: World, id: number): Set<number> {
  const out = new Set<number>();
  for (let cur: number | null | undefined = id; cur !== null && cur !== undefined && !out.has(cur); cur = world.providers.get(cur)?.parentId) out.add(cur);
  return out;
}

function sameSubtree(world: World, combo: Candidate[], sets: string[][]): boolean {
  for (const suffixes of sets) {
    const ids = new Set<number>();
    for (const c of combo) for (const s of suffixes) for (const id of c.mappings.get(s) ?? []) ids.add(id);
    if (ids.size <= 1) continue;
    const common = [...ids].map((id) => ancestorsOf(world, id)).reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
    if (![...common].some((id) => ids.has(id))) return false;
  }
  return true;
}

function exceedsCapacity(world: World, parts: CandidatePart[]): boolean {
  for (const part of parts) {
    const inv = world.inventories.get(part.providerId)?.get(part.resourceClass);
    if (!inv || inv.used + part.amount > capacityOf({ total: inv.total, reserved: inv.reserved, allocation_ratio: inv.ratio }) || part.amount > inv.maxUnit) return true;
  }
  return false;
}

function consolidate(combo: Candidate[]): Candidate {
  const amounts = new Map<string, CandidatePart>();
  const mappings = new Map<string, Set<number>>();
  for (const c of combo) {
    for (const part of c.parts) {
      const key = `${part.providerId}:${part.resourceClass}`;
      const seen = amounts.get(key);
      if (seen) seen.amount += part.amount;
      else amounts.set(key, { ...part });
    }
    for (const [suffix, ids] of c.mappings) mappings.set(suffix, new Set([...(mappings.get(suffix) ?? []), ...ids]));
  }
  return { anchor: combo[0]?.anchor ?? 0, parts: [...amounts.values()], mappings };
}

function keyOf(c: Candidate): string {
  const parts = c.parts.map((p) => `${p.providerId}:${p.resourceClass}:${p.amount}`).sort();
  const maps = [...c.mappings].map(([s, ids]) => `${s}=${[...ids].sort((a, b) => a - b).join('.')}`).sort();
  return `${parts.join(',')}|${maps.join(',')}`;
}

/**
 * The allocation requests satisfying every group, in anchor order, and the
 * ids of the providers whose summaries go with them (every provider of the
 * trees used; with old microversions only those used). Limited to
 * `wide.limit` requests.
 */
export function computeCandidates(world: World, groups: RequestGroup[], wide: RequestWide): { candidates: Candidate[]; summaryProviders: number[] } {
  const perGroup = new Map<string, Candidate[]>();
  for (const group of groups) {
    let found: Candidate[];
    if (group.resources.size === 0) found = resourcelessCandidates(world, group, wide);
    else if (group.sameProvider) found = singleProviderCandidates(world, group, wide);
    else found = treeCandidates(world, group, wide);
    if (found.length === 0) return { candidates: [], summaryProviders: [] };
    perGroup.set(group.suffix, found);
  }
  const suffixes = groups.map((g) => g.suffix);
  const granular = groups.filter((g) => g.sameProvider).length;
  const anchors = new Map<number, Map<string, Candidate[]>>();
  for (const [suffix, list] of perGroup) {
    for (const c of list) {
      const bySuffix = anchors.get(c.anchor) ?? new Map<string, Candidate[]>();
      anchors.set(c.anchor, bySuffix);
      bySuffix.set(suffix, [...(bySuffix.get(suffix) ?? []), c]);
    }
  }
  const results: Candidate[] = [];
  const seen = new Set<string>();
  outer: for (const anchor of [...anchors.keys()].sort((a, b) => a - b)) {
    const bySuffix = anchors.get(anchor);
    const lists = suffixes.map((s) => bySuffix?.get(s) ?? []);
    if (lists.some((l) => l.length === 0)) continue;
    for (const combo of product(lists)) {
      if (wide.groupPolicy === 'isolate') {
        const distinct = new Set(combo.filter((_, i) => groups[i]?.sameProvider).flatMap((c) => [...c.mappings.values()].flatMap((ids) => [...ids])));
        if (distinct.size !== granular) continue;
      }
      if (!sameSubtree(world, combo, wide.sameSubtree)) continue;
      const merged = consolidate(combo);
      if (exceedsCapacity(world, merged.parts)) continue;
      if (!wide.nestedAware) {
        const used = new Set(merged.parts.map((p) => p.providerId));
        const roots = new Set([...used].map((id) => world.providers.get(id)?.rootId));
        if (roots.size !== used.size) continue;
      }
      const key = keyOf(merged);
      if (seen.has(key)) continue;
      seen.add(key);
      results.push(merged);
      if (wide.limit !== null && results.length >= wide.limit) break outer;
    }
  }
  const kept = results;
  let summaryProviders: number[];
  if (wide.nestedAware) {
    const roots = new Set(kept.flatMap((c) => c.parts.map((p) => world.providers.get(p.providerId)?.rootId)));
    summaryProviders = sortedProviders(world)
      .filter((p) => roots.has(p.rootId))
      .map((p) => p.id);
  } else {
    summaryProviders = [...new Set(kept.flatMap((c) => c.parts.map((p) => p.providerId)))].sort((a, b) => a - b);
  }
  return { candidates: kept, summaryProviders };
}
