import type { FastifyInstance } from 'fastify';
import { atLeast, contextOf, type ComputeService } from '../compute.js';
import { parseJson } from '../common.js';
import { invalidState } from '../errors.js';
import { loadInstanceFor } from '../instances.js';
import type { EmbeddedFlavor, NetworkInfo } from '../rpc.js';

/**
 * `GET /servers/{id}/diagnostics` (admin): from 2.48 Nova's standard form
 * (state, driver, CPUs, memory, NICs, disks), before it a flat map. Built
 * from what compute records of the server (flavor, ports, power state,
 * launch time); live counters a driver would sample are null. The driver
 * is named `libvirt` (the only one of Nova's names for a QEMU/KVM host,
 * and what Nova's own fake driver reports); `hypervisor` names ours.
 */

const STATES: Record<number, string> = { 0: 'pending', 1: 'running', 3: 'paused', 4: 'shutdown', 6: 'crashed', 7: 'suspended' };

export function registerServerDiagnostics(app: FastifyInstance, compute: ComputeService): void {
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/diagnostics', async (req) => {
    const instance = await loadInstanceFor(compute, contextOf(req), req.params.id, 'os-server-diagnostics');
    if (!instance.host || instance.vm_state === 'building') throw invalidState('vm_state', instance.vm_state, 'get_diagnostics', instance.uuid);
    const flavor = parseJson<Partial<EmbeddedFlavor>>(instance.flavor, {});
    const vifs = parseJson<NetworkInfo>(instance.network_info, []);
    const node = await compute.db.selectFrom('compute_node').select(['hypervisor_type']).where('host', '=', instance.host).executeTakeFirst();
    const memory = Number(flavor.memory_mb ?? instance.memory_mb);
    const vcpus = Number(flavor.vcpus ?? instance.vcpus);
    const disks = 1 + (Number(flavor.ephemeral_gb ?? 0) > 0 ? 1 : 0) + (Number(flavor.swap ?? 0) > 0 ? 1 : 0);
    if (!atLeast(req, '2.48')) {
      const flat: Record<string, number> = { memory: memory * 1024 };
      for (let i = 0; i < vcpus; i++) flat[`cpu${i}_time`] = 0;
      vifs.forEach((_v, i) => Object.assign(flat, { [`tap${i}_rx`]: 0, [`tap${i}_tx`]: 0 }));
      return flat;
    }
    const launched = instance.launched_at ? Date.parse(instance.launched_at) : NaN;
    return {
      state: STATES[Number(instance.power_state)] ?? 'pending',
      driver: 'libvirt',
      hypervisor: node?.hypervisor_type ?? null,
      hypervisor_os: 'linux',
      uptime: Number.isNaN(launched) ? null : Math.max(0, Math.floor((Date.now() - launched) / 1000)),
      config_drive: instance.config_drive === 'True',
      num_cpus: vcpus,
      num_nics: vifs.length,
      num_disks: disks,
      memory_details: { maximum: memory, used: null },
      cpu_details: Array.from({ length: vcpus }, (_x, id) => ({ id, time: null, utilisation: null })),
      nic_details: vifs.map((v) => ({ mac_address: v.mac_address, rx_octets: null, rx_errors: null, rx_drop: null, rx_packets: null, rx_rate: null, tx_octets: null, tx_errors: null, tx_drop: null, tx_packets: null, tx_rate: null })),
      disk_details: Array.from({ length: disks }, () => ({ read_bytes: null, read_requests: null, write_bytes: null, write_requests: null, errors_count: null })),
    };
  });
}
