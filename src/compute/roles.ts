import os from 'node:os';
import path from 'node:path';
import { testImageFiles } from './test-image.js';
import { ServiceClient } from '../core/auth/service-client.js';
import type { Bus, Consumer } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import type { Logger } from '../core/logging.js';
import { ComputeAgent } from './agent/agent.js';
import type { ComputeService } from './compute.js';
import { Conductor } from './conductor/conductor.js';
import { registerHost } from './conductor/hosts.js';
import { PlacementClient } from './placement-client.js';
import { SCHEDULER_TOPIC, type RequestSpec } from './rpc.js';
import { Scheduler } from './scheduler/scheduler.js';
import { FakeDriver } from './virt/fake/fake-driver.js';
import { metadataOptions } from './metadata/content.js';
import { QemuDriver } from './virt/qemu/qemu-driver.js';

/** Running roles and how to stop them. */
export interface RunningRoles {
  stop(): Promise<void>;
}

/**
 * Starts compute-conductor and/or compute-scheduler (`roles`, default both)
 * on `compute` (both need the database), serving their topics as `server`,
 * with heartbeats in the services table (`nova-conductor`, `nova-scheduler`).
 */
export async function startConductorRoles(compute: ComputeService, server: string, roles: ('conductor' | 'scheduler')[] = ['conductor', 'scheduler']): Promise<RunningRoles> {
  const consumers: Consumer[] = [];
  if (roles.includes('conductor')) consumers.push(await new Conductor(compute, compute.placement).serve(server));
  if (roles.includes('scheduler')) {
    const scheduler = new Scheduler(compute.db, compute.config.compute, compute.placement, compute.log);
    consumers.push(await compute.bus.serve(SCHEDULER_TOPIC, server, { select_destinations: (args: { spec: RequestSpec; instance_uuids: string[] }) => scheduler.selectDestinations(args.spec, args.instance_uuids) }));
  }
  const host = compute.config.public_host === '127.0.0.1' ? os.hostname() : compute.config.public_host;
  const beat = async (): Promise<void> => {
    if (roles.includes('conductor')) await registerHost(compute, { host, binary: 'nova-conductor' });
    if (roles.includes('scheduler')) await registerHost(compute, { host, binary: 'nova-scheduler' });
  };
  await beat();
  const timer = compute.config.compute.report_interval > 0 ? setInterval(() => void beat().catch((err: unknown) => compute.log.warn({ err }, 'heartbeat failed')), compute.config.compute.report_interval * 1000) : null;
  return {
    async stop() {
      if (timer) clearInterval(timer);
      for (const c of consumers) await c.stop();
    },
  };
}

/** The host names of the agents `up` runs: `fake_hosts` fake hosts, or this machine. */
export function agentHosts(config: StratusConfig): string[] {
  const n = config.compute.fake_hosts;
  return n > 0 ? Array.from({ length: n }, (_, i) => `fake-${i + 1}`) : [os.hostname()];
}

/** Compute agents with the fake driver, one per host, in this process. */
export async function startFakeAgents(config: StratusConfig, bus: Bus, options: { hosts: string[]; identity: { authUrl: string; password: string }; log: Logger }): Promise<{ agents: ComputeAgent[]; stop(): Promise<void> }> {
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: 'nova', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: options.log, userAgent: 'stratus-compute-agent' },
  );
  const placement = new PlacementClient(client, { logger: options.log });
  const r = config.compute.fake_host_resources;
  const agents: ComputeAgent[] = [];
  try {
    for (const host of options.hosts) {
      const driver = new FakeDriver({ hypervisorHostname: host, hypervisorType: 'fake', hypervisorVersion: 1000, hostIp: '127.0.0.1', vcpus: r.vcpus, memoryMb: r.memory_mb, localGb: r.local_gb, cpuInfo: { arch: 'x86_64', vendor: 'fake', model: 'fake' }, traits: ['COMPUTE_NET_ATTACH_INTERFACE', 'COMPUTE_VOLUME_ATTACH'] });
      const agent = new ComputeAgent({ host, driver, bus, config: config.compute, client, placement, log: options.log.child({ host }) });
      await agent.start();
      agents.push(agent);
    }
  } catch (err) {
    for (const a of agents) await a.stop();
    throw err;
  }
  return {
    agents,
    async stop() {
      await Promise.all(agents.map((a) => a.stop()));
    },
  };
}

/** The qemu driver's paths with their defaults resolved: instances under `<data_dir>/compute/instances`, the image cache in its `_base`. */
export function qemuPaths(config: StratusConfig): { instancesPath: string; imageCachePath: string; probe: { kernel: string; initrd: string } } {
  const q = config.compute.qemu;
  const instancesPath = path.resolve(q.instances_path || path.join(config.data_dir, 'compute', 'instances'));
  return {
    instancesPath,
    imageCachePath: path.resolve(q.image_cache_path || path.join(instancesPath, '_base')),
    // Built with the test image (`ensureTestImage`); without them the driver runs TCG and says so.
    probe: { kernel: testImageFiles().probeKernel, initrd: testImageFiles().probeInitrd },
  };
}

/**
 * The compute agent of this host with the qemu driver (one per machine):
 * the driver probes KVM and reconnects to the guests a previous run left
 * running before the agent starts. Stopping it leaves the guests running.
 */
export async function startQemuAgent(config: StratusConfig, bus: Bus, options: { host: string; identity: { authUrl: string; password: string }; log: Logger }): Promise<{ agents: ComputeAgent[]; stop(): Promise<void> }> {
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: 'nova', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: options.log, userAgent: 'stratus-compute-agent' },
  );
  const log = options.log.child({ host: options.host });
  const paths = qemuPaths(config);
  const driver = new QemuDriver({
    host: options.host,
    hostIp: config.public_host,
    config: { ...config.compute.qemu, instances_path: paths.instancesPath, image_cache_path: paths.imageCachePath },
    images: client,
    log,
    probe: paths.probe,
    metadata: metadataOptions(config),
  });
  await driver.init();
  const agent = new ComputeAgent({ host: options.host, driver, bus, config: config.compute, client, placement: new PlacementClient(client, { logger: options.log }), log });
  try {
    await agent.start();
  } catch (err) {
    await driver.close();
    throw err;
  }
  return {
    agents: [agent],
    async stop() {
      await agent.stop();
    },
  };
}
