import { buildTopology, type BuilderDevice, type Tier, type Topology } from './topology.js';

export { RebalanceError, type BuilderDevice } from './topology.js';

/**
 * The assignment of partitions to devices (Swift's `RingBuilder.rebalance`),
 * as pure functions of the builder's state: no files, no clock.
 *
 * The targets come from `topology.ts`. Then replicas on removed devices and
 * duplicates are freed, then replicas that crowd a region, zone or node
 * beyond what the targets allow, then replicas of devices over their quota;
 * each freed replica goes to the device that best spreads its partition
 * among those still under quota. Partitions moved less than
 * `min_part_hours` ago stay (except off removed devices), and then a
 * rebalance moves at most one replica of a partition (except off removed
 * devices), so that two replicas of a partition are never in flight at once;
 * with `min_part_hours` 0 neither limit holds (as Swift).
 */

/** Sentinel of an unassigned replica slot. */
export const UNASSIGNED = -1;

/** What a rebalance starts from. */
export interface RebalanceInput {
  partPower: number;
  replicas: number;
  /** Devices by id (null: an id no longer used). */
  devices: (BuilderDevice | null)[];
  /** The previous assignment, `[replica][partition]` → device id; null before the first rebalance. */
  assignment: Int32Array[] | null;
  /** Minute (since the epoch) each partition last moved; null before the first rebalance. */
  lastMoved: Uint32Array | null;
  minPartHours: number;
  /** How far (a fraction: 0.1 is 10%) a device may go over its weight so that partitions spread wider. */
  overload: number;
  /** The current minute since the epoch. */
  nowMinute: number;
  /** Seed of the pseudo-random choices (the same inputs and seed give the same ring). */
  seed: number;
}

/** What a rebalance gives. */
export interface RebalanceOutput {
  assignment: Int32Array[];
  lastMoved: Uint32Array;
  /** Partitions with at least one replica on another device than before. */
  movedPartitions: number;
  /** Replicas on another device than before (new replicas included). */
  movedReplicas: number;
}

/** Passes of gather-and-place in one rebalance (each moves only partitions not yet moved). */
const PASSES = 4;

/** Reassigns partitions; see the module comment. Throws RebalanceError when no ring can be built. */
export function rebalance(input: RebalanceInput): RebalanceOutput {
  return new Assignment(input).run();
}

/** One rebalance in progress. */
class Assignment {
  private readonly parts: number;
  private readonly topology: Topology;
  private readonly random: () => number;
  private readonly table: Int32Array[] = [];
  private readonly before: Int32Array[];
  private readonly lastMoved: Uint32Array;
  /** Partitions that had a replica freed in this rebalance. */
  private readonly moved: Uint8Array;
  /** Replica slots (`r * parts + p`) freed in this rebalance: never freed twice, so that nothing bounces. */
  private readonly slotMoved: Uint8Array;
  /** Part-replicas per device now, devices outside the tree (weight 0) included. */
  private readonly counts = new Map<number, number>();
  private readonly gathered: { p: number; r: number; from: number }[] = [];

  constructor(private readonly input: RebalanceInput) {
    const { replicas, partPower } = input;
    if (!Number.isInteger(partPower) || partPower < 1 || partPower > 24) throw new RangeError('the partition power must be from 1 to 24');
    if (!Number.isInteger(replicas) || replicas < 1) throw new RangeError('the replica count must be a whole number of at least 1');
    this.parts = 2 ** partPower;
    this.topology = buildTopology(input.devices, replicas, this.parts, input.overload);
    this.random = prng(input.seed);
    for (let r = 0; r < replicas; r += 1) {
      const previous = input.assignment?.[r];
      this.table.push(previous && previous.length === this.parts ? Int32Array.from(previous) : new Int32Array(this.parts).fill(UNASSIGNED));
    }
    this.before = this.table.map((row) => Int32Array.from(row));
    this.lastMoved = input.lastMoved && input.lastMoved.length === this.parts ? Uint32Array.from(input.lastMoved) : new Uint32Array(this.parts);
    this.moved = new Uint8Array(this.parts);
    this.slotMoved = new Uint8Array(this.parts * replicas);
  }

  run(): RebalanceOutput {
    this.freeForced();
    for (let pass = 0; pass < PASSES; pass += 1) {
      this.gatherCrowded();
      this.gatherOverQuota();
      if (this.gathered.length === 0) break;
      this.placeGathered();
    }
    let movedPartitions = 0;
    let movedReplicas = 0;
    for (let p = 0; p < this.parts; p += 1) {
      let changed = 0;
      for (const [r, row] of this.table.entries()) if (row[p] !== this.before[r]?.[p]) changed += 1;
      if (changed > 0) {
        movedPartitions += 1;
        movedReplicas += changed;
        this.lastMoved[p] = this.input.nowMinute;
      }
    }
    return { assignment: this.table, lastMoved: this.lastMoved, movedPartitions, movedReplicas };
  }

