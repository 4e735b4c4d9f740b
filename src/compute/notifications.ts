import type { Kysely } from 'kysely';
import { parseJson } from './common.js';
import type { ComputeSchema, InstanceRow } from './db/schema.js';
import type { EmbeddedFlavor } from './rpc.js';

/**
 * Nova's legacy (unversioned) `compute.instance.*` notification payload: who
 * owns the server, its flavor's sizes, where it runs and its state, as
 * Ceilometer and billing tools read them. `state` is the vm_state.
 */
export function instanceInfo(row: InstanceRow, metadata: Record<string, string>): Record<string, unknown> {
  const flavor = parseJson<Partial<EmbeddedFlavor>>(row.flavor, {});
  const image = parseJson<Record<string, unknown>>(row.image, {});
  return {
    tenant_id: row.project_id,
    user_id: row.user_id,
    instance_id: row.uuid,
    display_name: row.display_name,
    reservation_id: row.reservation_id,
    hostname: row.hostname,
    instance_type: flavor.name ?? null,
    instance_flavor_id: flavor.flavorid ?? null,
    memory_mb: flavor.memory_mb ?? row.memory_mb,
    vcpus: flavor.vcpus ?? row.vcpus,
    root_gb: flavor.root_gb ?? 0,
    ephemeral_gb: flavor.ephemeral_gb ?? 0,
    disk_gb: (flavor.root_gb ?? 0) + (flavor.ephemeral_gb ?? 0),
    host: row.host,
    node: row.node,
    availability_zone: row.availability_zone,
    state: row.vm_state,
    state_description: row.task_state ?? '',
    progress: row.progress === 0 ? '' : row.progress,
    created_at: row.created_at,
    launched_at: row.launched_at ?? '',
    terminated_at: row.terminated_at ?? '',
    deleted_at: row.deleted_at ?? '',
    image_ref_url: row.image_ref,
    access_ip_v4: row.access_ip_v4,
    access_ip_v6: row.access_ip_v6,
    os_type: image.os_type ?? null,
    architecture: image.hw_architecture ?? image.architecture ?? null,
    metadata,
  };
}

/**
 * Completes a payload that names a server (`instance_id`) with
 * {@link instanceInfo} as the server is now; the payload's own fields win.
 * Other payloads, and servers no longer recorded, are returned as they are.
 */
export async function withInstanceInfo(db: Kysely<ComputeSchema>, payload: unknown): Promise<unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return payload;
  const id = (payload as { instance_id?: unknown }).instance_id;
  if (typeof id !== 'string') return payload;
  // One query: the server's row once per metadata item (or once, with nulls, when it has none).
  const rows = await db
    .selectFrom('instance')
    .leftJoin('instance_metadata', 'instance_metadata.instance_uuid', 'instance.uuid')
    .selectAll('instance')
    .select(['instance_metadata.key as meta_key', 'instance_metadata.value as meta_value'])
    .where('instance.uuid', '=', id)
    .execute();
  const first = rows[0];
  if (!first) return payload;
  const { meta_key: _k, meta_value: _v, ...row } = first;
  const metadata = Object.fromEntries(rows.filter((r) => r.meta_key !== null).map((r) => [r.meta_key, r.meta_value]));
  return { ...instanceInfo(row, metadata), ...payload };
}
