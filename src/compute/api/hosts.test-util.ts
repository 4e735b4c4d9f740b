import type { Kysely } from 'kysely';
import { isoNow, newUuid, nextId } from '../common.js';
import type { ComputeNodeRow, ComputeSchema, ServiceRow } from '../db/schema.js';

/**
 * Hosts for API tests without running agents: the `service` row a
 * heartbeat writes and, for a compute host, its `compute_node`
 * (8 vcpus, 16 GiB, 200 GB unless told otherwise).
 */

/** A service row, up (seen now) unless `values` says otherwise. */
export async function insertService(db: Kysely<ComputeSchema>, host: string, binary = 'nova-compute', values: Partial<ServiceRow> = {}): Promise<ServiceRow> {
  const now = isoNow();
  const row: ServiceRow = {
    id: await nextId(db, 'service'),
    uuid: newUuid(),
    host,
    binary,
    topic: binary.replace(/^nova-/, ''),
    disabled: 0,
    disabled_reason: null,
    forced_down: 0,
    last_seen_up: now,
    report_count: 1,
    version: 61,
    created_at: now,
    updated_at: now,
    ...values,
  };
  await db.insertInto('service').values(row).execute();
  return row;
}

/** A compute host: its `nova-compute` service and one compute node named after the host. */
export async function insertComputeHost(db: Kysely<ComputeSchema>, host: string, values: { service?: Partial<ServiceRow>; node?: Partial<ComputeNodeRow> } = {}): Promise<{ service: ServiceRow; node: ComputeNodeRow }> {
  const service = await insertService(db, host, 'nova-compute', values.service);
  const node: ComputeNodeRow = {
    id: await nextId(db, 'compute_node'),
    uuid: newUuid(),
    service_id: service.id,
    host,
    hypervisor_hostname: host,
    hypervisor_type: 'fake',
    hypervisor_version: 1000,
    host_ip: '192.0.2.10',
    vcpus: 8,
    memory_mb: 16384,
    local_gb: 200,
    cpu_info: JSON.stringify({ arch: 'x86_64', model: 'fake', vendor: 'stratus', topology: { sockets: 1, cores: 8, threads: 1 }, features: [] }),
    capabilities: '{}',
    created_at: isoNow(),
    updated_at: null,
    ...values.node,
  };
  await db.insertInto('compute_node').values(node).execute();
  return { service, node };
}
