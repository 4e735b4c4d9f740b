import { createHmac } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killProcess, processAlive, readPid } from '../../core/host-commands.js';
import type { Logger } from '../../core/logging.js';
import { forwardable } from './forwarding.js';
import type { HostNet } from './host.js';

/**
 * The metadata path of the Linux data plane, as Neutron builds it: a guest
 * asks http://169.254.169.254/; in its router's (or DHCP) namespace a small
 * proxy ({@link MetadataProxies}, one process per namespace) answers and
 * forwards over a unix socket to the metadata agent in the host namespace
 * ({@link startMetadataAgent}), which finds the instance by the guest's
 * address and forwards, signed, to compute's metadata API.
 */

/** What the guest may not say about itself: the agent says it. */
const IDENTITY_HEADERS = ['x-instance-id', 'x-tenant-id', 'x-instance-id-signature', 'x-forwarded-for', 'x-neutron-router-id', 'x-neutron-network-id'];
const UPSTREAM_TIMEOUT_MS = 60_000;
/** Where guests ask; a network's proxy listens on it itself (its namespace has the address). */
const METADATA_IP = '169.254.169.254';

/** Options of {@link MetadataProxies}. */
export interface MetadataProxiesOptions {
  /** The metadata agent's unix socket. */
  socketPath: string;
  /** Where each namespace's pid file (`<ns>.pid`) and log (`<ns>.log`) go. */
  stateDir: string;
  /** The port routers' proxies listen on (on all addresses; the router REDIRECTs 169.254.169.254:80 to it). */
  port: number;
  /**
   * The port networks' proxies (DHCP namespaces, isolated metadata) listen
   * on, at 169.254.169.254, which the DHCP port has there: no REDIRECT (as
   * Neutron's). Default 80.
   */
  networkPort?: number;
  /** Default: the node running this process. */
  nodeBinary?: string;
  log: Logger;
}

/**
 * The metadata proxies of the router and DHCP namespaces: one process each
 * (`ns-metadata-proxy.js`), found again after an agent restart by its pid
 * file and its command line.
 */
export class MetadataProxies {
  private readonly script = fileURLToPath(new URL('./ns-metadata-proxy.js', import.meta.url));
  private readonly queues = new Map<string, Promise<void>>();
  private readonly log: Logger;

  constructor(
    private readonly host: HostNet,
    private readonly options: MetadataProxiesOptions,
  ) {
    this.log = options.log.child({ component: 'metadata-proxy' });
  }

  /**
   * Starts the proxy in `ns` unless one runs (pid file + process alive with
   * its pid file in its command line); one started with other options
   * (socket, port, target) is replaced. A router's proxy listens on
   * `port`, a network's on 169.254.169.254:`networkPort` (the namespace must
   * have that address). Resolves once the proxy listens; rejects when it
   * cannot start (the namespace must exist).
   */
  ensure(ns: string, target: { routerId?: string; networkId?: string }): Promise<void> {
    const { routerId, networkId } = target;
    if ((routerId === undefined) === (networkId === undefined)) return Promise.reject(new Error('a metadata proxy serves one router or one network'));
    const args = [
      this.script,
      '--socket',
      this.options.socketPath,
      ...(routerId !== undefined ? ['--router-id', routerId, '--port', String(this.options.port)] : ['--network-id', networkId ?? '', '--port', String(this.options.networkPort ?? 80), '--bind', METADATA_IP]),
      '--pid-file',
      this.pidFile(ns),
      '--log-file',
      this.logFile(ns),
    ];
    return this.serialized(ns, async () => {
      const pid = await readPid(this.pidFile(ns));
      if (pid !== null && (await processAlive(pid, this.pidFile(ns)))) {
        if (await runsWith(pid, args)) return;
        this.log.info({ ns, pid }, 'the metadata proxy runs with other options: restarting it');
        await killProcess(pid, this.pidFile(ns));
      }
      await fs.mkdir(this.options.stateDir, { recursive: true });
      await fs.rm(this.pidFile(ns), { force: true });
      await this.host.nsExec(ns, this.options.nodeBinary ?? process.execPath, [...args, '--daemonize']);
      this.log.info({ ns, pid: await readPid(this.pidFile(ns)), ...target }, 'metadata proxy started');
    });
  }

  /** Stops the proxy of `ns` and removes its files; one not running is not an error. */
  stop(ns: string): Promise<void> {
    return this.serialized(ns, async () => {
      const pid = await readPid(this.pidFile(ns));
      if (pid !== null) await killProcess(pid, this.pidFile(ns));
      await fs.rm(this.pidFile(ns), { force: true });
      await fs.rm(this.logFile(ns), { force: true });
    });
  }

  /** The pid file of the proxy in `ns` (what the proxy's command line is recognized by). */
  pidFile(ns: string): string {
    return path.join(this.options.stateDir, `${ns}.pid`);
  }

  private logFile(ns: string): string {
    return path.join(this.options.stateDir, `${ns}.log`);
  }

  private serialized(ns: string, work: () => Promise<void>): Promise<void> {
    const next = (this.queues.get(ns) ?? Promise.resolve()).catch(() => undefined).then(work);
    const settled = next.catch(() => undefined);
    this.queues.set(ns, settled);
    void settled.then(() => {
      if (this.queues.get(ns) === settled) this.queues.delete(ns);
    });
    return next;
  }
}

