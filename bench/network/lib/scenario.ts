import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { hostBusy, treePids, treeMemory } from '../../lib/proc.js';
import { NetworkClient, openSession, UnexpectedAnswer, type Session } from './client.js';
import { boundedLoad, latency, type Latency, type LoadResult } from './load.js';
import type { Settings } from './settings.js';
import type { Target } from './targets.js';

/** CPU seconds the server (and its database) used during one phase. */
export interface PhaseCpu {
  server_s: number;
  db_s: number;
  /** The server's processes that used at least 0.05 s, by name: how the work was spread over the workers. */
  by_process: Record<string, number>;
}

/** Clock ticks per second of /proc/<pid>/stat (100 on Linux). */
const CLK_TCK = 100;

/**
 * CPU seconds so far of each live process of the trees, by "pid name": user +
 * system, plus that of its children that ended and were reaped (PostgreSQL's
 * postmaster reaps the backends of closed connections), so nothing is lost
 * when a backend goes.
 */
function processCpu(roots: number[]): Map<string, number> {
  const out = new Map<string, number>();
  if (roots.length === 0) return out;
  for (const pid of treePids(roots)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]?.split(' (')[0]?.slice(0, 40) ?? '?';
      // Fields 14-17 of stat: utime, stime, cutime, cstime.
      out.set(`${pid} ${cmd}`, (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLK_TCK);
    } catch {
      // The process ended meanwhile.
    }
  }
  return out;
}

const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

/** Repeated GETs of one list. */
export interface ListResult {
  query: string;
  load: LoadResult;
  /** Items in the last answer. */
  items: number | null;
  /** Median size of the answers' bodies, bytes. */
  bytes_median: number | null;
}

/** Everything measured on one target. */
export interface TargetResult {
  name: string;
  available: boolean;
  /** Why it was not (fully) measured, or what went wrong. */
  note: string;
  setup: Record<string, string | number | null>;
  network_url: string | null;
  token_issue_s: number | null;
  /** PUT /v2.0/quotas/{project}: the HTTP status (0: not sent or no answer). */
  quota_status: number;
  host_busy_pct_before: number | null;
  create_c1: LoadResult | null;
  create_cn: LoadResult | null;
  /** Filling up to TOTAL_PORTS at concurrency CONCURRENCY (also a creation rate). */
  fill: LoadResult | null;
  ports_present: number;
  list_full: ListResult | null;
  list_page: ListResult | null;
  list_device: ListResult | null;
  delete: LoadResult | null;
  cleanup: { ports_left: number; subnets_left: number; network_deleted: boolean; note: string };
  cpu: Record<string, PhaseCpu>;
  memory: { idle_rss_mib: number | null; after_fill_rss_mib: number | null; db_after_fill_rss_mib: number | null; procs: number | null };
}

/** A result with nothing measured yet. */
export function emptyResult(name: string, note: string, setup: Record<string, string | number | null> = {}): TargetResult {
  return {
    name,
    available: false,
    note,
    setup,
    network_url: null,
    token_issue_s: null,
    quota_status: 0,
    host_busy_pct_before: null,
    create_c1: null,
    create_cn: null,
    fill: null,
    ports_present: 0,
    list_full: null,
    list_page: null,
    list_device: null,
    delete: null,
    cleanup: { ports_left: 0, subnets_left: 0, network_deleted: false, note: '' },
    cpu: {},
    memory: { idle_rss_mib: null, after_fill_rss_mib: null, db_after_fill_rss_mib: null, procs: null },
  };
}

/**
 * The IPv4 subnets for `needed` ports: `cidr` itself when `prefix` is its
 * own length, else as many of its /`prefix` parts as needed, in order. Each
 * offers 2^(32-prefix) - 3 addresses (network, gateway and broadcast are not
 * handed out). Throws when `cidr` cannot hold them.
 */
