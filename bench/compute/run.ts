/**
 * Compute benchmark: `stratus up` with 100 fake hypervisor hosts; COUNT
 * servers booted to ACTIVE, then deleted, through the compute API at each
 * concurrency, on SQLite + the in-process bus and on PostgreSQL + RabbitMQ.
 * Measures servers per second to ACTIVE, API-to-ACTIVE latency (p50, p99),
 * scheduler decisions per second (the scheduler's Prometheus counter) and
 * deletes per second. Not part of the test suite. See bench/compute/README.md.
 *
 *   bash bench/compute/run.sh                  (builds Stratus, then runs this file)
 *   node_modules/.bin/tsx bench/compute/run.ts (from the source)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { httpRequest, issueToken } from '../lib/http.js';
import { liveChildren, runCommand, sleep, treeCpuSeconds, within } from '../lib/proc.js';
import { gitInfo, hostInfo, loadAvg, message, onInterrupt, runMain, say, writeResults } from '../lib/run.js';
import { applyFlags, intEnv, UsageError } from '../lib/settings.js';
import { StratusProcess, stratusEnv } from '../lib/stratus.js';
import { ascending } from '../lib/stats.js';
import { markdownTable } from '../lib/table.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(process.env.STRATUS_REPO || (path.basename(path.resolve(HERE, '..', '..')) === 'dist' ? path.resolve(HERE, '..', '..', '..') : path.resolve(HERE, '..', '..')));
const RESULTS_DIR = path.join(ROOT, 'bench', 'compute', 'results');
const COMPUTE_VERSION = 'compute 2.93';

type Backend = 'sqlite' | 'postgres';

interface Settings {
  count: number;
  concurrency: number[];
  fakeHosts: number;
  backends: Backend[];
  network: 'network' | 'none';
  pollMs: number;
  phaseTimeoutS: number;
  startTimeoutS: number;
  totalTimeoutS: number;
  portBase: number;
  pgUrl: string;
  amqpUrl: string;
  stratusMain: string;
  profileDir: string | null;
  keepData: boolean;
  password: string;
}

function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const concurrency = (env.CONCURRENCY ?? '1,8,32').split(',').map((x) => Number(x.trim()));
  if (concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new UsageError(`CONCURRENCY=${env.CONCURRENCY}: whole numbers >= 1, comma separated`);
  const backends = (env.BACKENDS ?? 'sqlite,postgres').split(',').map((x) => x.trim());
  for (const b of backends) if (b !== 'sqlite' && b !== 'postgres') throw new UsageError(`BACKENDS=${env.BACKENDS}: sqlite and/or postgres`);
  const network = env.NETWORK ?? 'network';
  if (network !== 'network' && network !== 'none') throw new UsageError(`NETWORK=${network}: 'network' (a port per server, the real path) or 'none'`);
  return {
    count: intEnv('COUNT', 1000, 1, env),
    concurrency,
    fakeHosts: intEnv('FAKE_HOSTS', 100, 1, env),
    backends: backends as Backend[],
    network,
    pollMs: intEnv('POLL_MS', 50, 1, env),
    phaseTimeoutS: intEnv('PHASE_TIMEOUT_S', 600, 1, env),
    startTimeoutS: intEnv('START_TIMEOUT_S', 180, 1, env),
    totalTimeoutS: intEnv('TOTAL_TIMEOUT_S', 3600, 1, env),
    portBase: intEnv('PORT_BASE', 18700, 1024, env),
    pgUrl: env.PG_URL ?? 'postgres://stratus:stratus@127.0.0.1:5432/{service}',
    amqpUrl: env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/',
    stratusMain: path.resolve(env.STRATUS_MAIN ?? path.join(ROOT, 'dist', 'src', 'cli', 'main.js')),
    profileDir: env.PROFILE_DIR ? path.resolve(env.PROFILE_DIR) : null,
    keepData: env.KEEP_DATA === '1',
    password: env.STRATUS_PASSWORD ?? 'bench-admin-secret',
  };
}

/** JSON over HTTP with a token (fetch keeps connections alive, as SDKs do). */
class Api {
  constructor(
    private readonly token: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  async call(method: string, url: string, body?: unknown, extra: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const res = await fetch(url, {
      method,
      headers: { 'X-Auth-Token': this.token, Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...this.headers, ...extra },
      ...(body === undefined ? {} : { body: typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let parsed: unknown = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  }

  async ok(method: string, url: string, body?: unknown, extra: Record<string, string> = {}): Promise<any> {
    const res = await this.call(method, url, body, extra);
    if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
    return res.body;
  }
}

/**
 * Watches the servers of the project with one `GET /servers/detail?changes-since=`
 * at a time, `pollMs` after the previous one ended, and tells each waiter when
 * its server reaches the status it waits for (ACTIVE or DELETED) or ERROR.
 */
class Watcher {
  private readonly waiters = new Map<string, { want: string; resolve(result: { status: string; at: number }): void }>();
  private running = true;
  private loop: Promise<void> | null = null;
  polls = 0;

  constructor(
    private readonly api: Api,
    private readonly computeUrl: string,
    private readonly pollMs: number,
    private readonly aborted: () => string | null,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  /** Stops polling; whoever still waits hears `ABORTED`. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.release();
  }

  private release(): void {
    for (const [id, waiter] of this.waiters) {
      this.waiters.delete(id);
      waiter.resolve({ status: 'ABORTED', at: Date.now() });
    }
  }

  /** Resolves when `id` shows `want` (or ERROR), with the time it was seen. */
  wait(id: string, want: 'ACTIVE' | 'DELETED'): Promise<{ status: string; at: number }> {
    if (!this.running) return Promise.resolve({ status: 'ABORTED', at: Date.now() });
    return new Promise((resolve) => this.waiters.set(id, { want, resolve }));
  }

  private async run(): Promise<void> {
    let since = new Date(Date.now() - 5000).toISOString();
    while (this.running) {
      if (this.aborted()) {
        this.running = false;
        this.release();
        break;
      }
      if (this.waiters.size === 0) {
        await sleep(5);
        continue;
      }
      const started = Date.now();
      try {
        let url: string | null = `${this.computeUrl}/servers/detail?changes-since=${encodeURIComponent(since)}&limit=1000`;
        while (url) {
          const body = (await this.api.ok('GET', url)) as { servers: { id: string; status: string }[]; servers_links?: { rel: string; href: string }[] };
          this.polls++;
          const seenAt = Date.now();
          for (const s of body.servers) {
            const waiter = this.waiters.get(s.id);
            if (waiter && (s.status === waiter.want || s.status === 'ERROR')) {
              this.waiters.delete(s.id);
              waiter.resolve({ status: s.status, at: seenAt });
            }
          }
          url = body.servers_links?.find((l) => l.rel === 'next')?.href ?? null;
        }
        // The next poll looks back a second before this one started (updated_at is written before the reply).
        since = new Date(started - 1000).toISOString();
      } catch (err) {
        say(`warning: poll failed: ${message(err)}`);
      }
      await sleep(this.pollMs);
    }
  }
}

/** Runs `work` on items 0..n-1, `width` at a time. */
async function bounded(n: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

function percentile(values: number[], p: number): number | null {
  const v = ascending(values);
  if (v.length === 0) return null;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))] ?? null;
}

/** The scheduler's counters, and the API requests answered by role and route, from the Prometheus endpoint. */
async function schedulerMetrics(port: number): Promise<{ placed: number; noValidHost: number; selectSum: number; selectCount: number; requests: Map<string, number>; queries: Map<string, number> }> {
  const res = await httpRequest(`http://127.0.0.1:${port}/metrics`, { timeoutMs: 10_000 });
  const value = (re: RegExp): number => Number(re.exec(res.body)?.[1] ?? 0);
  const requests = new Map<string, number>();
  for (const m of res.body.matchAll(/^stratus_http_requests_total\{([^}]*)\} ([\d.e+]+)$/gm)) {
    const labels = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    const key = `${labels.role ?? ''} ${labels.method ?? ''} ${labels.route ?? ''}`;
    requests.set(key, (requests.get(key) ?? 0) + Number(m[2]));
  }
  // Database queries answered, by role (each service's database layer counts them).
  const queries = new Map<string, number>();
  for (const m of res.body.matchAll(/^stratus_db_query_duration_seconds_count\{([^}]*)\} ([\d.e+]+)$/gm)) {
    const role = /role="([^"]*)"/.exec(m[1] ?? '')?.[1] ?? '';
    queries.set(role, (queries.get(role) ?? 0) + Number(m[2]));
  }
  return {
    requests,
    queries,
    placed: value(/^stratus_compute_scheduler_decisions_total\{result="placed"\} ([\d.e+]+)$/m),
    noValidHost: value(/^stratus_compute_scheduler_decisions_total\{result="no_valid_host"\} ([\d.e+]+)$/m),
    selectSum: value(/^stratus_compute_scheduler_select_seconds_sum ([\d.e+-]+)$/m),
    selectCount: value(/^stratus_compute_scheduler_select_seconds_count ([\d.e+]+)$/m),
  };
}

