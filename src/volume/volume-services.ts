import type { ServiceRow } from './db/schema.js';
import type { VolumeService } from './volume.js';

/**
 * The volume services as the API reports them: up or down from their last
 * heartbeat (`last_seen_up`, else `created_at`) against
 * `config.volume.service_down_time`, and the availability zones they
 * serve.
 */

/** Cinder's binary of the per-backend volume services. */
export const VOLUME_BINARY = 'cinder-volume';

/** True when the service's last heartbeat is within `service_down_time` (Cinder's `utils.service_is_up`). */
export function serviceIsUp(volume: VolumeService, row: Pick<ServiceRow, 'last_seen_up' | 'created_at'>, at = Date.now()): boolean {
  const seen = Date.parse(row.last_seen_up ?? row.created_at);
  if (Number.isNaN(seen)) return false;
  return Math.abs(at - seen) <= volume.config.volume.service_down_time * 1000;
}

/** Every service row, optionally of one binary, in id order. */
export async function listServices(volume: VolumeService, filters: { binary?: string; host?: string } = {}): Promise<ServiceRow[]> {
  let query = volume.db.selectFrom('service').selectAll().orderBy('id');
  if (filters.binary !== undefined) query = query.where('binary', '=', filters.binary);
  if (filters.host !== undefined) query = query.where('host', '=', filters.host);
  return query.execute();
}

/**
 * The zones of the volume services (Cinder's `list_availability_zones`): a
 * zone is available unless all its services are disabled.
 */
export async function availabilityZones(volume: VolumeService): Promise<{ name: string; available: boolean }[]> {
  const rows = await volume.db.selectFrom('service').select(['availability_zone', 'disabled']).where('binary', '=', VOLUME_BINARY).orderBy('id').execute();
  const disabled = new Map<string, boolean>();
  for (const row of rows) disabled.set(row.availability_zone, (disabled.get(row.availability_zone) ?? true) && Number(row.disabled) === 1);
  return [...disabled.entries()].map(([name, all]) => ({ name, available: !all }));
}

/** `host@backend#pool` → `host@backend` (Cinder's `extract_host(..., 'backend')`). */
export function backendOf(host: string): string {
  return host.split('#')[0] ?? host;
}
