import { isUniqueViolation } from '../../core/db/database.js';
import type { ComputeService } from '../compute.js';
import { isoNow, newUuid, nextId } from '../common.js';
import type { HostResources } from '../virt/driver.js';

/** What a compute agent reports at start and with every heartbeat. */
export interface HostReport {
  host: string;
  binary: string;
  /** The agent's driver resources; absent for roles without a hypervisor (scheduler, conductor). */
  resources?: HostResources;
  /** The compute node's uuid the agent keeps (its resource provider in placement), when it knows one. */
  node_uuid?: string;
}

/** What the agent learns back: its records' ids and whether it is disabled. */
export interface HostRecord {
  service_id: number;
  service_uuid: string;
  node_uuid: string | null;
  disabled: boolean;
}

/**
 * Records a heartbeat (Nova's servicegroup DB driver): creates the service
 * row on first contact, bumps `report_count` and `last_seen_up`; with
 * resources, creates or updates the host's compute node (hypervisor).
 * Idempotent; concurrent first reports of one host settle on one row.
 */
export async function registerHost(compute: ComputeService, report: HostReport): Promise<HostRecord> {
  const now = isoNow();
  for (let attempt = 0; ; attempt++) {
    try {
      return await compute.db.transaction().execute(async (trx) => {
        let service = await trx.selectFrom('service').selectAll().where('host', '=', report.host).where('binary', '=', report.binary).executeTakeFirst();
        if (!service) {
          service = {
            id: await nextId(trx, 'service'),
            uuid: newUuid(),
            host: report.host,
            binary: report.binary,
            topic: report.binary.replace(/^nova-/, ''),
            disabled: 0,
            disabled_reason: null,
            forced_down: 0,
            last_seen_up: now,
            report_count: 1,
            version: 61,
            created_at: now,
            updated_at: now,
          };
          await trx.insertInto('service').values(service).execute();
        } else {
          await trx.updateTable('service').set({ last_seen_up: now, report_count: service.report_count + 1, updated_at: now }).where('id', '=', service.id).execute();
        }
        let nodeUuid: string | null = null;
        const r = report.resources;
        if (r) {
          const node = await trx.selectFrom('compute_node').select(['id', 'uuid']).where('hypervisor_hostname', '=', r.hypervisorHostname).executeTakeFirst();
          const values = {
            service_id: service.id,
            host: report.host,
            hypervisor_type: r.hypervisorType,
            hypervisor_version: r.hypervisorVersion,
            host_ip: r.hostIp,
            vcpus: r.vcpus,
            memory_mb: r.memoryMb,
            local_gb: r.localGb,
            cpu_info: JSON.stringify(r.cpuInfo),
            capabilities: JSON.stringify({ traits: r.traits }),
            updated_at: now,
          };
          if (node) {
            await trx.updateTable('compute_node').set(values).where('id', '=', node.id).execute();
            nodeUuid = node.uuid;
          } else {
            nodeUuid = report.node_uuid ?? newUuid();
            await trx
              .insertInto('compute_node')
              .values({ id: await nextId(trx, 'compute_node'), uuid: nodeUuid, hypervisor_hostname: r.hypervisorHostname, created_at: now, ...values })
              .execute();
          }
        }
        return { service_id: service.id, service_uuid: service.uuid, node_uuid: nodeUuid, disabled: service.disabled === 1 };
      });
    } catch (err) {
      if (attempt < 5 && isUniqueViolation(err)) continue;
      throw err;
    }
  }
}