interface PhaseResult {
  backend: Backend;
  concurrency: number;
  servers: number;
  active: number;
  errors: number;
  boot_s: number;
  boot_per_s: number;
  boot_p50_ms: number | null;
  boot_p99_ms: number | null;
  scheduler_decisions: number;
  scheduler_decisions_per_s: number;
  scheduler_mean_select_ms: number | null;
  deleted: number;
  delete_s: number;
  delete_per_s: number;
  delete_p50_ms: number | null;
  delete_p99_ms: number | null;
  stratus_cpu_s: number | null;
  polls: number;
  /** API requests answered per server booted and deleted, by role, method and route (the most frequent). */
  requests_per_server: Record<string, number>;
  /** Database queries per server (boot and delete), by role. */
  queries_per_server: Record<string, number>;
  first_error: string | null;
}

/** One backend: a fresh `stratus up`, the image, network and quota, then every concurrency in turn. */
class BackendRun {
  private readonly proc: StratusProcess;
  private readonly dataDir: string;
  private readonly unique = `${Date.now().toString(36)}${process.pid}`;
  private vhost: string | null = null;
  readonly results: PhaseResult[] = [];
  note = '';

  constructor(
    private readonly s: Settings,
    readonly backend: Backend,
    workDir: string,
    private readonly aborted: () => string | null,
  ) {
    this.dataDir = path.join(workDir, `stratus-${backend}`);
    const nodeArgs = s.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(s.profileDir, backend)}`] : [];
    this.proc = new StratusProcess(s.stratusMain, nodeArgs);
  }

  private get ports(): { identity: number; image: number; network: number; placement: number; compute: number; metrics: number } {
    const b = this.s.portBase;
    return { identity: b, image: b + 1, network: b + 2, placement: b + 3, compute: b + 4, metrics: b + 5 };
  }

  private async env(): Promise<NodeJS.ProcessEnv> {
    const p = this.ports;
    const env: NodeJS.ProcessEnv = {
      ...stratusEnv({ identityPort: p.identity, imagePort: p.image, networkPort: p.network, placementPort: p.placement, computePort: p.compute, password: this.s.password }),
      STRATUS_METRICS__ENABLED: 'true',
      STRATUS_METRICS__PORT: String(p.metrics),
      STRATUS_LOG_LEVEL: 'warn',
      // 100 hosts with room for far more than COUNT small servers.
      STRATUS_COMPUTE__VIRT_DRIVER: 'fake',
      STRATUS_COMPUTE__FAKE_HOST_RESOURCES__VCPUS: '64',
      STRATUS_COMPUTE__FAKE_HOST_RESOURCES__MEMORY_MB: '262144',
      STRATUS_COMPUTE__FAKE_HOST_RESOURCES__LOCAL_GB: '4000',
    };
    if (this.backend === 'postgres') {
      env.STRATUS_DATABASE_URL = this.s.pgUrl.replaceAll('{service}', `{service}_bench${this.unique}`);
      env.STRATUS_BUS_URL = await this.rabbitVhost();
    }
    return env;
  }

  /** A RabbitMQ virtual host of this run (so that nothing else on the broker takes its messages), or the URL as given. */
  private async rabbitVhost(): Promise<string> {
    const vhost = `stratus-bench-${this.unique}`;
    const add = await runCommand('rabbitmqctl', ['add_vhost', vhost], { timeoutMs: 60_000 });
    if (add.code !== 0) {
      this.note = `own RabbitMQ vhost not made (rabbitmqctl: ${add.stderr.trim().split('\n')[0] ?? ''}); used ${this.s.amqpUrl} as it is`;
      return this.s.amqpUrl;
    }
    this.vhost = vhost;
    const url = new URL(this.s.amqpUrl);
    await runCommand('rabbitmqctl', ['set_permissions', '-p', vhost, decodeURIComponent(url.username || 'guest'), '.*', '.*', '.*'], { timeoutMs: 60_000 });
    url.pathname = `/${encodeURIComponent(vhost)}`;
    return url.toString();
  }

  async run(): Promise<void> {
    const s = this.s;
    const p = this.ports;
    say(`${this.backend}: starting stratus up --fake-hosts ${s.fakeHosts} (compute :${p.compute}, data ${this.dataDir})`);
    await within(this.proc.launch(this.dataDir, await this.env(), ['--fake-hosts', String(s.fakeHosts)]).ready, s.startTimeoutS * 1000, 'stratus up');
    const identity = `http://127.0.0.1:${p.identity}`;
    const token = await issueToken(identity, s.password);
    if (!token.token) throw new Error(`no admin token: ${token.error}`);
    const tokenBody = JSON.parse((await httpRequest(`${identity}/v3/auth/tokens`, { headers: { 'X-Auth-Token': token.token, 'X-Subject-Token': token.token } })).body) as { token: { project: { id: string } } };
    const projectId = tokenBody.token.project.id;
    const api = new Api(token.token);
    const computeUrl = `http://127.0.0.1:${p.compute}/v2.1`;
    const nova = new Api(token.token, { 'OpenStack-API-Version': COMPUTE_VERSION });