/** True when the process's command line holds `args` in that order. */
async function runsWith(pid: number, args: string[]): Promise<boolean> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return `\0${cmdline}`.includes(`\0${args.join('\0')}\0`);
}

/** Options of {@link startMetadataAgent}. */
export interface MetadataAgentOptions {
  socketPath: string;
  /** Compute's metadata API, e.g. http://127.0.0.1:8775 */
  metadataUrl: string;
  /** Shared secret: X-Instance-ID-Signature = hex HMAC-SHA256(secret, instance id). */
  secret: string;
  /** Who has this fixed IP behind this router / on this network (the agent asks the network server). */
  resolve(ip: string, target: { routerId?: string; networkId?: string }): Promise<{ instanceId: string; projectId: string } | null>;
  log: Logger;
}

/**
 * The metadata agent: an HTTP server on a unix socket in the host namespace
 * (mode 0600: the proxies run as the same user), for the proxies only. Each
 * request names the guest (`X-Forwarded-For`) and its router or network;
 * the agent finds the instance (`resolve`) and forwards the request to the
 * metadata API with what Nova's API expects of Neutron's agent:
 * `X-Instance-ID`, `X-Tenant-ID`, `X-Instance-ID-Signature` and
 * `X-Forwarded-For`. Bodies stream both ways. 404 when nobody has that
 * address there, 502 when the metadata API cannot be reached. A stale
 * socket file is replaced; `stop` closes the server and removes the file.
 */
export async function startMetadataAgent(options: MetadataAgentOptions): Promise<{ stop(): Promise<void> }> {
  const log = options.log.child({ component: 'metadata-agent' });
  const base = new URL(options.metadataUrl);
  const server = http.createServer((req, res) => {
    serveRequest(options, base, log, req, res).catch((err: unknown) => {
      log.error({ err }, 'metadata request failed');
      answer(res, 500, 'Internal Server Error', 'An unknown error has occurred. Please try your request again.');
    });
  });
  await fs.mkdir(path.dirname(options.socketPath), { recursive: true });
  await fs.rm(options.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await fs.chmod(options.socketPath, 0o600);
  log.info({ socket: options.socketPath, metadata_url: options.metadataUrl }, 'metadata agent listening');
  return {
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await fs.rm(options.socketPath, { force: true });
    },
  };
}

async function serveRequest(options: MetadataAgentOptions, base: URL, log: Logger, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const ip = firstValue(req.headers['x-forwarded-for'])?.split(',')[0]?.trim();
  const routerId = firstValue(req.headers['x-neutron-router-id']);
  const networkId = firstValue(req.headers['x-neutron-network-id']);
  if (!ip || (routerId === undefined && networkId === undefined)) {
    answer(res, 400, 'Bad Request', 'X-Forwarded-For and X-Neutron-Router-ID or X-Neutron-Network-ID are required.');
    return;
  }
  const target = routerId !== undefined ? { routerId } : { networkId: networkId ?? '' };
  const instance = await options.resolve(ip, target);
  if (!instance) {
    log.info({ address: ip, ...target }, 'no instance has this address here');
    answer(res, 404, 'Not Found', 'The resource could not be found.');
    return;
  }
  const headers = forwardable(req.headers);
  for (const name of IDENTITY_HEADERS) delete headers[name];
  delete headers.host;
  headers['x-instance-id'] = instance.instanceId;
  headers['x-tenant-id'] = instance.projectId;
  headers['x-instance-id-signature'] = createHmac('sha256', options.secret).update(instance.instanceId, 'utf8').digest('hex');
  headers['x-forwarded-for'] = ip;
  forward(base, req, res, headers, log, instance.instanceId);
}

/** Sends the request on to the metadata API and its answer back, streaming both. */
function forward(base: URL, req: http.IncomingMessage, res: http.ServerResponse, headers: http.OutgoingHttpHeaders, log: Logger, instanceId: string): void {
  const client = base.protocol === 'https:' ? https : http;
  const prefix = base.pathname.replace(/\/+$/, '');
  const upstream = client.request(
    { protocol: base.protocol, hostname: base.hostname, port: base.port || undefined, method: req.method, path: `${prefix}${req.url ?? '/'}`, headers, timeout: UPSTREAM_TIMEOUT_MS },
    (reply) => {
      res.writeHead(reply.statusCode ?? 502, forwardable(reply.headers));
      reply.pipe(res);
      reply.on('error', () => res.destroy());
    },
  );
  upstream.on('timeout', () => upstream.destroy(new Error('the metadata API did not answer in time')));
  upstream.on('error', (err) => {
    req.unpipe(upstream);
    req.resume();
    log.warn({ err, instance_uuid: instanceId }, 'could not reach the metadata API');
    answer(res, 502, 'Bad Gateway', 'The metadata service is not reachable.');
  });
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}


/** A plain-text error as Nova's metadata API writes them; a response already begun is cut instead. */
function answer(res: http.ServerResponse, status: number, title: string, detail: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=UTF-8' });
  res.end(`${status} ${title}\n\n${detail}\n\n   `);
}
