import type { Kysely } from 'kysely';
import { isoNow, newUuid } from '../common.js';
import type { ComputeSchema, InstanceRow } from '../db/schema.js';

/**
 * Servers for API tests that need one without booting it: an `instance` row
 * as a finished build leaves it (ACTIVE, running, launched, on `host-1`).
 * `values` overrides any column. Returns the row written.
 */
export async function insertServer(db: Kysely<ComputeSchema>, owner: { projectId: string; userId: string }, values: Partial<InstanceRow> = {}): Promise<InstanceRow> {
  const uuid = values.uuid ?? newUuid();
  const now = isoNow();
  const flavor = { flavorid: '1', name: 'm1.tiny', vcpus: 1, memory_mb: 512, root_gb: 1, ephemeral_gb: 0, swap: 0, rxtx_factor: 1, is_public: true, description: null, extra_specs: {} };
  const row: InstanceRow = {
    uuid,
    project_id: owner.projectId,
    user_id: owner.userId,
    display_name: `server-${uuid.slice(0, 8)}`,
    display_description: null,
    hostname: `server-${uuid.slice(0, 8)}`,
    host: 'host-1',
    node: 'host-1',
    availability_zone: 'nova',
    vm_state: 'active',
    task_state: null,
    power_state: 1,
    flavor: JSON.stringify(flavor),
    old_flavor: null,
    new_flavor: null,
    vcpus: 1,
    memory_mb: 512,
    image_ref: '70a599e0-31e7-49b7-b260-868f441e862b',
    image: '{}',
    key_name: null,
    key_data: null,
    user_data: null,
    config_drive: '',
    access_ip_v4: null,
    access_ip_v6: null,
    disk_config: 'MANUAL',
    locked: 0,
    locked_by: null,
    locked_reason: null,
    progress: 0,
    reservation_id: `r-${uuid.slice(0, 8)}`,
    launch_index: 0,
    root_device_name: '/dev/vda',
    security_groups: '["default"]',
    network_info: '[]',
    request_spec: '{}',
    trusted_certs: null,
    launched_at: now,
    terminated_at: null,
    created_at: now,
    updated_at: now,
    deleted: 0,
    deleted_at: null,
    ...values,
  };
  await db.insertInto('instance').values(row).execute();
  return row;
}