    await this.waitForHosts(nova, computeUrl);
    const image = await api.ok('POST', `http://127.0.0.1:${p.image}/v2/images`, { name: 'bench-cirros', disk_format: 'raw', container_format: 'bare', visibility: 'public' });
    await api.ok('PUT', `http://127.0.0.1:${p.image}/v2/images/${image.id}/file`, new Uint8Array(1024), { 'Content-Type': 'application/octet-stream' });
    let networks: unknown = 'none';
    if (s.network === 'network') {
      const net = await api.ok('POST', `http://127.0.0.1:${p.network}/v2.0/networks`, { network: { name: 'bench-net' } });
      await api.ok('POST', `http://127.0.0.1:${p.network}/v2.0/subnets`, { subnet: { network_id: net.network.id, cidr: '10.200.0.0/16', ip_version: 4 } });
      networks = [{ uuid: net.network.id }];
      // Neutron's default port quota (500) would fail the servers past it.
      await api.ok('PUT', `http://127.0.0.1:${p.network}/v2.0/quotas/${projectId}`, { quota: { port: -1 } });
    }
    await nova.ok('PUT', `${computeUrl}/os-quota-sets/${projectId}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });

    const watcher = new Watcher(nova, computeUrl, s.pollMs, this.aborted);
    watcher.start();
    try {
      for (const c of s.concurrency) {
        const why = this.aborted();
        if (why) throw new Error(`aborted: ${why}`);
        this.results.push(await this.phase(nova, computeUrl, watcher, c, image.id as string, networks));
      }
    } finally {
      await watcher.stop();
    }
  }

  /** Waits until every fake host is in the hypervisor list (agents report at start). */
  private async waitForHosts(nova: Api, computeUrl: string): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const body = await nova.ok('GET', `${computeUrl}/os-hypervisors`);
      if ((body.hypervisors as unknown[]).length >= this.s.fakeHosts) return;
      await sleep(100);
    }
    throw new Error(`the ${this.s.fakeHosts} fake hosts did not all report`);
  }

  private async phase(nova: Api, computeUrl: string, watcher: Watcher, c: number, imageId: string, networks: unknown): Promise<PhaseResult> {
    const s = this.s;
    const pid = this.proc.pid;
    const cpu0 = pid ? treeCpuSeconds([pid]) : null;
    const m0 = await schedulerMetrics(this.ports.metrics);
    const ids: string[] = [];
    const bootLatency: number[] = [];
    let errors = 0;
    let firstError: string | null = null;
    const polls0 = watcher.polls;
    say(`${this.backend}: booting ${s.count} servers at concurrency ${c}`);
    const bootStart = Date.now();
    await within(
      bounded(s.count, c, async (i) => {
        if (this.aborted()) return;
        const t0 = Date.now();
        const res = await nova.call('POST', `${computeUrl}/servers`, { server: { name: `bench-${c}-${i}`, imageRef: imageId, flavorRef: '1', networks } });
        if (res.status !== 202) {
          errors++;
          firstError ??= `POST /servers ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`;
          return;
        }
        const id = res.body.server.id as string;
        ids.push(id);
        const seen = await watcher.wait(id, 'ACTIVE');
        if (seen.status !== 'ACTIVE') {
          errors++;
          firstError ??= `server ${id} went to ${seen.status}`;
          return;
        }
        bootLatency.push(seen.at - t0);
      }),
      s.phaseTimeoutS * 1000,
      `booting ${s.count} servers at concurrency ${c}`,
    );
    const bootS = (Date.now() - bootStart) / 1000;
    const m1 = await schedulerMetrics(this.ports.metrics);

    say(`${this.backend}: deleting ${ids.length} servers at concurrency ${c}`);
    const deleteLatency: number[] = [];
    const deleteStart = Date.now();
    await within(
      bounded(ids.length, c, async (i) => {
        const id = ids[i] ?? '';
        const t0 = Date.now();
        const res = await nova.call('DELETE', `${computeUrl}/servers/${id}`);
        if (res.status !== 204) {
          errors++;
          firstError ??= `DELETE /servers/${id} ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`;
          return;
        }
        const seen = await watcher.wait(id, 'DELETED');
        if (seen.status !== 'DELETED') {
          errors++;
          firstError ??= `server ${id} went to ${seen.status} on delete`;
          return;
        }
        deleteLatency.push(seen.at - t0);
      }),
      s.phaseTimeoutS * 1000,
      `deleting at concurrency ${c}`,
    );
    const deleteS = (Date.now() - deleteStart) / 1000;
    const cpu1 = pid ? treeCpuSeconds([pid]) : null;
    const m2 = await schedulerMetrics(this.ports.metrics);
    const perServer = [...m2.requests.entries()]
      .map(([k, n]) => [k, round((n - (m0.requests.get(k) ?? 0)) / Math.max(1, ids.length))] as const)
      .filter(([, n]) => n >= 0.5)
      .sort((a, b) => b[1] - a[1]);
    const decisions = m1.placed - m0.placed;
    const selects = m1.selectCount - m0.selectCount;
    const result: PhaseResult = {
      backend: this.backend,
      concurrency: c,
      servers: s.count,
      active: bootLatency.length,
      errors,
      boot_s: round(bootS),
      boot_per_s: round(bootLatency.length / bootS),
      boot_p50_ms: percentile(bootLatency, 50),
      boot_p99_ms: percentile(bootLatency, 99),
      scheduler_decisions: decisions,
      scheduler_decisions_per_s: round(decisions / bootS),
      scheduler_mean_select_ms: selects > 0 ? round(((m1.selectSum - m0.selectSum) / selects) * 1000) : null,
      deleted: deleteLatency.length,
      delete_s: round(deleteS),
      delete_per_s: round(deleteLatency.length / deleteS),
      delete_p50_ms: percentile(deleteLatency, 50),
      delete_p99_ms: percentile(deleteLatency, 99),
      stratus_cpu_s: cpu0 !== null && cpu1 !== null ? round(cpu1 - cpu0) : null,
      polls: watcher.polls - polls0,
      requests_per_server: Object.fromEntries(perServer),
      queries_per_server: Object.fromEntries(
        [...m2.queries.entries()]
          .map(([role, n]) => [role, round((n - (m0.queries.get(role) ?? 0)) / Math.max(1, ids.length))] as const)
          .filter(([, n]) => n >= 0.5)
          .sort((a, b) => b[1] - a[1]),
      ),
      first_error: firstError,
    };
    say(`${this.backend} c=${c}: ${result.boot_per_s} servers/s to ACTIVE (p50 ${result.boot_p50_ms} ms, p99 ${result.boot_p99_ms} ms), ${result.scheduler_decisions_per_s} scheduler decisions/s, ${result.delete_per_s} deletes/s, ${errors} errors`);
    return result;
  }

  /** Stops Stratus, drops the run's PostgreSQL databases and RabbitMQ vhost, removes the data (unless KEEP_DATA=1). */
  async cleanup(): Promise<void> {
    await this.proc.stop();
    if (this.backend === 'postgres' && !this.s.keepData) await this.dropDatabases().catch((err: unknown) => say(`warning: could not drop the benchmark's databases: ${message(err)}`));
    if (this.vhost) await runCommand('rabbitmqctl', ['delete_vhost', this.vhost], { timeoutMs: 60_000 });
    if (!this.s.keepData) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async dropDatabases(): Promise<void> {
    const url = new URL(this.s.pgUrl.replaceAll('{service}', 'postgres'));
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      const rows = await client.query<{ datname: string }>('select datname from pg_database where datname like $1', [`%_bench${this.unique}`]);
      for (const row of rows.rows) await client.query(`drop database if exists "${row.datname.replaceAll('"', '""')}"`);
    } finally {
      await client.end();
    }
  }