  /**
   * Whether replica r of partition p may be freed now: not if it was freed
   * already in this rebalance; with min_part_hours, only if the partition
   * last moved long enough ago and no other replica of it moved in this
   * rebalance.
   */
  private movable(p: number, r: number): boolean {
    if (this.slotMoved[r * this.parts + p]) return false;
    const { minPartHours, nowMinute } = this.input;
    if (minPartHours <= 0) return true;
    return !this.moved[p] && (this.lastMoved[p] ?? 0) + minPartHours * 60 <= nowMinute;
  }

  private quota(id: number): number {
    return this.topology.paths.get(id)?.[4]?.quota ?? 0;
  }

  private count(id: number, delta: number): void {
    this.counts.set(id, (this.counts.get(id) ?? 0) + delta);
    for (const tier of this.topology.paths.get(id) ?? []) tier.count += delta;
  }

  private unassign(p: number, r: number): void {
    const row = this.table[r] as Int32Array;
    const id = row[p] ?? UNASSIGNED;
    this.count(id, -1);
    row[p] = UNASSIGNED;
    this.moved[p] = 1;
    this.slotMoved[r * this.parts + p] = 1;
    this.gathered.push({ p, r, from: id });
  }

  /** Frees replicas on removed or unknown devices and a device's second replica of a partition; counts the rest. */
  private freeForced(): void {
    const { devices } = this.input;
    for (let p = 0; p < this.parts; p += 1) {
      const seen = new Set<number>();
      for (const [r, row] of this.table.entries()) {
        const id = row[p] ?? UNASSIGNED;
        const device = id >= 0 ? devices[id] : undefined;
        if (id !== UNASSIGNED && (!device || device.removed || seen.has(id))) {
          row[p] = UNASSIGNED;
          this.moved[p] = 1;
        }
        if (row[p] === UNASSIGNED) {
          this.gathered.push({ p, r, from: this.before[r]?.[p] ?? UNASSIGNED });
          continue;
        }
        seen.add(id);
        this.count(id, 1);
      }
    }
  }

  /** A partition crowding a region, zone or node beyond its per-partition maximum gives up one replica there. */
  private gatherCrowded(): void {
    for (let p = 0; p < this.parts; p += 1) {
      const victim = this.crowdedReplica(p);
      if (victim !== null && this.movable(p, victim)) this.unassign(p, victim);
    }
  }

  private crowdedReplica(p: number): number | null {
    const held: { r: number; path: Tier[] }[] = [];
    for (const [r, row] of this.table.entries()) {
      const path = this.topology.paths.get(row[p] ?? UNASSIGNED);
      if (path) held.push({ r, path });
    }
    const excess = (item: { path: Tier[] }): number => {
      const id = item.path[4]?.devices[0] ?? UNASSIGNED;
      return (this.counts.get(id) ?? 0) - this.quota(id);
    };
    for (let level = 1; level <= 3; level += 1) {
      const byTier = new Map<Tier, { r: number; path: Tier[] }[]>();
      for (const item of held) {
        const tier = item.path[level] as Tier;
        byTier.set(tier, [...(byTier.get(tier) ?? []), item]);
      }
      for (const [tier, items] of byTier) {
        // Free the replica whose device is furthest over its quota.
        if (items.length > tier.maxPerPart) return items.reduce((a, b) => (excess(b) > excess(a) ? b : a)).r;
      }
    }
    return null;
  }

  /**
   * Devices over quota give up replicas of partitions that may move, chosen
   * at random among those that some device under quota could take.
   */
  private gatherOverQuota(): void {
    const over = [...this.counts].filter(([id, n]) => n > this.quota(id)).map(([id]) => id);
    if (over.length === 0) return;
    const under = [...this.topology.paths.keys()].filter((id) => this.quota(id) > (this.counts.get(id) ?? 0));
    const holdings = new Map<number, { p: number; r: number }[]>(over.map((id) => [id, []]));
    for (const [r, row] of this.table.entries()) {
      for (let p = 0; p < this.parts; p += 1) holdings.get(row[p] ?? UNASSIGNED)?.push({ p, r });
    }
    // One freed replica of a partition per pass: two would compete for the same home.
    const pending = new Set(this.gathered.map((g) => g.p));
    for (const id of over) {
      let excess = (this.counts.get(id) ?? 0) - this.quota(id);
      for (const { p, r } of shuffle(holdings.get(id) ?? [], this.random)) {
        if (excess <= 0) break;
        if (pending.has(p) || !this.movable(p, r) || !this.hasHome(p, under)) continue;
        pending.add(p);
        this.unassign(p, r);
        excess -= 1;
      }
    }
  }

  /** Whether one of the `under` devices does not hold partition p yet. */
  private hasHome(p: number, under: number[]): boolean {
    return under.some((id) => this.table.every((row) => row[p] !== id));
  }

