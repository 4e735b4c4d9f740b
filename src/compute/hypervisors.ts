import os from 'node:os';
import type { Kysely } from 'kysely';
import type { ComputeConfig } from '../core/config.js';
import { parseJson } from './common.js';
import type { ComputeNodeRow, ComputeSchema, InstanceRow, ServiceRow } from './db/schema.js';
import { serviceIsUp } from './services.js';

/**
 * Hypervisors: the compute nodes the agents report, each with its
 * `nova-compute` service, and what the servers on the node use, counted
 * as Nova's resource tracker does (the host's reserved memory and disk
 * included; a server's disk is its flavor's root, ephemeral and swap).
 * A node whose service is gone is left out.
 */

type Db = Kysely<ComputeSchema>;

/** A compute node, its service and its usage. */
export interface Hypervisor {
  node: ComputeNodeRow;
  service: ServiceRow;
  up: boolean;
  vcpus_used: number;
  memory_mb_used: number;
  local_gb_used: number;
  free_ram_mb: number;
  free_disk_gb: number;
  running_vms: number;
  current_workload: number;
}

/** Task states that count towards a node's `current_workload` (Nova's resource tracker stats). */
const BUSY_TASKS = new Set([
  'resize_migrating',
  'rebuilding',
  'resize_prep',
  'image_snapshot',
  'image_backup',
  'rescuing',
  'unshelving',
  'shelving',
  'shelving_image_pending_upload',
  'shelving_image_uploading',
  'shelving_offloading',
]);

type Counted = Pick<InstanceRow, 'uuid' | 'display_name' | 'node' | 'host' | 'vcpus' | 'memory_mb' | 'flavor' | 'vm_state' | 'task_state'>;

async function serversOnNodes(db: Db, nodes: string[]): Promise<Counted[]> {
  if (nodes.length === 0) return [];
  return db
    .selectFrom('instance')
    .select(['uuid', 'display_name', 'node', 'host', 'vcpus', 'memory_mb', 'flavor', 'vm_state', 'task_state'])
    .where('node', 'in', nodes)
    .where('deleted', '=', 0)
    .orderBy('created_at')
    .execute();
}

function usage(config: ComputeConfig, node: ComputeNodeRow, service: ServiceRow, servers: Counted[], now: number): Hypervisor {
  let vcpus = 0;
  let memory = config.reserved_host_memory_mb;
  let disk = config.reserved_host_disk_mb / 1024;
  let workload = 0;
  for (const s of servers) {
    const flavor = parseJson<{ root_gb?: number; ephemeral_gb?: number; swap?: number }>(s.flavor, {});
    vcpus += Number(s.vcpus);
    memory += Number(s.memory_mb);
    disk += Number(flavor.root_gb ?? 0) + Number(flavor.ephemeral_gb ?? 0) + Number(flavor.swap ?? 0) / 1024;
    if (s.vm_state === 'building' || (s.task_state !== null && BUSY_TASKS.has(s.task_state))) workload++;
  }
  const localGbUsed = Math.trunc(disk);
  return {
    node,
    service,
    up: serviceIsUp(config, service, now),
    vcpus_used: vcpus,
    memory_mb_used: memory,
    local_gb_used: localGbUsed,
    free_ram_mb: Number(node.memory_mb) - memory,
    free_disk_gb: Number(node.local_gb) - localGbUsed,
    running_vms: servers.length,
    current_workload: workload,
  };
}

/** Hypervisors of the given node rows, in their order, with usage; nodes without a compute service are left out. */
async function hypervisorsOf(db: Db, config: ComputeConfig, nodes: ComputeNodeRow[]): Promise<Hypervisor[]> {
  if (nodes.length === 0) return [];
  const hosts = [...new Set(nodes.map((n) => n.host))];
  const services = await db.selectFrom('service').selectAll().where('binary', '=', 'nova-compute').where('host', 'in', hosts).execute();
  const byHost = new Map(services.map((s) => [s.host, s]));
  const servers = await serversOnNodes(db, nodes.map((n) => n.hypervisor_hostname));
  const now = Date.now();
  const out: Hypervisor[] = [];
  for (const node of nodes) {
    const service = byHost.get(node.host);
    if (!service) continue;
    out.push(usage(config, { ...node, id: Number(node.id) }, service, servers.filter((s) => s.node === node.hypervisor_hostname), now));
  }
  return out;
}