  /** The last output of Stratus (for errors). */
  output(): string {
    return this.proc.output.trim().split('\n').slice(-15).join('\n');
  }
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 10) / 10 : 0;
}

function report(results: PhaseResult[], s: Settings): string {
  const fmt = (x: number | null): string => (x === null ? '-' : String(x));
  const rows = results.map((r) => [
    r.backend === 'sqlite' ? 'SQLite + memory bus' : 'PostgreSQL + RabbitMQ',
    String(r.concurrency),
    `${r.active}/${r.servers}`,
    fmt(r.boot_per_s),
    fmt(r.boot_p50_ms),
    fmt(r.boot_p99_ms),
    fmt(r.scheduler_decisions_per_s),
    fmt(r.scheduler_mean_select_ms),
    fmt(r.delete_per_s),
    fmt(r.delete_p50_ms),
    String(r.errors),
  ]);
  const table = markdownTable(['backend', 'concurrency', 'ACTIVE', 'servers/s to ACTIVE', 'p50 ms', 'p99 ms', 'scheduler decisions/s', 'select ms (mean)', 'deletes/s', 'delete p50 ms', 'errors'], rows);
  const best = results.reduce<PhaseResult | null>((a, r) => (!a || r.boot_per_s > a.boot_per_s ? r : a), null);
  const goal = best ? `Goal 50 servers/s to ACTIVE: best ${best.boot_per_s} servers/s (${best.backend}, concurrency ${best.concurrency}) - ${best.boot_per_s >= 50 ? 'reached' : 'not reached'}.` : 'Nothing measured.';
  return `Compute: ${s.count} servers (m1.tiny, networks: ${s.network === 'network' ? 'one port each on a network' : "'none'"}) booted then deleted on ${s.fakeHosts} fake hosts; latencies from POST/DELETE until a changes-since poll (every ${s.pollMs} ms) shows ACTIVE/DELETED.\n\n${table}\n\n${goal}\n`;
}

