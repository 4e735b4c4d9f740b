import fs from 'node:fs';
import http, { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Kysely } from 'kysely';
import mime from 'mime-types';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Bus } from '../../core/bus/index.js';
import type { StratusConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import type { ComputeSchema } from '../db/schema.js';
import { AgentRpc } from '../rpc.js';
import { consumeConsoleToken, lookupConsoleToken, purgeConsoleTokens, type ConsoleConnectInfo } from './console-tokens.js';
import { NOVNC_PAGE } from './novnc-page.js';

/** What the proxy needs of compute: its database (tokens) and bus (to ask a server's host where its console is). */
export interface NovncProxyDeps {
  db: Kysely<ComputeSchema>;
  bus: Bus;
}

/** A running console proxy. */
export interface RunningNovncProxy {
  /** The port it listens on (the configured one, or the one the system chose for 0). */
  port: number;
  /** Stops listening and closes every console connection (both sides). Idempotent. */
  stop(): Promise<void>;
}

/** Pages that are the console page (Nova's URLs have named all three). */
const PAGES = new Set(['/', '/vnc_lite.html', '/vnc.html', '/vnc_auto.html']);
/** Folders of the `@novnc/novnc` package the page loads its modules from. */
const ASSET_DIRS = ['core', 'vendor'];
/** Bytes queued towards the browser past which the guest side is paused. */
const HIGH_WATER = 4 * 1024 * 1024;
/** How long the guest's console server has to accept the connection. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long a closed browser side waits for the guest side to finish closing. */
const CLOSE_GRACE_MS = 5_000;
/** How long the server's host has to say where its console is. */
const HOST_CHECK_TIMEOUT_MS = 10_000;

/** The root of the installed `@novnc/novnc` package, or null when it is not installed. */
function novncRoot(): string | null {
  try {
    const entry = createRequire(import.meta.url).resolve('@novnc/novnc');
    // The package's entry point is `<root>/core/rfb.js`.
    return path.dirname(path.dirname(entry));
  } catch {
    return null;
  }
}

/**
 * The token of a websocket request, where Nova and noVNC put it: the
 * request's `token` parameter (noVNC 1.1+ with Nova's `path` URLs), else
 * a `token` cookie (older noVNC). A `path` parameter or cookie holding
 * `?token=...` (the console URL's own query, as some clients send it) works too.
 */
export function tokenOfRequest(rawUrl: string, cookieHeader: string | undefined): string {
  const fromQuery = (query: URLSearchParams): string => {
    const direct = query.get('token');
    if (direct) return direct;
    const inner = query.get('path');
    return inner ? (new URL(inner, 'http://console.invalid/').searchParams.get('token') ?? '') : '';
  };
  let url: URL;
  try {
    url = new URL(rawUrl, 'http://console.invalid/');
  } catch {
    return '';
  }
  const token = fromQuery(url.searchParams);
  if (token) return token;
  const cookies = new URLSearchParams();
  for (const part of (cookieHeader ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    try {
      cookies.append(part.slice(0, eq).trim(), decodeURIComponent(part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')));
    } catch {
      // A malformed cookie is skipped, never echoed.
    }
  }
  return fromQuery(cookies);
}

/** A host name as compared for Origin checks: lower case, without IPv6 brackets. */
function bareHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/** The host name of a `Host` header (`name`, `name:port`, `[v6]:port`). */
function hostOfHeader(header: string | undefined): string {
  if (!header) return '';
  try {
    return bareHost(new URL(`http://${header}`).hostname);
  } catch {
    return '';
  }
}

/**
 * Nova's Origin check: a request without `Origin` comes from no browser and
 * passes; otherwise the Origin's host must be the host the request was sent
 * to (its `Host`), or the host of the console URL handed out, and its scheme
 * (or `X-Forwarded-Proto`) the console URL's. Returns why it fails, or null.
 */
export function originProblem(headers: http.IncomingHttpHeaders, info: Pick<ConsoleConnectInfo, 'accessUrlBase'>, extraHosts: string[] = []): string | null {
  const origin = headers.origin;
  if (origin === undefined) return null;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return 'Origin header not valid.';
  }
  const forwarded = headers['x-forwarded-proto'];
  const scheme = (typeof forwarded === 'string' && forwarded ? forwarded.split(',')[0]?.trim() ?? '' : parsed.protocol.replace(/:$/, '')).toLowerCase();
  const hostname = bareHost(parsed.hostname);
  if (hostname === '' || scheme === '') return 'Origin header not valid.';
  const allowed = new Set([hostOfHeader(headers.host), ...extraHosts.map(bareHost)].filter((h) => h !== ''));
  let baseScheme = 'http';
  if (info.accessUrlBase) {
    try {
      const base = new URL(info.accessUrlBase);
      allowed.add(bareHost(base.hostname));
      baseScheme = base.protocol.replace(/:$/, '').toLowerCase();
    } catch {
      return 'The console URL is not valid.';
    }
  }
  if (!allowed.has(hostname)) return 'Origin header does not match this host.';
  const schemes = new Set([baseScheme]);
  if (baseScheme === 'ws') schemes.add('http');
  if (baseScheme === 'wss') schemes.add('https');
  if (!schemes.has(scheme)) return 'Origin header protocol does not match this host.';
  return null;
}

/** Answers a websocket request that is refused, before any upgrade: a status and no body (so no client mistakes it for frames). */
function refuse(socket: Duplex, status: number): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.once('finish', () => socket.destroy());
}

/** Connects to the guest's console server, or throws. */
function connectTarget(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const tcp = net.connect({ host, port });
    tcp.setNoDelay(true);
    tcp.setTimeout(CONNECT_TIMEOUT_MS, () => tcp.destroy(new Error(`no answer from ${host}:${port}`)));
    tcp.once('connect', () => {
      tcp.setTimeout(0);
      tcp.removeListener('error', reject);
      resolve(tcp);
    });
    tcp.once('error', reject);
  });
}

