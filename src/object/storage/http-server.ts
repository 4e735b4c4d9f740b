import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import type { StratusConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import type { HashPathSalt } from '../common.js';
import { ringDir } from '../ring/defaults.js';
import { Ring, ringFile, type RingKind } from '../ring/ring.js';
import { createAccountServer } from './account-server.js';
import { createContainerServer } from './container-server.js';
import type { StorageClient } from './client.js';
import { HttpStorageClient } from './http-client.js';
import { cleanTmp } from './diskfile.js';
import { createObjectServer, type StorageHandler } from './object-server.js';
import { DeviceChecker, errorResponse, parseStoragePath, writeResponse } from './server-util.js';
import type { UpdateContext, UpdateTarget } from './updates.js';

/** How to start a node's storage servers. */
export interface StorageNodeOptions {
  config: StratusConfig;
  salt: HashPathSalt;
  /** The directory holding this node's device directories. */
  devicesDir: string;
  logger: Logger;
  bindHost?: string;
  /** Ports to listen on (0: any free port); default the configuration's. */
  ports?: { object?: number; container?: number; account?: number };
  /**
   * The account and container rings, for the account updates that follow
   * object changes; default: loaded from the ring directory when there.
   */
  rings?: { account?: Ring; container?: Ring };
  /** Delay before object changes are reported to the account (ms). */
  accountReportDelayMs?: number;
  /**
   * Serve connections that someone else accepts instead of listening: called
   * once per server with its HTTP server (to `emit('connection', socket)`
   * on); returns the port it serves for and a function that stops handing
   * over connections (the first thing `stop()` calls). A test harness uses
   * it to keep a node's ports across restarts. `ports` is then unused.
   */
  attach?: (kind: StorageServerKind, server: http.Server) => { port: number; detach(): void };
  /** How the servers send container and account updates (default: HTTP); `up` passes a `LocalStorageClient`. */
  client?: StorageClient;
}

/** The three servers of a node. */
export type StorageServerKind = 'object' | 'container' | 'account';

/** A running storage node. */
export interface StorageNode {
  ports: { object: number; container: number; account: number };
  /** The request handlers of the three servers (for a `LocalStorageClient` in the same process). */
  handlers: { object: StorageHandler; container: StorageHandler; account: StorageHandler };
  /** Sends the account reports still waiting (tests use it instead of waiting). */
  flushAccountReports(): Promise<void>;
  /** Stops accepting requests, waits for background updates, closes the dbs. */
  stop(): Promise<void>;
}

function lazyRing(config: StratusConfig, salt: HashPathSalt, kind: RingKind): () => Ring | null {
  let ring: Ring | null = null;
  return () => {
    if (ring) return ring;
    const file = ringFile(ringDir(config), kind);
    if (!fs.existsSync(file)) return null;
    ring = Ring.load(file, salt);
    return ring;
  };
}

/**
 * Starts the account, container and object servers of one node: node:http
 * servers (internal, hot path: no framework), each serving every device
 * directory under `devicesDir` (507 for a device whose directory is
 * missing). One debug log line per request.
 */
export async function startStorageNode(options: StorageNodeOptions): Promise<StorageNode> {
  const { config, salt, logger } = options;
  const log = logger;
  const devices = new DeviceChecker(options.devicesDir);
  const client = options.client ?? new HttpStorageClient({ connectTimeoutMs: config.object.conn_timeout * 1000, timeoutMs: config.object.node_timeout * 1000 });
  const ownClient = options.client === undefined;
  const background = new Set<Promise<unknown>>();
  const updates: UpdateContext = { client, salt, log, connTimeoutMs: config.object.conn_timeout * 1000, nodeTimeoutMs: config.object.node_timeout * 1000, background };
  const accountRing = options.rings?.account ? () => options.rings?.account ?? null : lazyRing(config, salt, 'account');
  const containerRing = options.rings?.container ? () => options.rings?.container ?? null : lazyRing(config, salt, 'container');

  /** The account replica(s) a container replica reports to: the one with its own replica index, else all. */
  function accountTargets(account: string, device: string, partition: number): UpdateTarget[] {
    const aRing = accountRing();
    if (!aRing) return [];
    const placement = aRing.getNodes(account);
    const all = placement.nodes.map((n) => ({ ip: n.ip, port: n.port, device: n.device, partition: placement.partition }));
    const cRing = containerRing();
    if (!cRing) return all;
    const index = cRing.getPartNodes(partition).findIndex((n) => n.device === device && n.port === ports.container);
    const one = index >= 0 ? all[index] : undefined;
    return one ? [one] : all;
  }

  const objectHandler = createObjectServer({ devices, salt, updates, maxFileSize: config.object.max_file_size });
  const containerServer = createContainerServer({ devices, salt, updates, accountTargets, reportDelayMs: options.accountReportDelayMs ?? 100 });
  const accountServer = createAccountServer({ devices, salt });

  const servers: http.Server[] = [];
  const detachers: (() => void)[] = [];
  // Connections handed over by `attach` (a server that does not listen does not track them itself).
  const attachedSockets = new Set<Socket>();
  const ports = { object: 0, container: 0, account: 0 };
  const bindHost = options.bindHost ?? config.object.storage.bind_host;

  async function serve(kind: StorageServerKind, handler: StorageHandler, port: number): Promise<number> {
    const run = (req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): void => {
      const started = process.hrtime.bigint();
      // REPLICATE arrives as a POST that names it (see HttpStorageClient).
      if (req.method === 'POST' && req.headers['x-backend-method'] === 'REPLICATE') req.method = 'REPLICATE';
      const target = parseStoragePath(req.url ?? '/');
      let continued = false;
      const sendContinue = (): void => {
        if (expectContinue && !continued) {
          continued = true;
          res.writeContinue();
        }
      };
      // Only an object PUT decides whether it wants the body; everything else reads it at once.
      if (expectContinue && !(kind === 'object' && req.method === 'PUT')) sendContinue();
      const respond = target ? handler(req, target, sendContinue) : Promise.resolve(errorResponse(400, 'Invalid path'));
      respond
        .catch((err: Error) => {
          log.error({ err, method: req.method, url: req.url, server: kind }, 'storage server error');
          return errorResponse(500);
        })
        .then((out) => {
          if (res.headersSent || res.destroyed) return;
          writeResponse(req, res, out);
          // A request body the handler did not read (an early error): drop the connection rather than read it.
          if (!req.complete && expectContinue && !continued) res.shouldKeepAlive = false;
          if (log.isLevelEnabled('debug')) {
            log.debug({ server: kind, method: req.method, path: req.url, status: out.status, ms: Number(process.hrtime.bigint() - started) / 1e6, txn: req.headers['x-trans-id'] }, 'storage request');
          }
        })
        .catch((err: Error) => log.error({ err }, 'cannot write storage response'));
    };
    const server = http.createServer({ keepAlive: true, noDelay: true });
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 70_000;
    server.requestTimeout = 0;
    server.on('request', (req, res) => run(req, res, false));
    server.on('checkContinue', (req, res) => run(req, res, true));
    server.on('clientError', (_err, socket) => socket.destroy());
    servers.push(server);
    if (options.attach) {
      server.on('connection', (socket: Socket) => {
        attachedSockets.add(socket);
        socket.once('close', () => attachedSockets.delete(socket));
      });
      const attached = options.attach(kind, server);
      detachers.push(attached.detach);
      return attached.port;
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, bindHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  try {
    ports.object = await serve('object', objectHandler, options.ports?.object ?? config.object.storage.object_port);
    ports.container = await serve('container', containerServer.handle, options.ports?.container ?? config.object.storage.container_port);
    ports.account = await serve('account', accountServer.handle, options.ports?.account ?? config.object.storage.account_port);
  } catch (err) {
    for (const detach of detachers.splice(0)) detach();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    if (ownClient) client.close();
    throw err;
  }
  log.info({ ports, devicesDir: options.devicesDir }, 'storage servers listening');
  // Uploads a crash left in the devices' tmp directories: freed in the background.
  const cleaning: Promise<unknown> = fs.promises
    .readdir(options.devicesDir)
    .then((names) => Promise.all(names.map((name) => cleanTmp(path.join(options.devicesDir, name)))))
    .then((counts) => {
      const removed = counts.reduce((a, b) => a + b, 0);
      if (removed) log.info({ removed }, 'removed stale temporary uploads');
    })
    .catch(() => undefined)
    .finally(() => background.delete(cleaning));
  background.add(cleaning);

  return {
    ports,
    handlers: { object: objectHandler, container: containerServer.handle, account: accountServer.handle },
    flushAccountReports: () => containerServer.flushReports(),
    async stop() {
      for (const detach of detachers.splice(0)) detach();
      for (const socket of attachedSockets) socket.destroy();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      // Object changes not yet reported reach the accounts now (or become async_pending files).
      await containerServer.flushReports().catch((err: Error) => log.warn({ err }, 'account reports at stop failed'));
      while (background.size) await Promise.allSettled([...background]);
      containerServer.close();
      accountServer.close();
      if (ownClient) client.close();
    },
  };
}