export function subnetPlan(cidr: string, prefix: number, needed: number): string[] {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const length = Number(m?.[5]);
  if (!m || octets.some((o) => o > 255) || length < 8 || prefix < length || prefix > 29) throw new Error(`SUBNET_CIDR=${cidr} with SUBNET_PREFIX=${prefix}: an IPv4 CIDR of length 8..${prefix} is needed`);
  const base = octets.reduce((a, o) => a * 256 + o, 0);
  const per = 2 ** (32 - prefix) - 3;
  const count = Math.ceil(needed / per);
  if (count > 2 ** (prefix - length)) throw new Error(`SUBNET_CIDR=${cidr} holds ${2 ** (prefix - length) * per} addresses in /${prefix} subnets, fewer than the ${needed} needed`);
  const dotted = (x: number): string => [24, 16, 8, 0].map((sh) => Math.floor(x / 2 ** sh) % 256).join('.');
  return Array.from({ length: count }, (_, k) => `${dotted(base + k * 2 ** (32 - prefix))}/${prefix}`);
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** A created port: what the list and delete phases need. */
interface Created {
  id: string;
  deviceId: string;
}

/**
 * The measurement of one target, in order: token and catalog, warm-up, one
 * network with one IPv4 subnet, ports at concurrency 1, ports at concurrency
 * N, more ports up to TOTAL_PORTS, the three lists, then deleting every port,
 * the subnet and the network. Every phase is bounded in count and time. The
 * network's resources are deleted whatever happened before (the result says
 * what was left).
 */
export class TargetRun {
  readonly result: TargetResult;
  private session: Session | null = null;
  private sessionAt = 0;
  private client: NetworkClient | null = null;
  private networkId: string | null = null;
  private readonly subnetIds: string[] = [];
  private readonly created: Created[] = [];
  private readonly stamp = new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14);

  constructor(
    private readonly target: Target,
    private readonly s: Settings,
    private readonly say: (line: string) => void,
    private readonly aborted: () => boolean = () => false,
  ) {
    this.result = emptyResult(target.name, '', target.setup);
  }

  private get api(): NetworkClient {
    if (!this.client) throw new Error('no session');
    return this.client;
  }

  /** Runs `fn` and records the server's and the database's CPU seconds under `phase`. */
  private async withCpu<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const server = processCpu(this.target.serverPids());
    const db = sum(processCpu(this.target.dbPids()));
    try {
      return await fn();
    } finally {
      const after = processCpu(this.target.serverPids());
      const by_process: Record<string, number> = {};
      for (const [name, cpu] of after) {
        const used = cpu - (server.get(name) ?? 0);
        if (used >= 0.05) by_process[name] = round2(used);
      }
      this.result.cpu[phase] = { server_s: round2(sum(after) - sum(server)), db_s: round2(sum(processCpu(this.target.dbPids())) - db), by_process };
    }
  }

  /** A bounded load that also ends when the run is aborted. */
  private load(opts: Parameters<typeof boundedLoad>[0]): Promise<LoadResult> {
    return boundedLoad({ ...opts, aborted: this.aborted });
  }

  /** Throws once the run is aborted (a signal or the total time limit): no further phase starts. */
  private checkAborted(): void {
    if (this.aborted()) throw new Error('aborted');
  }

  /** A token (again when the last one is older than 20 minutes; they live an hour). */
  private async refreshToken(): Promise<void> {
    if (this.session && performance.now() - this.sessionAt < 20 * 60 * 1000) return;
    this.session = await openSession(this.target.credentials);
    this.sessionAt = performance.now();
    if (this.client) this.client.setToken(this.session.token);
    else this.client = new NetworkClient(this.session.networkUrl, this.session.token, this.s.concurrency, this.s.keepAlive);
  }

  /** Measures everything; never throws (failures go to `result.note`). */
  async run(): Promise<TargetResult> {
    const r = this.result;
    const s = this.s;
    try {
      await this.refreshToken();
      const session = this.session;
      if (!session) throw new Error('no session');
      r.available = true;
      r.network_url = session.networkUrl;
      r.token_issue_s = round2(session.issue_s);
      await this.prepare(session);
      r.host_busy_pct_before = Math.round(await hostBusy(2000));
      this.checkAborted();
      r.create_c1 = await this.withCpu('create_c1', () => this.createPorts('c1', s.c1Ports, 1, s.phaseTimeS, true));
      this.say(`${r.name}: ${describeLoad('created', r.create_c1)}`);
      this.checkAborted();
      r.create_cn = await this.withCpu('create_cn', () => this.createPorts('cn', s.cNPorts, s.concurrency, s.phaseTimeS, true));
      this.say(`${r.name}: ${describeLoad('created', r.create_cn)}`);
      await this.refreshToken();
      const missing = Math.max(0, s.totalPorts - this.created.length);
      this.say(`${r.name}: creating ${missing} more ports (to ${s.totalPorts}) at concurrency ${s.concurrency}, at most ${s.fillTimeS} s`);
      this.checkAborted();
      r.fill = await this.withCpu('fill', () => this.createPorts('fill', missing, s.concurrency, s.fillTimeS, false));
      this.say(`${r.name}: ${describeLoad('created', r.fill)}`);
      r.ports_present = this.created.length;
      const mem = treeMemory(this.target.serverPids());
      r.memory.after_fill_rss_mib = mem.procs ? Math.round(mem.rss_mib) : null;
      r.memory.procs = mem.procs || null;
      const db = treeMemory(this.target.dbPids());
      r.memory.db_after_fill_rss_mib = db.procs ? Math.round(db.rss_mib) : null;
      await this.refreshToken();
      this.checkAborted();
      await this.measureLists();
    } catch (err) {
      r.note = err instanceof Error ? err.message : String(err);
      this.say(`${r.name}: stopped: ${r.note}`);
    } finally {
      await this.cleanup().catch((err: unknown) => {
        r.cleanup.note = `cleanup failed: ${err instanceof Error ? err.message : String(err)}`;
      });
      this.client?.close();
    }
    return r;
  }

  /** Warm-up (untimed), quotas, the network and its subnet. */
  private async prepare(session: Session): Promise<void> {
    const s = this.s;
    const r = this.result;
    const t = s.requestTimeoutS * 1000;
    // Several connections at once, so every API worker has validated the token before the clock runs.
    await this.load({
      count: 4 * s.concurrency,
      concurrency: s.concurrency,
      timeLimitS: 60,
      maxErrors: 1,
      keepLatencies: false,
      op: async () => (await this.api.expect('GET', '/v2.0/networks', undefined, 200, t)).res.ms,
    }).then((w) => {
      if (w.errors) throw new UnexpectedAnswer(`warm-up GET /v2.0/networks failed: ${w.error_samples.join('; ')}`);
    });
    const mem = treeMemory(this.target.serverPids());
    r.memory.idle_rss_mib = mem.procs ? Math.round(mem.rss_mib) : null;
    // Unlimited ports, networks and subnets for the project (Neutron's default port quota is 500).
    const quota = await this.api.request('PUT', `/v2.0/quotas/${session.projectId}`, { quota: { network: -1, subnet: -1, port: -1 } }, t).catch(() => null);
    r.quota_status = quota?.status ?? 0;
    if (quota && quota.status !== 200) this.say(`${r.name}: PUT /v2.0/quotas answered HTTP ${quota.status} (going on with the configured quotas): ${quota.body.slice(0, 200)}`);
    const cidrs = subnetPlan(s.subnetCidr, s.subnetPrefix, s.totalPorts + 4 * s.concurrency);
    const net = await this.api.expect('POST', '/v2.0/networks', { network: { name: `netbench-${this.stamp}`, admin_state_up: true } }, 201, t);
    this.networkId = (net.json as { network: { id: string } }).network.id;
    for (const [k, cidr] of cidrs.entries()) {
      const sub = await this.api.expect('POST', '/v2.0/subnets', { subnet: { name: `netbench-${this.stamp}-${k}`, network_id: this.networkId, ip_version: 4, cidr, enable_dhcp: false } }, 201, t);
      this.subnetIds.push((sub.json as { subnet: { id: string } }).subnet.id);
    }
    // A few ports made and deleted untimed: first-use costs (caches, JIT, connections) before the clock runs.
    const warm: Created[] = [];
    const made = await this.load({
      count: 2 * s.concurrency,
      concurrency: s.concurrency,
      timeLimitS: 120,
      maxErrors: 1,
      keepLatencies: false,
      op: async (i) => {
        const port = await this.createOne(`netbench-warm-${i}`);
        warm.push(port);
        return port.ms;
      },
    });
    if (made.errors) throw new UnexpectedAnswer(`warm-up POST /v2.0/ports failed: ${made.error_samples.join('; ')}`);
    await this.load({
      count: warm.length,
      concurrency: s.concurrency,
      timeLimitS: 120,
      maxErrors: 1,
      keepLatencies: false,
      op: async (i) => (await this.api.expect('DELETE', `/v2.0/ports/${warm[i]?.id ?? ''}`, undefined, 204, t)).res.ms,
    }).then((d) => {
      if (d.errors) throw new UnexpectedAnswer(`warm-up DELETE /v2.0/ports failed: ${d.error_samples.join('; ')}`);
    });
  }

  private async createOne(name: string): Promise<Created & { ms: number }> {
    const deviceId = randomUUID();
    const { json, res } = await this.api.expect('POST', '/v2.0/ports', { port: { network_id: this.networkId, name, device_id: deviceId } }, 201, this.s.requestTimeoutS * 1000);
    const port = (json as { port?: { id?: string; fixed_ips?: unknown[] } }).port;
    if (!port?.id) throw new UnexpectedAnswer(`POST /v2.0/ports: no port id in ${res.body.slice(0, 200)}`);
    if (!Array.isArray(port.fixed_ips) || port.fixed_ips.length !== 1) throw new UnexpectedAnswer(`POST /v2.0/ports: expected one fixed IP, got ${JSON.stringify(port.fixed_ips)}`);
    return { id: port.id, deviceId, ms: res.ms };
  }

  /** Creates `count` ports at `concurrency`; the created ones are kept for the lists and the cleanup. */
  private createPorts(phase: string, count: number, concurrency: number, timeLimitS: number, keepLatencies: boolean): Promise<LoadResult> {
    return this.load({
      count,
      concurrency,
      timeLimitS,
      maxErrors: this.s.maxErrors,
      keepLatencies,
      progressEvery: keepLatencies ? undefined : 1000,
      op: async (i) => {
        const port = await this.createOne(`netbench-${phase}-${i}`);
        this.created.push({ id: port.id, deviceId: port.deviceId });
        if (this.created.length % 1000 === 0) this.say(`${this.target.name}: ${this.created.length} ports`);
        return port.ms;
      },
    });
  }

  /** GET /v2.0/ports three ways, one request at a time, each checked. */
  private async measureLists(): Promise<void> {
    const s = this.s;
    const r = this.result;
    const n = this.created.length;
    if (n === 0) throw new Error('no ports were created; nothing to list');
    const listTimeout = s.listTimeoutS * 1000;
    const full = async (): Promise<{ ms: number; items: number; bytes: number }> => {
      const { json, res } = await this.api.expect('GET', '/v2.0/ports', undefined, 200, listTimeout);
      const items = (json as { ports?: unknown[] }).ports?.length ?? -1;
      // Admin sees every project's ports: at least ours.
      if (items < n) throw new UnexpectedAnswer(`GET /v2.0/ports: ${items} ports, expected at least ${n}`);
      return { ms: res.ms, items, bytes: res.bytes };
    };
    const pageQuery = `/v2.0/ports?network_id=${this.networkId ?? ''}&limit=${s.pageLimit}`;
    const page = async (): Promise<{ ms: number; items: number; bytes: number }> => {
      const { json, res } = await this.api.expect('GET', pageQuery, undefined, 200, listTimeout);
      const ports = (json as { ports?: { network_id?: string }[] }).ports ?? [];
      const want = Math.min(s.pageLimit, n);
      if (ports.length !== want || ports.some((p) => p.network_id !== this.networkId)) throw new UnexpectedAnswer(`GET ${pageQuery}: ${ports.length} ports (expected ${want}, all on the network)`);
      return { ms: res.ms, items: ports.length, bytes: res.bytes };
    };
    const device = async (k: number): Promise<{ ms: number; items: number; bytes: number }> => {
      // A different port each time, spread over all of them (the oldest and the newest included).
      const port = this.created[(k * 7919) % n];
      if (!port) throw new Error('no port');
      const query = `/v2.0/ports?device_id=${port.deviceId}`;
      const { json, res } = await this.api.expect('GET', query, undefined, 200, listTimeout);
      const ports = (json as { ports?: { id?: string }[] }).ports ?? [];
      if (ports.length !== 1 || ports[0]?.id !== port.id) throw new UnexpectedAnswer(`GET ${query}: ${ports.length} ports, expected exactly port ${port.id}`);
      return { ms: res.ms, items: ports.length, bytes: res.bytes };
    };
    r.list_full = await this.withCpu('list_full', () => this.repeat('GET /v2.0/ports', s.fullListReps, full));
    this.say(`${r.name}: ${describeList(r.list_full)}`);
    r.list_page = await this.withCpu('list_page', () => this.repeat(`GET /v2.0/ports?network_id=...&limit=${s.pageLimit}`, s.pageListReps, page));
    this.say(`${r.name}: ${describeList(r.list_page)}`);
    r.list_device = await this.withCpu('list_device', () => this.repeat('GET /v2.0/ports?device_id=X', s.deviceListReps, device));
    this.say(`${r.name}: ${describeList(r.list_device)}`);
  }

  /** One untimed request, then `reps` timed ones, sequentially, within LIST_TIME_S. */
  private async repeat(query: string, reps: number, one: (k: number) => Promise<{ ms: number; items: number; bytes: number }>): Promise<ListResult> {
    let items: number | null = null;
    const bytes: number[] = [];
    // A failure here shows again in the timed requests, where it is counted.
    if (reps > 0) await one(reps).catch(() => undefined);
    const load = await this.load({
      count: reps,
      concurrency: 1,
      timeLimitS: this.s.listTimeS,
      maxErrors: Math.min(this.s.maxErrors, Math.max(1, reps)),
      keepLatencies: true,
      op: async (k) => {
        const a = await one(k);
        items = a.items;
        bytes.push(a.bytes);
        return a.ms;
      },
    });
    return { query, load, items, bytes_median: latency(bytes)?.median ?? null };
  }

  /**
   * Deletes every port this run created (timed: the delete rate), then the
   * subnet and the network. Records what is left when something fails.
   */
  private async cleanup(): Promise<void> {
    const r = this.result;
    if (!this.client || !this.networkId) return;
    if (this.aborted()) {
      r.cleanup.note = 'aborted: the network, its subnet and ports were left (the server was stopped)';
      return;
    }
    await this.refreshToken().catch(() => undefined);
    const t = this.s.requestTimeoutS * 1000;
    const ports = this.created.splice(0);
    if (ports.length) {
      this.say(`${r.name}: deleting ${ports.length} ports at concurrency ${this.s.concurrency}, at most ${this.s.deleteTimeS} s`);
      const gone = new Set<number>();
      r.delete = await this.withCpu('delete', () =>
        this.load({
          count: ports.length,
          concurrency: this.s.concurrency,
          timeLimitS: this.s.deleteTimeS,
          maxErrors: this.s.maxErrors,
          keepLatencies: false,
          progressEvery: 1000,
          op: async (i) => {
            const res = await this.api.expect('DELETE', `/v2.0/ports/${ports[i]?.id ?? ''}`, undefined, 204, t);
            gone.add(i);
            return res.res.ms;
          },
        }),
      );
      this.say(`${r.name}: ${describeLoad('deleted', r.delete)}`);
      r.cleanup.ports_left = ports.length - gone.size;
    }
    const notes: string[] = [];
    const orphans = await this.deleteOrphans(new Set(ports.map((p) => p.id)), t).catch((err: unknown) => {
      notes.push(`listing the network's remaining ports failed: ${err instanceof Error ? err.message : String(err)}`);
      return 0;
    });
    if (orphans) notes.push(`${orphans} ports the benchmark had given up on (client time-out) were made by the server after all; deleted`);
    let subnetsLeft = 0;
    for (const id of this.subnetIds.splice(0)) {
      const res = await this.api.request('DELETE', `/v2.0/subnets/${id}`, undefined, t).catch((err: unknown) => ({ status: 0, body: String(err) }));
      if (res.status !== 204) {
        subnetsLeft++;
        if (subnetsLeft === 1) notes.push(`DELETE subnet: HTTP ${res.status} ${res.body.slice(0, 200)}`);
      }
    }
    r.cleanup.subnets_left = subnetsLeft;
    const res = await this.api.request('DELETE', `/v2.0/networks/${this.networkId}`, undefined, t).catch((err: unknown) => ({ status: 0, body: String(err) }));
    r.cleanup.network_deleted = res.status === 204;
    if (!r.cleanup.network_deleted) notes.push(`DELETE network: HTTP ${res.status} ${res.body.slice(0, 200)}`);
    if (r.cleanup.ports_left) notes.push(`${r.cleanup.ports_left} ports not deleted`);
    r.cleanup.note = [r.cleanup.note, ...notes].filter(Boolean).join('; ');
    this.networkId = null;
  }

  /**
   * Deletes the ports still on the benchmark's network: those whose creation
   * the benchmark gave up on (a client time-out) but the server finished
   * (ports it made and knows of are not deleted twice).
   * Returns how many it found; the ones it could not delete count as left.
   */
  private async deleteOrphans(known: Set<string>, timeoutMs: number): Promise<number> {
    const { json } = await this.api.expect('GET', `/v2.0/ports?network_id=${this.networkId ?? ''}&fields=id`, undefined, 200, this.s.listTimeoutS * 1000);
    const ids = ((json as { ports?: { id?: string }[] }).ports ?? []).map((p) => p.id ?? '').filter((id) => id !== '' && !known.has(id));
    if (ids.length === 0) return 0;
    const d = await this.load({
      count: ids.length,
      concurrency: this.s.concurrency,
      timeLimitS: this.s.deleteTimeS,
      maxErrors: this.s.maxErrors,
      keepLatencies: false,
      op: async (i) => (await this.api.expect('DELETE', `/v2.0/ports/${ids[i] ?? ''}`, undefined, 204, timeoutMs)).res.ms,
    });
    this.result.cleanup.ports_left += ids.length - d.ok;
    return ids.length;
  }
}

