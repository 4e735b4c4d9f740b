/**
 * What the scheduler knows of the hosts when it decides: a read-only
 * snapshot built from compute's database and placement's provider summaries.
 * The filters and weighers are pure functions of it.
 */
export interface HostState {
  host: string;
  node: string;
  /** The compute node's resource provider uuid. */
  nodeUuid: string;
  /** The service can take servers: enabled, not forced down, heard from recently. */
  up: boolean;
  enabled: boolean;
  availabilityZone: string;
  /** Aggregates the host is in, with their metadata. */
  aggregates: { id: number; name: string; metadata: Record<string, string> }[];
  /** The driver's capabilities (hypervisor_type, cpu_info, ...), for `capabilities:` extra specs. */
  capabilities: Record<string, unknown>;
  /** Free resources in placement (capacity - used), and the totals. */
  free: { vcpus: number; memoryMb: number; diskGb: number };
  total: { vcpus: number; memoryMb: number; diskGb: number };
  /** Servers on the host (uuids), for group and same/different host rules. */
  instances: Set<string>;
}
