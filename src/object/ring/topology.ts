import type { RingDevice } from './ring.js';

/**
 * The targets of a rebalance: the tree of regions, zones, nodes and devices,
 * and how many part-replicas each should hold. Each device's share is in
 * proportion to its weight (a device holds a partition at most once), pulled
 * towards the most dispersed spread the topology allows (Swift's "wanted"
 * replicas) as far as `overload` lets a device go over its weight.
 */

/** A device of a builder: a ring device, possibly marked for removal at the next rebalance. */
export interface BuilderDevice extends RingDevice {
  /** Removed by `ring remove`: loses all its partitions at the next rebalance, then leaves the ring. */
  removed?: boolean;
}

/** Thrown when no ring can be built from the builder (too few devices, no weight). */
export class RebalanceError extends Error {}

const EPS = 1e-9;

/** One node of the topology tree: root (level 0), region, zone, node (ip:port), device (level 4). */
export interface Tier {
  level: number;
  key: string;
  children: Tier[];
  /** Weighted devices under this tier (a device tier has one). */
  devices: number[];
  weight: number;
  /** Target share of each partition's replicas (fractional). */
  share: number;
  /** Replicas of one partition this tier may hold: the ceiling of its share. */
  maxPerPart: number;
  /** Most replicas of one partition the topology lets this tier hold when spread as widely as possible. */
  dispersedMax: number;
  /** Part-replicas this tier should hold, and holds. */
  quota: number;
  count: number;
  /** Index for tie-breaking. */
  index: number;
}

/** The topology of the weighted devices and each device's path through it. */
export interface Topology {
  root: Tier;
  /** Device id → [root, region, zone, node, device] tiers; only weighted devices. */
  paths: Map<number, Tier[]>;
  /** Device id → weight-proportional share of each partition (capped at 1). */
  weighted: Map<number, number>;
}

/** The tier keys of a device: region, zone, node, device. */
export function tierKeys(d: RingDevice): [string, string, string, string] {
  const region = `r${d.region}`;
  const zone = `${region}z${d.zone}`;
  const node = `${zone}-${d.ip}:${d.port}`;
  return [region, zone, node, `${node}/d${d.id}`];
}

/** The devices that take partitions: not removed, weight > 0. */
export function weightedDevices(devices: (BuilderDevice | null)[]): BuilderDevice[] {
  return devices.filter((d): d is BuilderDevice => d !== null && !d.removed && d.weight > 0);
}

/**
 * Builds the topology tree of the devices that take partitions with each
 * tier's target share, per-partition maximum and quota for a ring of
 * `parts` partitions. Throws RebalanceError with fewer such devices than
 * replicas.
 */
export function buildTopology(devices: (BuilderDevice | null)[], replicas: number, parts: number, overload: number): Topology {
  const weighted = weightedDevices(devices);
  if (weighted.length < replicas) {
    throw new RebalanceError(`a ring of ${replicas} replicas needs at least ${replicas} devices with weight > 0 (it has ${weighted.length})`);
  }
  const { root, paths } = buildTree(weighted);
  // Weight first: each device's share by weight, at most once per partition.
  const byWeight = waterFill(weighted.map((d) => ({ id: d.id, weight: d.weight, cap: 1 })), replicas);
  const dispersed = dispersedShares(root, replicas);
  const shares = blend(byWeight, dispersed, overload);
  const quotas = integerQuotas(shares, parts, replicas);
  for (const [id, path] of paths) {
    for (const tier of path) {
      tier.share += shares.get(id) ?? 0;
      tier.quota += quotas.get(id) ?? 0;
    }
  }
  const finish = (tier: Tier): void => {
    tier.maxPerPart = Math.min(Math.ceil(tier.share - 1e-6), tier.devices.length);
    for (const child of tier.children) finish(child);
  };
  finish(root);
  return { root, paths, weighted: byWeight };
}