/** "300 ports created in 10.2 s = 29.4/s at c=1 (median 33 ms, p95 40 ms)" and errors, if any. */
export function describeLoad(verb: string, l: LoadResult): string {
  const lat = l.latency_ms as Latency | null;
  const stop = l.stopped_by === 'count' ? '' : `, stopped by the ${l.stopped_by === 'time' ? 'time limit' : 'error limit'}`;
  const errors = l.errors ? `, ${l.errors} failed (${l.error_samples[0] ?? ''})` : '';
  return `${l.ok}/${l.requested} ports ${verb} in ${l.elapsed_s.toFixed(1)} s = ${l.rate_per_s.toFixed(1)}/s at c=${l.concurrency}${lat ? ` (median ${lat.median.toFixed(1)} ms, p95 ${lat.p95.toFixed(1)} ms)` : ''}${errors}${stop}`;
}

function describeList(l: ListResult): string {
  const lat = l.load.latency_ms;
  const errors = l.load.errors ? `, ${l.load.errors} failed (${l.load.error_samples[0] ?? ''})` : '';
  return `${l.query}: ${l.load.ok} x, ${l.items ?? '?'} items, ${l.bytes_median ?? '?'} bytes${lat ? `, median ${lat.median.toFixed(1)} ms, p95 ${lat.p95.toFixed(1)} ms` : ''}${errors}`;
}
