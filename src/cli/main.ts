import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { createBus } from '../core/bus/index.js';
import { startNovncProxy } from '../compute/consoles/novnc-proxy.js';
import { startMetadataRole } from '../compute/metadata/api.js';
import { resolveVirtDriver } from './virt-driver.js';
import { killProcess, processAlive, readPid } from '../core/host-commands.js';
import { guestMarker } from '../compute/virt/qemu/command-line.js';
import { qemuPaths } from '../compute/roles.js';
import { cleanupHost } from '../network/linux/cleanup.js';
import { HostNet } from '../network/linux/host.js';
import { cloudNetworkResources, dhcpStateDir, resolveNetworkDriver, startNetworkAgents } from './network-driver.js';
import { ConfigError, databaseUrl, loadConfig, type StratusConfig } from '../core/config.js';
import { migrate, openDatabase } from '../core/db/database.js';
import { configureLogging, rootLogger } from '../core/logging.js';
import { migrations } from '../identity/db/migrations.js';
import type { IdentitySchema } from '../identity/db/schema.js';
import { startIdentity, type IdentityService } from '../identity/service.js';
import { startImage, type RunningImage } from '../image/service.js';
import { KeyRepository } from '../identity/tokens/keys.js';
import { startNetwork, type RunningNetwork } from '../network/service.js';
import { startPlacement } from '../placement/service.js';
import { openCompute, startComputeAgents, startComputeApi, startComputeConductor } from '../compute/service.js';
import { startVolumeAgentRole, startVolumeApi, startVolumeScheduler } from '../volume/service.js';
import { registerRingCommand } from '../object/ring/cli.js';
import { startObjectProxyRole, startObjectServers, startObjectWorkersRole } from '../object/service.js';
import { runTests } from './test-runner.js';
import { up } from './up.js';

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function config(opts: { data?: string; config?: string }): StratusConfig {
  return loadConfig({ ...(opts.config ? { file: opts.config } : {}), overrides: { data_dir: opts.data } });
}

