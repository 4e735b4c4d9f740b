import { parseJson } from '../common.js';
import type { InstanceRow } from '../db/schema.js';
import type { AgentInstance, EmbeddedFlavor, InstanceValues, NetworkInfo, RequestSpec } from '../rpc.js';

/** A server as agents see it (everything parsed). */
export function agentInstance(row: InstanceRow, metadata: Record<string, string>): AgentInstance {
  return {
    uuid: row.uuid,
    display_name: row.display_name,
    hostname: row.hostname,
    project_id: row.project_id,
    user_id: row.user_id,
    host: row.host,
    node: row.node,
    availability_zone: row.availability_zone,
    vm_state: row.vm_state,
    task_state: row.task_state,
    power_state: row.power_state,
    flavor: parseJson<EmbeddedFlavor>(row.flavor, {} as EmbeddedFlavor),
    new_flavor: parseJson<EmbeddedFlavor | null>(row.new_flavor, null),
    old_flavor: parseJson<EmbeddedFlavor | null>(row.old_flavor, null),
    image_ref: row.image_ref,
    image_properties: parseJson<Record<string, unknown>>(row.image, {}),
    user_data: row.user_data,
    key_name: row.key_name,
    key_data: row.key_data,
    launch_index: row.launch_index,
    reservation_id: row.reservation_id,
    created_at: row.created_at,
    config_drive: row.config_drive === 'True',
    metadata,
    network_info: parseJson<NetworkInfo>(row.network_info, []),
    request_spec: parseJson<RequestSpec>(row.request_spec, {} as RequestSpec),
  };
}

/** The column values of `values` (structured ones as JSON). */
export function instanceColumns(values: InstanceValues): Partial<InstanceRow> {
  const columns: Partial<InstanceRow> = {};
  for (const [key, value] of Object.entries(values) as [keyof InstanceValues, unknown][]) {
    switch (key) {
      case 'network_info':
        columns.network_info = JSON.stringify(value);
        break;
      case 'flavor': {
        const flavor = value as EmbeddedFlavor;
        columns.flavor = JSON.stringify(flavor);
        columns.vcpus = flavor.vcpus;
        columns.memory_mb = flavor.memory_mb;
        break;
      }
      case 'old_flavor':
      case 'new_flavor':
        columns[key] = value === null ? null : JSON.stringify(value);
        break;
      case 'image_properties':
        columns.image = JSON.stringify(value);
        break;
      default:
        (columns as Record<string, unknown>)[key] = value;
    }
  }
  return columns;
}
