import fs from 'node:fs/promises';
import path from 'node:path';
import { killProcess, processAlive, readPid } from '../../core/host-commands.js';
import type { Logger } from '../../core/logging.js';
import type { RouterPort } from '../agents/interfaces.js';
import { formatCidr, parseCidr } from '../ipam/addresses.js';
import type { HostNet } from './host.js';
import { routerInterfaceName } from './names.js';

/**
 * IPv6 router advertisements from a router namespace, sent by radvd as
 * Neutron's L3 agent sends them: on each router interface with an IPv6
 * subnet whose `ipv6_ra_mode` is set, the subnet's prefix with the flags of
 * its mode (`slaac`: addresses by SLAAC; `dhcpv6-stateless`: SLAAC plus
 * other configuration by DHCPv6; `dhcpv6-stateful`: addresses by DHCPv6),
 * the network's MTU and the subnet's DNS servers. A subnet without an RA
 * mode gets none (its router advertisements come from elsewhere, if at all).
 */

/** Neutron's defaults (`min_rtr_adv_interval`, `max_rtr_adv_interval`); a host that solicits is answered at once. */
const MIN_INTERVAL_S = 30;
const MAX_INTERVAL_S = 100;

/** radvd's configuration for a router's interfaces; null when none of them advertises. */
export function radvdConfig(interfaces: RouterPort[]): string | null {
  const blocks: string[] = [];
  for (const port of interfaces) {
    const subnets = port.subnets.filter((s) => s.ip_version === 6 && s.ipv6_ra_mode !== null);
    if (subnets.length === 0) continue;
    const modes = new Set(subnets.map((s) => s.ipv6_ra_mode));
    const lines = [
      `interface ${routerInterfaceName(port.id)}`,
      '{',
      '  AdvSendAdvert on;',
      `  MinRtrAdvInterval ${MIN_INTERVAL_S};`,
      `  MaxRtrAdvInterval ${MAX_INTERVAL_S};`,
      `  AdvLinkMTU ${port.mtu};`,
      `  AdvManagedFlag ${modes.has('dhcpv6-stateful') ? 'on' : 'off'};`,
      `  AdvOtherConfigFlag ${modes.has('dhcpv6-stateless') ? 'on' : 'off'};`,
    ];
    for (const subnet of subnets) {
      const cidr = parseCidr(subnet.cidr);
      if (!cidr) continue;
      // SLAAC needs a /64; a prefix of another length is still on-link.
      const autonomous = subnet.ipv6_ra_mode !== 'dhcpv6-stateful' && cidr.prefix === 64;
      lines.push(`  prefix ${formatCidr(cidr)}`, '  {', '    AdvOnLink on;', `    AdvAutonomous ${autonomous ? 'on' : 'off'};`, '  };');
    }
    const dns = [...new Set(subnets.flatMap((s) => s.dns_nameservers).filter((d) => d.includes(':')))];
    if (dns.length > 0) lines.push(`  RDNSS ${dns.join(' ')}`, '  {', '  };');
    lines.push('};');
    blocks.push(lines.join('\n'));
  }
  return blocks.length > 0 ? `${blocks.join('\n\n')}\n` : null;
}

/**
 * One radvd per router namespace that needs one, its files (`radvd.conf`,
 * `radvd.pid`, `radvd.log`) in the router's state directory. A changed
 * configuration is reloaded (SIGHUP, same process); a router that no longer
 * advertises has its radvd stopped. Converges like the rest of the router.
 */
export class RouterAdvertisements {
  constructor(
    private readonly host: HostNet,
    private readonly log: Logger,
  ) {}

  async converge(ns: string, dir: string, interfaces: RouterPort[]): Promise<void> {
    const config = radvdConfig(interfaces);
    if (config === null) {
      await this.stop(dir);
      return;
    }
    const confFile = path.join(dir, 'radvd.conf');
    const pidFile = path.join(dir, 'radvd.pid');
    const changed = (await fs.readFile(confFile, 'utf8').catch(() => '')) !== config;
    if (changed) {
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(`${confFile}.tmp`, config);
      await fs.rename(`${confFile}.tmp`, confFile);
    }
    const pid = await readPid(pidFile);
    if (pid && (await processAlive(pid, confFile))) {
      if (changed) {
        process.kill(pid, 'SIGHUP');
        this.log.info({ ns, pid }, 'radvd reloaded');
      }
      return;
    }
    await fs.rm(pidFile, { force: true });
    // radvd checks the file, then forks into the background and writes its pid.
    await this.host.nsExec(ns, 'radvd', ['-C', confFile, '-p', pidFile, '-m', 'logfile', '-l', path.join(dir, 'radvd.log')]);
    for (let i = 0; i < 50; i++) {
      const started = await readPid(pidFile);
      if (started && (await processAlive(started, confFile))) {
        this.log.info({ ns, pid: started }, 'radvd started');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`radvd in ${ns} did not stay up (see ${path.join(dir, 'radvd.log')})`);
  }

  /** Stops the router's radvd, if it runs, and removes its configuration. */
  async stop(dir: string): Promise<void> {
    const confFile = path.join(dir, 'radvd.conf');
    const pidFile = path.join(dir, 'radvd.pid');
    const pid = await readPid(pidFile);
    if (pid) await killProcess(pid, confFile);
    await fs.rm(pidFile, { force: true });
    await fs.rm(confFile, { force: true });
  }
}