/** Runs until SIGINT/SIGTERM, then stops cleanly. */
function stayUp(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    say(`\n${signal}: stopping...`);
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`error while stopping: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

const program = new Command('stratus').description('Stratus: an OpenStack-compatible cloud').showHelpAfterError();

program
  .command('up')
  .description('start the all-in-one cloud in the foreground (SQLite and the in-process bus in the data directory)')
  .option('--data <dir>', 'data directory', undefined)
  .option('--config <file>', 'configuration file (YAML)')
  .option('--fake-hosts <n>', 'run N fake hypervisor hosts (fake-1 ... fake-N) in this process instead of one for this machine')
  .action(async (opts: { data?: string; config?: string; fakeHosts?: string }) => {
    const cfg = config({ data: opts.data ?? process.env.STRATUS_DATA_DIR ?? './data', ...(opts.config ? { config: opts.config } : {}) });
    if (opts.fakeHosts !== undefined) {
      const n = Number(opts.fakeHosts);
      if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new ConfigError(`--fake-hosts must be a whole number from 1 to 10000, not '${opts.fakeHosts}'`);
      cfg.compute.fake_hosts = n;
      // Fake hosts run fake guests, whose ports no bridge agent could plug.
      cfg.compute.virt_driver = 'fake';
      cfg.network.driver = 'fake';
    }
    const cloud = await up(cfg, say);
    stayUp(() => cloud.stop());
  });

program
  .command('serve')
  .description('run the chosen roles in this process (a multi-host deployment: PostgreSQL/MySQL and RabbitMQ by URL)')
  .argument('<roles...>', 'roles to run: identity, image, network, network-agent, placement, compute-api, compute-conductor, compute-scheduler, compute-agent, compute-metadata, compute-novncproxy, volume-api, volume-scheduler, volume-agent, object-proxy, object-server, object-workers')
  .option('--data <dir>', 'data directory')
  .option('--config <file>', 'configuration file (YAML)')
  .action(async (roles: string[], opts: { data?: string; config?: string }) => {
    const cfg = config(opts);
    const known = ['identity', 'image', 'network', 'network-agent', 'placement', 'compute-api', 'compute-conductor', 'compute-scheduler', 'compute-agent', 'compute-metadata', 'compute-novncproxy', 'volume-api', 'volume-scheduler', 'volume-agent', 'object-proxy', 'object-server', 'object-workers'];
    const unknown = roles.filter((r) => !known.includes(r));
    if (unknown.length) throw new ConfigError(`unknown role(s): ${unknown.join(', ')} (available: ${known.join(', ')})`);
    process.umask(0o077);
    configureLogging({ level: cfg.log.level, ...(cfg.log.file ? { file: cfg.log.file } : {}) });
    const bus = await createBus(cfg.bus.url);
    /** How a service role logs in to identity as its service user. */
    const serviceIdentity = (role: 'image' | 'network' | 'placement' | 'compute' | 'volume' | 'object', user: string): { authUrl: string; password: string } => {
      const { auth_url, service_password } = cfg[role];
      if (!service_password) throw new ConfigError(`the ${role} role needs ${role}.service_password (the password of the ${user} service user)`);
      return { authUrl: auth_url || `http://${cfg.public_host}:${cfg.identity.port}/v3`, password: service_password };
    };
    let identity: IdentityService | null = null;
    let image: RunningImage | null = null;
    let network: RunningNetwork | null = null;
    if (roles.includes('identity')) {
      identity = await startIdentity(cfg, bus);
      say(`identity listening on ${cfg.bind_host}:${identity.port}`);
    }
    if (roles.includes('image')) {
      image = await startImage(cfg, bus, { identity: serviceIdentity('image', 'glance') });
      say(`image listening on ${cfg.bind_host}:${image.port}`);
    }
    if (roles.includes('network') || roles.includes('network-agent')) resolveNetworkDriver(cfg, say);
    if (roles.includes('network')) {
      network = await startNetwork(cfg, bus, { identity: serviceIdentity('network', 'neutron') });
      say(`network listening on ${cfg.bind_host}:${network.port}`);
    }
    const stops: (() => Promise<void>)[] = [];
    if (roles.includes('placement')) {
      const placement = await startPlacement(cfg, { identity: serviceIdentity('placement', 'placement') });
      stops.push(() => placement.stop());
      say(`placement listening on ${cfg.bind_host}:${placement.port}`);
    }
    if (roles.includes('compute-api')) {
      const api = await startComputeApi(cfg, bus, { identity: serviceIdentity('compute', 'nova') });
      stops.push(() => api.stop());
      say(`compute listening on ${cfg.bind_host}:${api.port}`);
    }
    const conductorRoles = (['conductor', 'scheduler'] as const).filter((r) => roles.includes(`compute-${r}`));
    if (conductorRoles.length > 0) {
      const conductor = await startComputeConductor(cfg, bus, { identity: serviceIdentity('compute', 'nova') }, [...conductorRoles]);
      stops.push(() => conductor.stop());
      say(`${conductorRoles.map((r) => `compute-${r}`).join(' and ')} serving`);
    }
    if (roles.includes('network-agent')) {
      if (cfg.network.driver !== 'linux') throw new ConfigError('the network-agent role runs the linux data plane: set network.driver to linux (or auto, as root)');
      const agents = await startNetworkAgents(cfg, bus, { host: os.hostname(), log: rootLogger().child({ role: 'network-agent' }) });
      stops.push(() => agents.stop());
      say(`network agents (bridge, DHCP, L3, metadata) serving host ${os.hostname()}`);
    }
    if (roles.includes('compute-agent')) {
      resolveVirtDriver(cfg, say);
      const agents = await startComputeAgents(cfg, bus, { identity: serviceIdentity('compute', 'nova') });
      stops.push(() => agents.stop());
      say('compute agent(s) serving');
    }
    if (roles.includes('compute-metadata')) {
      const metadata = await startMetadataRole(cfg, bus, { identity: serviceIdentity('compute', 'nova') });
      stops.push(() => metadata.stop());
      say(`compute-metadata listening on ${cfg.bind_host}:${metadata.port}`);
    }
    if (roles.includes('compute-novncproxy')) {
      const { compute, database } = await openCompute(cfg, bus, { identity: serviceIdentity('compute', 'nova') }, 'compute-novncproxy');
      const proxy = await startNovncProxy(cfg, compute, compute.log);
      stops.push(async () => {
        await proxy.stop();
        await database.close();
      });
      say(`compute-novncproxy listening on ${cfg.bind_host}:${proxy.port}`);
    }
    if (roles.includes('volume-api')) {
      const api = await startVolumeApi(cfg, bus, { identity: serviceIdentity('volume', 'cinder') });
      stops.push(() => api.stop());
      say(`volume listening on ${cfg.bind_host}:${api.port}`);
    }
    if (roles.includes('volume-scheduler')) {
      const scheduler = await startVolumeScheduler(cfg, bus, { identity: serviceIdentity('volume', 'cinder') });
      stops.push(() => scheduler.stop());
      say('volume-scheduler serving');
    }
    if (roles.includes('volume-agent')) {
      const agents = await startVolumeAgentRole(cfg, bus, { identity: serviceIdentity('volume', 'cinder') });
      stops.push(() => agents.stop());
      say('volume agent(s) serving');
    }
    if (roles.includes('object-server')) {
      const servers = await startObjectServers(cfg);
      stops.push(() => servers.stop());
      say(`object-server listening on ${cfg.object.storage.bind_host}: object ${servers.ports.object}, container ${servers.ports.container}, account ${servers.ports.account}`);
    }
    if (roles.includes('object-proxy')) {
      const proxy = await startObjectProxyRole(cfg, { identity: serviceIdentity('object', 'swift') });
      stops.push(() => proxy.stop());
      say(`object-proxy listening on ${cfg.bind_host}:${proxy.port}`);
    }
    if (roles.includes('object-workers')) {
      const workers = await startObjectWorkersRole(cfg);
      stops.push(() => workers.stop());
      say('object workers (replicator, auditor, updater, expirer, reaper) running');
    }
    stayUp(async () => {
      for (const stop of stops.reverse()) await stop();
      await network?.stop();
      await image?.stop();
      await identity?.stop();
      await bus.close();
    });
  });