/** How to find hypervisors: a page by id after a marker, or those whose name contains a pattern. */
export interface HypervisorQuery {
  limit?: number;
  /** The id (before 2.53) or uuid of the last hypervisor of the previous page. */
  marker?: { id: number } | { uuid: string };
  /** Part of the hypervisor hostname (case-insensitive, as Nova's LIKE on MySQL). */
  pattern?: string;
}

/**
 * Hypervisors by id. An unknown marker is `'marker'`-not-found (null is
 * returned so that the API answers its 400).
 */
export async function listHypervisors(db: Db, config: ComputeConfig, query: HypervisorQuery = {}): Promise<Hypervisor[] | null> {
  let select = db.selectFrom('compute_node').selectAll().orderBy('id');
  if (query.marker) {
    const m = query.marker;
    const marker = await ('id' in m ? db.selectFrom('compute_node').select('id').where('id', '=', m.id) : db.selectFrom('compute_node').select('id').where('uuid', '=', m.uuid)).executeTakeFirst();
    if (!marker) return null;
    select = select.where('id', '>', Number(marker.id));
  }
  let nodes = await select.execute();
  if (query.pattern !== undefined) {
    const needle = query.pattern.toLowerCase();
    nodes = nodes.filter((n) => n.hypervisor_hostname.toLowerCase().includes(needle));
  }
  if (query.limit !== undefined) nodes = nodes.slice(0, query.limit);
  return hypervisorsOf(db, config, nodes);
}

/** One hypervisor by id (before 2.53) or uuid, or undefined (also when its service is gone). */
export async function getHypervisor(db: Db, config: ComputeConfig, id: { id: number } | { uuid: string }): Promise<Hypervisor | undefined> {
  const query = db.selectFrom('compute_node').selectAll();
  const node = await ('id' in id ? query.where('id', '=', id.id) : query.where('uuid', '=', id.uuid)).executeTakeFirst();
  if (!node) return undefined;
  const [hypervisor] = await hypervisorsOf(db, config, [node]);
  return hypervisor;
}

/** The servers (name and uuid) on a compute host, oldest first. */
export async function serversOnHost(db: Db, host: string): Promise<{ name: string; uuid: string }[]> {
  const rows = await db.selectFrom('instance').select(['uuid', 'display_name']).where('host', '=', host).where('deleted', '=', 0).orderBy('created_at').execute();
  return rows.map((r) => ({ name: r.display_name, uuid: r.uuid }));
}

/** Totals over the hypervisors of enabled compute services (`os-hypervisors/statistics`). */
export async function hypervisorStatistics(db: Db, config: ComputeConfig): Promise<Record<string, number>> {
  const all = (await listHypervisors(db, config)) ?? [];
  const enabled = all.filter((h) => Number(h.service.disabled) === 0);
  const sum = (f: (h: Hypervisor) => number): number => enabled.reduce((total, h) => total + f(h), 0);
  return {
    count: enabled.length,
    vcpus: sum((h) => Number(h.node.vcpus)),
    memory_mb: sum((h) => Number(h.node.memory_mb)),
    local_gb: sum((h) => Number(h.node.local_gb)),
    vcpus_used: sum((h) => h.vcpus_used),
    memory_mb_used: sum((h) => h.memory_mb_used),
    local_gb_used: sum((h) => h.local_gb_used),
    free_ram_mb: sum((h) => h.free_ram_mb),
    free_disk_gb: sum((h) => h.free_disk_gb),
    current_workload: sum((h) => h.current_workload),
    running_vms: sum((h) => h.running_vms),
    disk_available_least: sum((h) => h.free_disk_gb),
  };
}

/**
 * A host's uptime line as `uptime` prints it (what Nova's libvirt driver
 * returns). Read on the machine that answers the API, which is the
 * hypervisor in a single-host cloud.
 */
export function hostUptime(now = new Date()): string {
  const seconds = Math.floor(os.uptime());
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const clock = now.toISOString().slice(11, 19);
  const since = days > 0 ? `${days} day${days === 1 ? '' : 's'}, ${String(hours).padStart(2, ' ')}:${String(minutes).padStart(2, '0')}` : `${String(hours).padStart(2, ' ')}:${String(minutes).padStart(2, '0')}`;
  const load = os.loadavg().map((l) => l.toFixed(2)).join(', ');
  return ` ${clock} up ${since},  load average: ${load}`;
}
