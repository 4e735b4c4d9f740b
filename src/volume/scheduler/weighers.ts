import type { PoolState } from './filters.js';

/**
 * Cinder's CapacityWeigher: the pool with the most free room wins. On a
 * thin pool the room is the over-subscribed total less what is provisioned;
 * on a thick pool the free space; both less the reserved part.
 */
export function capacityWeight(pool: PoolState): number {
  const s = pool.stats;
  const total = Number(s.total_capacity_gb);
  const reserved = Math.floor(total * (Number(s.reserved_percentage || 0) / 100));
  if (s.thin_provisioning_support) return total * Number(s.max_over_subscription_ratio || 1) - Number(s.provisioned_capacity_gb || 0) - reserved;
  return Number(s.free_capacity_gb) - reserved;
}

/** The pools best first (ties by name, so that the choice is deterministic). */
export function weighPools(pools: PoolState[]): PoolState[] {
  return pools
    .map((pool) => ({ pool, weight: capacityWeight(pool) }))
    .sort((a, b) => b.weight - a.weight || a.pool.name.localeCompare(b.pool.name))
    .map((w) => w.pool);
}