program
  .command('cleanup')
  .description("remove every host resource of this cloud for a clean slate, with the cloud stopped: its guests' QEMU processes, its router and DHCP namespaces (and the dnsmasq and metadata proxies in them), taps, bridges, VXLAN devices and packet-filter rules; another cloud's stay")
  .option('--data <dir>', 'data directory')
  .option('--config <file>', 'configuration file (YAML)')
  .action(async (opts: { data?: string; config?: string }) => {
    const cfg = config({ data: opts.data ?? process.env.STRATUS_DATA_DIR ?? './data', ...(opts.config ? { config: opts.config } : {}) });
    const guests = await stopGuests(qemuPaths(cfg).instancesPath);
    say(`guests stopped: ${guests}`);
    if (process.getuid?.() !== 0) {
      say('network resources are left alone: removing them needs root');
      return;
    }
    const linux = cfg.network.linux;
    configureLogging({ level: 'warn' });
    const report = await cleanupHost(new HostNet(linux.host_netns || null), {
      resources: await cloudNetworkResources(cfg, qemuPaths(cfg).instancesPath),
      chainPrefix: linux.chain_prefix,
      bridges: Object.values(linux.bridge_mappings),
      stateDirs: [...['l3', 'metadata'].map((d) => path.join(cfg.data_dir, 'network', d)), path.dirname(dhcpStateDir(cfg))],
      log: rootLogger(),
    });
    say(`namespaces removed: ${report.namespaces.length}${report.namespaces.length ? ` (${report.namespaces.join(' ')})` : ''}`);
    say(`devices removed: ${report.devices.length}${report.devices.length ? ` (${report.devices.join(' ')})` : ''}`);
    say(`packet-filter chains and table '${linux.chain_prefix}' removed`);
  });

/** Kills the QEMU process of every guest under `instancesPath`; the number killed. */
async function stopGuests(instancesPath: string): Promise<number> {
  let killed = 0;
  const entries = await fsp.readdir(instancesPath, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('_')) continue;
    const pid = await readPid(path.join(instancesPath, entry.name, 'qemu.pid'));
    if (pid === null || !(await processAlive(pid, guestMarker(entry.name)))) continue;
    await killProcess(pid, guestMarker(entry.name));
    killed += 1;
  }
  return killed;
}

const identity = program.command('identity').description('identity administration');
identity
  .command('rotate-keys')
  .description('rotate the Fernet token keys: the staged key becomes primary, a new key is staged, the oldest beyond max_active_keys go')
  .option('--data <dir>', 'data directory', './data')
  .option('--config <file>', 'configuration file (YAML)')
  .action(async (opts: { data?: string; config?: string }) => {
    const cfg = config(opts);
    configureLogging({ level: 'warn' });
    const database = await openDatabase<IdentitySchema>(databaseUrl(cfg, 'identity'), { role: 'identity' });
    try {
      await migrate(database.db, migrations);
      const keys = new KeyRepository(database.db);
      await keys.setup();
      const primary = await keys.rotate(cfg.identity.max_active_keys);
      say(`Fernet keys rotated: key ${primary} is now primary; ${keys.all().length} keys active (max ${cfg.identity.max_active_keys}). Running identity processes pick the new keys up within 5 s.`);
    } finally {
      await database.close();
    }
  });

registerRingCommand(program);

program
  .command('test')
  .description('run the whole test suite (installs and starts what it needs: PostgreSQL, RabbitMQ, the OpenStack clients)')
  .option('--only <what>', 'unit | postgres | e2e | tempest (default: all)')
  .action(async (opts: { only?: string }) => {
    process.exitCode = await runTests(opts.only);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`stratus: ${err.message}\n`);
  else if (err instanceof Error && 'code' in err && err.code === 'EADDRINUSE') process.stderr.write(`stratus: ${err.message}: is another cloud running? Choose other ports in the configuration.\n`);
  else process.stderr.write(`stratus: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
