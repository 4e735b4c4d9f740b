import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { ServiceClient } from '../core/auth/service-client.js';
import type { ImageConfig } from '../core/config.js';
import { OverLimit } from '../core/errors.js';
import type { Logger } from '../core/logging.js';
import type { ImageSchema } from './db/schema.js';

/** The per-project limits of the image service, as Glance names them in unified limits. */
export type ImageResource = 'image_count_total' | 'image_size_total' | 'image_stage_total' | 'image_count_uploading';

const RESOURCES: ImageResource[] = ['image_count_total', 'image_size_total', 'image_stage_total', 'image_count_uploading'];
const MIB = 1024 * 1024;
const CACHE_MS = 30_000;

interface LimitEntry {
  resource_name: string;
  region_id?: string | null;
  default_limit?: number;
  resource_limit?: number;
}

/** A project's limit of each resource; -1 is unlimited. Sizes in MiB. */
export type Limits = Record<ImageResource, number>;

/**
 * Per-project quotas (Glance with `use_keystone_limits`): limits come from
 * identity's unified limits for the image service (a project limit, else the
 * registered default), and fall back to `image.default_limits` when identity
 * has none. Usage is counted from the image database at the time of the
 * check. An operation that would take a project over a limit gets Glance's
 * 413 and changes nothing.
 */
export class Quotas {
  private readonly cache = new Map<string, { limits: Limits; until: number }>();

  constructor(
    private readonly db: Kysely<ImageSchema>,
    private readonly config: ImageConfig,
    private readonly client: Pick<ServiceClient, 'catalog' | 'request'> | null,
    private readonly region: string,
    private readonly log: Logger,
  ) {}

  /** The limits of a project (cached for 30 s). */
  async limits(projectId: string): Promise<Limits> {
    const hit = this.cache.get(projectId);
    if (hit && hit.until > Date.now()) return hit.limits;
    const limits: Limits = { ...this.config.default_limits };
    const fromIdentity = await this.unifiedLimits(projectId).catch((err: unknown) => {
      this.log.warn({ err }, 'unified limits unavailable; using image.default_limits');
      return null;
    });
    if (fromIdentity) Object.assign(limits, fromIdentity);
    this.cache.set(projectId, { limits, until: Date.now() + CACHE_MS });
    return limits;
  }

  /** What a project uses now: counts, and bytes for the sizes. */
  async usage(projectId: string): Promise<Record<ImageResource, number>> {
    const row = await this.db
      .selectFrom('image')
      .select([
        sql<number>`count(*)`.as('count_total'),
        sql<number>`coalesce(sum(case when status not in ('uploading', 'importing') then size else 0 end), 0)`.as('size_total'),
        sql<number>`coalesce(sum(case when status in ('uploading', 'importing') then size else 0 end), 0)`.as('stage_total'),
        sql<number>`coalesce(sum(case when status in ('saving', 'uploading', 'importing') then 1 else 0 end), 0)`.as('count_uploading'),
      ])
      .where('owner', '=', projectId)
      .where('deleted_at', 'is', null)
      .executeTakeFirstOrThrow();
    return {
      image_count_total: Number(row.count_total),
      image_size_total: Number(row.size_total),
      image_stage_total: Number(row.stage_total),
      image_count_uploading: Number(row.count_uploading),
    };
  }

  /**
   * Refuses (413) when adding `delta` of each named resource would take the
   * project over its limit. Sizes in `delta` are bytes. Resolves with how
   * many bytes the project may still store and stage (Infinity when
   * unlimited): an upload is cut off there.
   */
  async enforce(projectId: string, delta: Partial<Record<ImageResource, number>>): Promise<Record<'image_size_total' | 'image_stage_total', number>> {
    const [limits, usage] = await Promise.all([this.limits(projectId), this.usage(projectId)]);
    const over: string[] = [];
    for (const resource of RESOURCES) {
      if (!(resource in delta)) continue;
      const limit = limits[resource];
      if (limit < 0) continue;
      const sized = resource === 'image_size_total' || resource === 'image_stage_total';
      const used = sized ? Math.ceil(usage[resource] / MIB) : usage[resource];
      const adding = sized ? Math.ceil((delta[resource] ?? 0) / MIB) : (delta[resource] ?? 0);
      if (used + adding > limit) over.push(`Resource ${resource} is over limit of ${limit} due to current usage ${used} and delta ${adding}`);
    }
    if (over.length) throw new OverLimit(`Project ${projectId} is over a limit for [${over.join(', ')}]`);
    const room = (resource: 'image_size_total' | 'image_stage_total'): number => (limits[resource] < 0 ? Infinity : Math.max(0, limits[resource] * MIB - usage[resource]));
    return { image_size_total: room('image_size_total'), image_stage_total: room('image_stage_total') };
  }

  private async unifiedLimits(projectId: string): Promise<Partial<Limits> | null> {
    if (!this.client) return null;
    const service = (await this.client.catalog()).find((entry) => entry.type === 'image');
    if (!service) return null;
    const query = `service_id=${encodeURIComponent(service.id)}`;
    const registered = await this.client.request<{ registered_limits?: LimitEntry[] }>('identity', 'GET', `registered_limits?${query}`);
    if (registered.status === 404) return null;
    if (registered.status !== 200) throw new Error(`identity answered ${registered.status} to registered_limits`);
    const own = await this.client.request<{ limits?: LimitEntry[] }>('identity', 'GET', `limits?${query}&project_id=${encodeURIComponent(projectId)}`);
    if (own.status !== 200) throw new Error(`identity answered ${own.status} to limits`);
    const result: Partial<Limits> = {};
    // Defaults first, then the project's own; an entry for this region wins over one for every region.
    for (const [entries, field] of [[registered.body.registered_limits ?? [], 'default_limit'], [own.body.limits ?? [], 'resource_limit']] as const) {
      for (const pass of [null, this.region]) {
        for (const entry of entries) {
          if ((entry.region_id ?? null) !== pass || !(RESOURCES as string[]).includes(entry.resource_name)) continue;
          const value = entry[field];
          if (typeof value === 'number') result[entry.resource_name as ImageResource] = value;
        }
      }
    }
    return result;
  }
}
