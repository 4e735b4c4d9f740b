import { run } from '../../core/host-commands.js';

/** A network device as `ip -j -d link show` gives it (the fields we read). */
export interface Link {
  ifname: string;
  /** The bridge it is a port of. */
  master?: string;
  operstate?: string;
  address?: string;
  mtu?: number;
  /** `bridge`, `veth`, `tun`, `vxlan`, `vlan`...; absent for plain devices. */
  kind?: string;
}

interface RawLink {
  ifname: string;
  master?: string;
  operstate?: string;
  address?: string;
  mtu?: number;
  linkinfo?: { info_kind?: string };
}

/**
 * Where the agents' host-side devices live (bridges, taps, the host ends of
 * veths, the host's packet-filter rules): the host itself, or, in tests, a
 * namespace that stands for it, so that a test touches nothing of the real
 * host. Router and DHCP namespaces are named, global namespaces either way.
 * Every command is an argument array, never a shell.
 */
export class HostNet {
  constructor(readonly netns: string | null = null) {}

  /** `ip args` on the host. */
  ip(args: string[]): Promise<string> {
    return run('ip', this.netns ? ['-n', this.netns, ...args] : args);
  }

  /** Runs a program on the host (inside its namespace when it has one). */
  exec(binary: string, args: string[], options: { input?: string } = {}): Promise<string> {
    return this.netns ? run('ip', ['netns', 'exec', this.netns, binary, ...args], options) : run(binary, args, options);
  }

  /** Runs a program inside the named namespace `ns` (a router's or a DHCP server's). */
  nsExec(ns: string, binary: string, args: string[], options: { input?: string } = {}): Promise<string> {
    return run('ip', ['netns', 'exec', ns, binary, ...args], options);
  }

  /** The host's network devices. */
  async links(): Promise<Link[]> {
    const raw = JSON.parse((await this.ip(['-j', '-d', 'link', 'show'])) || '[]') as RawLink[];
    return raw.map((l) => ({
      ifname: l.ifname,
      ...(l.master !== undefined ? { master: l.master } : {}),
      ...(l.operstate !== undefined ? { operstate: l.operstate } : {}),
      ...(l.address !== undefined ? { address: l.address } : {}),
      ...(l.mtu !== undefined ? { mtu: l.mtu } : {}),
      ...(l.linkinfo?.info_kind !== undefined ? { kind: l.linkinfo.info_kind } : {}),
    }));
  }

  /** The device `name` on the host, or null. */
  async link(name: string): Promise<Link | null> {
    try {
      const raw = JSON.parse(await this.ip(['-j', '-d', 'link', 'show', 'dev', name])) as RawLink[];
      const l = raw[0];
      if (!l) return null;
      return { ifname: l.ifname, ...(l.master !== undefined ? { master: l.master } : {}), ...(l.operstate !== undefined ? { operstate: l.operstate } : {}), ...(l.address !== undefined ? { address: l.address } : {}), ...(l.mtu !== undefined ? { mtu: l.mtu } : {}), ...(l.linkinfo?.info_kind !== undefined ? { kind: l.linkinfo.info_kind } : {}) };
    } catch {
      return null;
    }
  }

  /** Deletes the device `name` on the host; one already gone is not an error. */
  async deleteLink(name: string): Promise<void> {
    await this.ip(['link', 'delete', 'dev', name]).catch(async (err: unknown) => {
      if (await this.link(name)) throw err;
    });
  }

  /** The named namespaces (`ip netns list`). */
  async namespaces(): Promise<string[]> {
    const out = await run('ip', ['-j', 'netns', 'list']).catch(() => '');
    if (!out.trim()) return [];
    return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
  }

  /** Creates the namespace `ns` with its loopback up; an existing one is kept. */
  async ensureNamespace(ns: string): Promise<void> {
    if (!(await this.namespaces()).includes(ns)) {
      await run('ip', ['netns', 'add', ns]).catch(async (err: unknown) => {
        if (!(await this.namespaces()).includes(ns)) throw err;
      });
    }
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  /** Kills what runs in `ns` and deletes it; one already gone is not an error. */
  async deleteNamespace(ns: string): Promise<void> {
    if (!(await this.namespaces()).includes(ns)) return;
    const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => ''))
      .split(/\s+/)
      .map(Number)
      .filter((p) => Number.isInteger(p) && p > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await run('ip', ['netns', 'delete', ns]).catch(async (err: unknown) => {
      if ((await this.namespaces()).includes(ns)) throw err;
    });
  }

  /**
   * A veth pair: `outer` on the host, `inner` in namespace `ns`, with the
   * port's MAC on `inner` and the MTU on both, both up. Idempotent: an
   * existing pair is kept (its MAC and MTU set again).
   */
  async ensureVeth(outer: string, inner: string, ns: string, options: { mac?: string; mtu?: number } = {}): Promise<void> {
    const innerExists = await run('ip', ['-n', ns, 'link', 'show', 'dev', inner]).then(
      () => true,
      () => false,
    );
    if (!innerExists) {
      // A stale host end (its peer went with an old namespace) is replaced.
      if (await this.link(outer)) await this.deleteLink(outer);
      await this.ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', ns]);
    }
    if (options.mac) await run('ip', ['-n', ns, 'link', 'set', 'dev', inner, 'address', options.mac]);
    if (options.mtu) {
      await this.ip(['link', 'set', 'dev', outer, 'mtu', String(options.mtu)]);
      await run('ip', ['-n', ns, 'link', 'set', 'dev', inner, 'mtu', String(options.mtu)]);
    }
    await this.ip(['link', 'set', 'dev', outer, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'dev', inner, 'up']);
  }
}