async function main(): Promise<number> {
  applyFlags(process.argv.slice(2), process.env, 'bench/compute/README.md');
  const s = readSettings();
  if (!fs.existsSync(s.stratusMain)) throw new UsageError(`${s.stratusMain} is missing: build Stratus (./stratus --help) or set STRATUS_MAIN`);
  const started = new Date();
  const loadStart = loadAvg();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-compute-bench-'));
  let aborting: string | null = null;
  let current: BackendRun | null = null;
  let exitCode = 0;
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
  });
  const cancel = onInterrupt(s.totalTimeoutS, (why, code) => {
    say(`${why}: stopping everything this benchmark started...`);
    aborting = why;
    exitCode = code;
    void current?.cleanup();
    setTimeout(() => process.exit(code), 120_000).unref();
  });
  const results: PhaseResult[] = [];
  const notes: Record<string, string> = {};
  let failed = false;
  for (const backend of s.backends) {
    if (aborting) break;
    const run = new BackendRun(s, backend, workDir, () => aborting);
    current = run;
    try {
      await run.run();
    } catch (err) {
      failed = true;
      notes[backend] = `${message(err)}\n${run.output()}`;
      say(`${backend} failed: ${message(err)}\n${run.output()}`);
    } finally {
      results.push(...run.results);
      if (run.note) notes[`${backend}_bus`] = run.note;
      await run.cleanup().catch((err: unknown) => say(`warning: cleanup: ${message(err)}`));
      current = null;
    }
  }
  cancel();
  const json = { started_at: started.toISOString(), finished_at: new Date().toISOString(), settings: { ...s, password: '***' }, host: { ...hostInfo(loadStart), kernel: os.release() }, versions: { stratus: gitInfo(ROOT), node: process.version }, notes, results };
  const file = writeResults(RESULTS_DIR, started, json);
  process.stdout.write(`${report(results, s)}\nRaw numbers: ${path.relative(process.cwd(), file) || file}\n`);
  if (s.keepData || failed) say(`kept ${workDir}`);
  else fs.rmSync(workDir, { recursive: true, force: true });
  return exitCode || (failed || results.some((r) => r.errors > 0) ? 1 : 0);
}

runMain(main);