  /** Places the freed replicas partition by partition, partitions in a shuffled order. */
  private placeGathered(): void {
    const order = shuffle([...new Set(this.gathered.map((g) => g.p))], this.random);
    const rank = new Map(order.map((p, i) => [p, i]));
    this.gathered.sort((a, b) => (rank.get(a.p) ?? 0) - (rank.get(b.p) ?? 0) || a.r - b.r);
    for (const slot of this.gathered) {
      const held: number[] = [];
      for (const row of this.table) {
        const id = row[slot.p] ?? UNASSIGNED;
        if (id !== UNASSIGNED) held.push(id);
      }
      const id = choose(this.topology, slot.p, held, slot.from);
      (this.table[slot.r] as Int32Array)[slot.p] = id;
      this.count(id, 1);
    }
    this.gathered.length = 0;
  }
}

/**
 * The device for a replica of partition p that already has replicas on
 * `held`: down the tree, the child that (1) has a device without the
 * partition, (2) holds fewer of the partition than its per-partition
 * maximum, (3) is under quota, (4) holds the fewest of the partition, (5) is
 * furthest under quota; the previous device kept when it is as good, other
 * ties broken per partition.
 */
function choose(topology: Topology, p: number, held: number[], from: number): number {
  const heldPaths = held.map((id) => topology.paths.get(id)).filter((x): x is Tier[] => x !== undefined);
  const fromPath = topology.paths.get(from);
  let tier = topology.root;
  while (tier.level < 4) {
    let best: Tier | null = null;
    let bestScore: number[] = [];
    for (const child of tier.children) {
      const inChild = heldPaths.reduce((n, path) => n + (path[child.level] === child ? 1 : 0), 0);
      if (child.devices.length - inChild <= 0) continue;
      const wanted = child.quota - child.count;
      const score = [inChild < child.maxPerPart ? 1 : 0, wanted > 0 ? 1 : 0, -inChild, wanted, fromPath?.[child.level] === child ? 1 : 0, tieBreak(p, child.index)];
      if (!best || compareScores(score, bestScore) > 0) {
        best = child;
        bestScore = score;
      }
    }
    if (!best) throw new RangeError(`no device can take another replica of partition ${p}`);
    tier = best;
  }
  return tier.devices[0] ?? UNASSIGNED;
}

function compareScores(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i += 1) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function tieBreak(p: number, index: number): number {
  let h = Math.imul(p ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 13;
  h = Math.imul(h, 0x27d4eb2f);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A small seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
  return items;
}

/** Per-device holdings and the ring's balance and dispersion. */
export interface RingStats {
  /** Device id → part-replicas held. */
  parts: Map<number, number>;
  /** Device id → % over (+) or under (−) its weight's share; 999.99 for a weight-0 device still holding partitions. */
  deviceBalance: Map<number, number>;
  /** The largest absolute device balance. */
  balance: number;
  /** % of partitions with more replicas in a region, zone or node than the widest spread the topology allows. */
  dispersion: number;
}

/** Swift's cap on a device's reported balance. */
export const MAX_BALANCE = 999.99;

/** Computes the balance and dispersion of an assignment. */
export function ringStats(devices: (BuilderDevice | null)[], replicas: number, partPower: number, assignment: Int32Array[] | null): RingStats {
  const parts = 2 ** partPower;
  const counts = new Map<number, number>();
  for (const d of devices) if (d) counts.set(d.id, 0);
  for (const row of assignment ?? []) for (const id of row) if (id !== UNASSIGNED) counts.set(id, (counts.get(id) ?? 0) + 1);
  let topology: Topology | null = null;
  try {
    topology = buildTopology(devices, replicas, parts, 0);
  } catch {
    topology = null;
  }
  const deviceBalance = new Map<number, number>();
  for (const d of devices) {
    if (!d) continue;
    const held = counts.get(d.id) ?? 0;
    const share = topology?.weighted.get(d.id) ?? 0;
    if (share <= 0) deviceBalance.set(d.id, held > 0 ? MAX_BALANCE : 0);
    else deviceBalance.set(d.id, Math.min(MAX_BALANCE, (100 * held) / (share * parts) - 100));
  }
  const balance = Math.min(MAX_BALANCE, Math.max(0, ...[...deviceBalance.values()].map(Math.abs)));
  const dispersion = topology && assignment ? crowdedPercent(topology, assignment, parts) : 0;
  return { parts: counts, deviceBalance, balance, dispersion };
}

/** % of partitions with more replicas in some region, zone or node than the topology's widest spread allows. */
function crowdedPercent(topology: Topology, assignment: Int32Array[], parts: number): number {
  let crowded = 0;
  for (let p = 0; p < parts; p += 1) {
    const tally = new Map<Tier, number>();
    let bad = false;
    for (const row of assignment) {
      const path = topology.paths.get(row[p] ?? UNASSIGNED);
      for (let level = 1; path && level <= 3; level += 1) {
        const tier = path[level] as Tier;
        const n = (tally.get(tier) ?? 0) + 1;
        tally.set(tier, n);
        if (n > tier.dispersedMax) bad = true;
      }
    }
    if (bad) crowded += 1;
  }
  return (100 * crowded) / parts;
}