/**
 * Starts the console proxy (nova-novncproxy) on `compute.vnc.proxy_port`
 * of `bind_host`:
 * - GET `/vnc_lite.html` (also `/vnc.html`, `/vnc_auto.html`, `/`): the
 *   console page; `/core/...` and `/vendor/...`: noVNC's modules from the
 *   `@novnc/novnc` package (404 when it is not installed).
 * - A websocket upgrade on any path with a console token (see
 *   {@link tokenOfRequest}): the token must be known, unexpired, its server
 *   not deleted, the Origin acceptable (see {@link originProblem}), and
 *   the server's host must still report its console at the token's address
 *   (Nova's `validate_console_port`: after a stop, move or delete that
 *   address may be another guest's); it is used up at that moment, so a
 *   second connection with it is refused. Refusals are HTTP statuses before
 *   the upgrade, without a body (400 no token; 403 bad token, Origin or
 *   address; 502 when the host or the guest's console server does not
 *   answer). Then bytes go both ways between binary frames and a TCP
 *   connection to the guest's console server; subprotocol `binary` is
 *   accepted when offered. Either side closing closes the other.
 * Expired tokens and those of deleted servers are purged every minute.
 */
export async function startNovncProxy(config: StratusConfig, deps: NovncProxyDeps, log: Logger): Promise<RunningNovncProxy> {
  const { db } = deps;
  const agents = new AgentRpc(deps.bus, HOST_CHECK_TIMEOUT_MS);
  const root = novncRoot();
  if (!root) log.warn('the @novnc/novnc package is not installed: the console page cannot load noVNC');
  const configuredHosts = (): string[] => {
    const base = config.compute.vnc.base_url;
    if (!base) return [config.public_host];
    try {
      return [new URL(base).hostname];
    } catch {
      return [];
    }
  };
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 8 * 1024 * 1024,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
  });
  const pending = new Set<Duplex>();
  const open = new Set<{ ws: WebSocket; tcp: net.Socket }>();

  const serveFile = (res: http.ServerResponse, pathname: string, head: boolean): void => {
    const parts = pathname.split('/').filter((p) => p !== '');
    if (!root || parts.length < 2 || !ASSET_DIRS.includes(parts[0] ?? '') || parts.some((p) => p === '..' || p.includes('\\') || p.includes('\0'))) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(root ? 'Not found\n' : 'Not found: the @novnc/novnc package is not installed\n');
      return;
    }
    const file = path.join(root, ...parts);
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    fs.stat(file, (err, stat) => {
      if (err || !stat.isFile()) {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n');
        return;
      }
      const type = file.endsWith('.js') ? 'text/javascript; charset=utf-8' : (mime.contentType(path.extname(file)) || 'application/octet-stream');
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': stat.size, 'Cache-Control': 'public, max-age=3600', 'X-Content-Type-Options': 'nosniff' });
      if (head) {
        res.end();
        return;
      }
      fs.createReadStream(file)
        .on('error', () => res.destroy())
        .pipe(res);
    });
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const pathname = new URL(req.url ?? '/', 'http://console.invalid/').pathname;
    if (PAGES.has(pathname)) {
      // The page's URL carries the token: keep it out of Referer headers and
      // caches. It may be framed (the dashboard shows consoles in a frame).
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(NOVNC_PAGE), 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'X-Content-Type-Options': 'nosniff' });
      res.end(method === 'HEAD' ? undefined : NOVNC_PAGE);
      return;
    }
    serveFile(res, pathname, method === 'HEAD');
  });

  const bridge = (ws: WebSocket, tcp: net.Socket, info: ConsoleConnectInfo): void => {
    const entry = { ws, tcp };
    open.add(entry);
    let toBrowser = 0;
    let toGuest = 0;
    tcp.on('data', (chunk: Buffer) => {
      toBrowser += chunk.length;
      ws.send(chunk, { binary: true }, () => {
        if (tcp.isPaused() && ws.bufferedAmount < HIGH_WATER / 2) tcp.resume();
      });
      if (ws.bufferedAmount > HIGH_WATER) tcp.pause();
    });
    ws.on('message', (raw: RawData) => {
      const data = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
      toGuest += data.length;
      if (!tcp.write(data)) {
        ws.pause();
        tcp.once('drain', () => ws.resume());
      }
    });
    tcp.on('end', () => ws.close(1000, 'the console closed'));
    tcp.on('error', (err) => {
      log.info({ err, instance_uuid: info.instanceUuid }, 'console connection to the guest failed');
      ws.close(1011, 'the console connection failed');
    });
    tcp.on('close', () => {
      if (ws.readyState === ws.OPEN) ws.close(1000, 'the console closed');
    });
    ws.on('error', (err) => {
      log.info({ err, instance_uuid: info.instanceUuid }, 'console websocket failed');
      tcp.destroy();
    });
    ws.on('close', () => {
      open.delete(entry);
      log.info({ instance_uuid: info.instanceUuid, bytes_to_browser: toBrowser, bytes_to_guest: toGuest }, 'console connection closed');
      if (!tcp.destroyed) {
        tcp.end();
        setTimeout(() => tcp.destroy(), CLOSE_GRACE_MS).unref();
      }
    });
  };

  const upgrade = async (req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse(socket, 400);
    // A handshake the websocket library would refuse must not use a token up.
    const key = req.headers['sec-websocket-key'];
    const version = req.headers['sec-websocket-version'];
    if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key.trim()) || (version !== '13' && version !== '8')) return refuse(socket, 400);
    const token = tokenOfRequest(req.url ?? '/', req.headers.cookie);
    if (!token) return refuse(socket, 400);
    const info = await lookupConsoleToken(db, token);
    if (!info) {
      log.info({ remote: req.socket.remoteAddress }, 'console connection refused: the token is not valid (unknown, used, expired, or its server deleted)');
      return refuse(socket, 403);
    }
    const problem = originProblem(req.headers, info, configuredHosts());
    if (problem) {
      log.info({ instance_uuid: info.instanceUuid, origin: req.headers.origin, reason: problem }, 'console connection refused');
      return refuse(socket, 403);
    }
    if (!info.instanceHost) {
      log.info({ instance_uuid: info.instanceUuid }, 'console connection refused: the server has no host');
      return refuse(socket, 403);
    }
    let current: { host: string; port: number } | null;
    try {
      current = await agents.vncConsole(info.instanceHost, info.instanceUuid);
    } catch (err) {
      log.warn({ err, instance_uuid: info.instanceUuid, host: info.instanceHost }, 'console connection refused: the server\'s host did not say where its console is');
      return refuse(socket, 502);
    }
    if (!current || current.host !== info.host || Number(current.port) !== info.port) {
      log.info({ instance_uuid: info.instanceUuid }, 'console connection refused: the server\'s console is no longer where the token leads');
      return refuse(socket, 403);
    }
    if (!(await consumeConsoleToken(db, token))) {
      log.info({ instance_uuid: info.instanceUuid }, 'console connection refused: the token was just used');
      return refuse(socket, 403);
    }
    let tcp: net.Socket;
    try {
      tcp = await connectTarget(info.host, info.port);
    } catch (err) {
      log.warn({ err, instance_uuid: info.instanceUuid, host: info.host, port: info.port }, 'could not reach the guest console');
      return refuse(socket, 502);
    }
    if (socket.destroyed) {
      tcp.destroy();
      return;
    }
    // Until the bridge takes over, an error of the guest side only ends it.
    const early = (): void => {
      tcp.destroy();
    };
    tcp.on('error', early);
    let bridged = false;
    wss.handleUpgrade(req, socket, head, (ws) => {
      bridged = true;
      tcp.removeListener('error', early);
      log.info({ instance_uuid: info.instanceUuid, host: info.host, port: info.port }, 'console connection opened');
      bridge(ws, tcp, info);
    });
    // ws drops a socket that closed meanwhile without calling back: the guest side goes too.
    if (!bridged) tcp.destroy();
  };

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    pending.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => pending.delete(socket));
    upgrade(req, socket, head).catch((err: unknown) => {
      log.error({ err }, 'console connection failed');
      refuse(socket, 500);
    });
  });

  const purge = (): void => {
    purgeConsoleTokens(db)
      .then((n) => {
        if (n > 0) log.debug({ count: n }, 'purged console tokens');
      })
      .catch((err: unknown) => log.warn({ err }, 'could not purge console tokens'));
  };
  purge();
  const timer = setInterval(purge, 60_000);
  timer.unref();

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.compute.vnc.proxy_port, config.bind_host, () => {
      server.removeListener('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : config.compute.vnc.proxy_port);
    });
  }).catch((err: unknown) => {
    clearInterval(timer);
    throw err;
  });
  log.info({ port, novnc: root ?? 'missing' }, 'console proxy listening');

  let stopping: Promise<void> | null = null;
  return {
    port,
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        for (const { ws, tcp } of open) {
          ws.terminate();
          tcp.destroy();
        }
        for (const socket of pending) socket.destroy();
        wss.close();
        await closed;
      })();
      return stopping;
    },
  };
}