/** The tree root → region → zone → node → device of the devices, children in device id order. */
function buildTree(devices: BuilderDevice[]): { root: Tier; paths: Map<number, Tier[]> } {
  let counter = 0;
  const make = (level: number, key: string): Tier => ({
    level, key, children: [], devices: [], weight: 0, share: 0, maxPerPart: 0, dispersedMax: 0, quota: 0, count: 0, index: counter++,
  });
  const root = make(0, '');
  const paths = new Map<number, Tier[]>();
  const byKey = new Map<string, Tier>();
  for (const d of [...devices].sort((a, b) => a.id - b.id)) {
    const path = [root];
    let parent = root;
    for (const [i, key] of tierKeys(d).entries()) {
      let tier = byKey.get(key);
      if (!tier) {
        tier = make(i + 1, key);
        byKey.set(key, tier);
        parent.children.push(tier);
      }
      path.push(tier);
      parent = tier;
    }
    for (const tier of path) {
      tier.devices.push(d.id);
      tier.weight += d.weight;
    }
    paths.set(d.id, path);
  }
  return { root, paths };
}

/**
 * Dispersion first: down the tree, each tier's replicas spread over its
 * children as evenly as their sizes allow, by weight within that. Sets each
 * tier's `dispersedMax`; returns each device's share.
 */
function dispersedShares(root: Tier, replicas: number): Map<number, number> {
  const wanted = new Map<number, number>();
  const spread = (tier: Tier, share: number): void => {
    if (tier.level === 4) {
      wanted.set(tier.devices[0] ?? -1, share);
      return;
    }
    const caps = evenCaps(tier.children.map((c) => c.devices.length), Math.ceil(share - EPS));
    for (const [i, child] of tier.children.entries()) child.dispersedMax = caps[i] ?? 0;
    const shares = waterFill(tier.children.map((c, i) => ({ id: i, weight: c.weight, cap: caps[i] ?? 0 })), share);
    for (const [i, child] of tier.children.entries()) spread(child, shares.get(i) ?? 0);
  };
  root.dispersedMax = replicas;
  spread(root, replicas);
  return wanted;
}

/** From the weighted shares towards the dispersed ones, as far as no device goes over its weight by more than the overload. */
function blend(byWeight: Map<number, number>, dispersed: Map<number, number>, overload: number): Map<number, number> {
  let alpha = 1;
  for (const [id, w] of byWeight) {
    const extra = (dispersed.get(id) ?? 0) - w;
    if (extra > EPS) alpha = Math.min(alpha, (Math.max(overload, 0) * w) / extra);
  }
  const shares = new Map<number, number>();
  for (const [id, w] of byWeight) shares.set(id, w + alpha * ((dispersed.get(id) ?? 0) - w));
  return shares;
}

/** Whole part-replica counts from fractional shares, by largest remainder, adding up to every part-replica. */
function integerQuotas(shares: Map<number, number>, parts: number, replicas: number): Map<number, number> {
  const exact = [...shares].map(([id, s]) => ({ id, value: s * parts }));
  const quotas = new Map(exact.map(({ id, value }) => [id, Math.floor(value + EPS)]));
  let left = parts * replicas - [...quotas.values()].reduce((a, b) => a + b, 0);
  const remainder = (value: number): number => value - Math.floor(value + EPS);
  for (const { id } of [...exact].sort((a, b) => remainder(b.value) - remainder(a.value) || a.id - b.id)) {
    if (left <= 0) break;
    const q = quotas.get(id) ?? 0;
    if (q < parts) {
      quotas.set(id, q + 1);
      left -= 1;
    }
  }
  return quotas;
}

/**
 * Shares `total` among items in proportion to weight, none above its cap
 * (the caps must add up to at least `total`). Items of weight 0 get nothing.
 */
export function waterFill(items: { id: number; weight: number; cap: number }[], total: number): Map<number, number> {
  const result = new Map<number, number>();
  const live = items.filter((i) => i.weight > 0 && i.cap > 0).sort((a, b) => a.cap / a.weight - b.cap / b.weight);
  for (const i of items) result.set(i.id, 0);
  let remaining = total;
  let weight = live.reduce((a, i) => a + i.weight, 0);
  for (const item of live) {
    if (remaining <= EPS || weight <= 0) break;
    const take = Math.min(item.cap, (remaining * item.weight) / weight);
    result.set(item.id, take);
    remaining -= take;
    weight -= item.weight;
  }
  return result;
}

/** The smallest even per-child limits (each at most its capacity) that hold `need` replicas. */
function evenCaps(capacities: number[], need: number): number[] {
  for (let level = 1; level <= need; level += 1) {
    const caps = capacities.map((c) => Math.min(c, level));
    if (caps.reduce((a, b) => a + b, 0) >= need) return caps;
  }
  return capacities.map((c) => Math.min(c, need));
}
