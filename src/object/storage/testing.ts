import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig, type StratusConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import type { HashPathSalt } from '../common.js';
import { Ring, ringFile, simpleRing, writeRingFile, type RingDevice, type RingKind } from '../ring/ring.js';
import type { StorageRequest, StorageResponse } from './client.js';
import { HttpStorageClient } from './http-client.js';
import { startStorageNode, type StorageNode, type StorageServerKind } from './http-server.js';

/** One storage node of a test cluster. */
export interface ClusterNode {
  index: number;
  /** The devices it serves (`d1`, ...). */
  devices: string[];
  /** Its devices directory. */
  devicesDir: string;
  ports: { object: number; container: number; account: number };
  /** A configuration naming this node (`object.devices_dir`, `object.storage.*_port`, `object.ring_dir`): for workers that run "on" it. */
  config: StratusConfig;
  running: boolean;
  server: StorageNode | null;
}

/**
 * The listening sockets of a node, kept for the whole life of the cluster so
 * that a restarted node gets its ports back (a freed port can be taken by any
 * other socket of the machine meanwhile). While the node runs, connections
 * go to its servers; while it is stopped they are reset at once.
 */
interface PortHolder {
  listeners: Record<StorageServerKind, net.Server>;
  routes: Partial<Record<StorageServerKind, http.Server>>;
}

/** A running test cluster of storage nodes, with rings and a client. */
export interface StorageCluster {
  /** The temporary directory (removed by `close`). */
  dir: string;
  salt: HashPathSalt;
  /** The configuration of the cluster (data dir, ring dir; node 0's ports and devices dir). */
  config: StratusConfig;
  ringDir: string;
  rings: Record<RingKind, Ring>;
  client: HttpStorageClient;
  nodes: ClusterNode[];
  logger: Logger;
  /** The directory of a device (`d1` → `<dir>/node1/d1`). */
  devicePath(device: string): string;
  /** The node serving a device. */
  nodeOf(device: string): ClusterNode;
  /** Sends one request to a device's server of a kind (a shortcut over `client.request`). */
  request(kind: RingKind, device: RingDevice, req: Omit<StorageRequest, 'device'>): Promise<StorageResponse>;
  /** Stops one node's servers (its ports stay in the rings and reserved; connections to it are reset at once). */
  stopNode(index: number): Promise<void>;
  /** Starts a stopped node again on the same ports (always free: the harness keeps them). */
  startNode(index: number): Promise<void>;
  /** Sends every node's pending account reports now. */
  flushAccountReports(): Promise<void>;
  close(): Promise<void>;
}

/** Options of `createStorageCluster`. */
export interface StorageClusterOptions {
  /** Device directories d1..dN, each its own zone (default 3). */
  devices?: number;
  replicas?: number;
  partPower?: number;
  /** One node per device (default: true, so that one device's servers can be stopped); false: one node serving every device. */
  nodePerDevice?: boolean;
  logger?: Logger;
  /** Delay of account reports after object changes (ms). */
  accountReportDelayMs?: number;
}

/**
 * A storage cluster for tests: a temporary directory with a salt, device
 * directories d1..dN (each its own zone), storage nodes on free loopback
 * ports, the three rings (written to `<dir>/rings` with `simpleRing`), the
 * `Ring`s and an `HttpStorageClient`. `close()` stops everything and
 * removes the directory.
 */
export async function createStorageCluster(options: StorageClusterOptions = {}): Promise<StorageCluster> {
  const deviceCount = options.devices ?? 3;
  const replicas = options.replicas ?? Math.min(3, deviceCount);
  const partPower = options.partPower ?? 6;
  const nodePerDevice = options.nodePerDevice ?? true;
  const logger = options.logger ?? pino({ level: 'silent' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-storage-'));
  const ringDir = path.join(dir, 'rings');
  const salt: HashPathSalt = { prefix: '', suffix: randomBytes(8).toString('hex') };
  const baseConfig = (overrides: Record<string, unknown>): StratusConfig =>
    loadConfig({
      env: {},
      overrides: { data_dir: dir, 'object.ring_dir': ringDir, 'object.hash_path_prefix': salt.prefix, 'object.hash_path_suffix': salt.suffix, 'object.conn_timeout': 0.5, 'object.node_timeout': 5, ...overrides },
    });

  const nodes: ClusterNode[] = [];
  const nodeCount = nodePerDevice ? deviceCount : 1;
  for (let i = 0; i < nodeCount; i++) {
    const devicesDir = path.join(dir, `node${i + 1}`);
    const devices = nodePerDevice ? [`d${i + 1}`] : Array.from({ length: deviceCount }, (_, d) => `d${d + 1}`);
    for (const d of devices) fs.mkdirSync(path.join(devicesDir, d), { recursive: true });
    nodes.push({ index: i, devices, devicesDir, ports: { object: 0, container: 0, account: 0 }, config: baseConfig({}), running: false, server: null });
  }

  const rings = {} as Record<RingKind, Ring>;
  const holders: PortHolder[] = [];
  const start = async (node: ClusterNode): Promise<void> => {
    const holder = holders[node.index];
    if (!holder) throw new Error(`node ${node.index} has no ports`);
    node.server = await startStorageNode({
      config: node.config,
      salt,
      devicesDir: node.devicesDir,
      logger: logger.child({ node: node.index + 1 }),
      bindHost: '127.0.0.1',
      attach: (kind, server) => {
        holder.routes[kind] = server;
        return {
          port: node.ports[kind],
          detach: () => {
            delete holder.routes[kind];
          },
        };
      },
      rings: { account: rings.account, container: rings.container },
      ...(options.accountReportDelayMs !== undefined ? { accountReportDelayMs: options.accountReportDelayMs } : {}),
    });
    node.running = true;
  };
  const closeHolders = async (): Promise<void> => {
    await Promise.all(holders.flatMap((h) => Object.values(h.listeners).map((l) => new Promise<void>((resolve) => l.close(() => resolve())))));
  };

  const client = new HttpStorageClient({ connectTimeoutMs: 500, timeoutMs: 5000 });
  try {
    // Rings name the nodes' ports, so the ports are taken first and the rings written before the nodes serve.
    for (const node of nodes) {
      const holder = await holdPorts();
      holders.push(holder);
      node.ports = { object: portOf(holder.listeners.object), container: portOf(holder.listeners.container), account: portOf(holder.listeners.account) };
    }
    for (const kind of ['account', 'container', 'object'] as RingKind[]) {
      const devices: Omit<RingDevice, 'id'>[] = [];
      for (let d = 0; d < deviceCount; d++) {
        const node = nodes[nodePerDevice ? d : 0] as ClusterNode;
        devices.push({ region: 1, zone: d + 1, ip: '127.0.0.1', port: node.ports[kind], device: `d${d + 1}`, weight: 100, meta: '' });
      }
      const file = ringFile(ringDir, kind);
      writeRingFile(file, simpleRing(devices, partPower, replicas));
      rings[kind] = Ring.load(file, salt);
    }
    for (const node of nodes) {
      node.config = baseConfig({
        'object.devices_dir': node.devicesDir,
        'object.storage.host': '127.0.0.1',
        'object.storage.object_port': node.ports.object,
        'object.storage.container_port': node.ports.container,
        'object.storage.account_port': node.ports.account,
      });
      await start(node);
    }
  } catch (err) {
    for (const node of nodes) await node.server?.stop();
    await closeHolders();
    client.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const cluster: StorageCluster = {
    dir,
    salt,
    config: (nodes[0] as ClusterNode).config,
    ringDir,
    rings,
    client,
    nodes,
    logger,
    devicePath(device) {
      return path.join(cluster.nodeOf(device).devicesDir, device);
    },
    nodeOf(device) {
      const node = nodes.find((n) => n.devices.includes(device));
      if (!node) throw new Error(`no node serves ${device}`);
      return node;
    },
    request(kind, device, req) {
      void kind;
      return client.request(device, { ...req, device: device.device });
    },
    async stopNode(index) {
      const node = nodes[index];
      if (!node || !node.running) return;
      await node.server?.stop();
      node.server = null;
      node.running = false;
    },
    async startNode(index) {
      const node = nodes[index];
      if (!node || node.running) return;
      await start(node);
    },
    async flushAccountReports() {
      for (const node of nodes) await node.server?.flushAccountReports();
    },
    async close() {
      for (const node of nodes) {
        if (node.running) await node.server?.stop();
        node.running = false;
      }
      await closeHolders();
      client.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** Listens on three free loopback ports for a node; connections are reset until a server is routed to. */
async function holdPorts(): Promise<PortHolder> {
  const routes: PortHolder['routes'] = {};
  const listen = (kind: StorageServerKind): Promise<net.Server> =>
    new Promise((resolve, reject) => {
      const listener = net.createServer((socket) => {
        const server = routes[kind];
        if (server) server.emit('connection', socket);
        else socket.resetAndDestroy();
      });
      listener.once('error', reject);
      listener.listen(0, '127.0.0.1', () => {
        listener.off('error', reject);
        resolve(listener);
      });
    });
  const listeners: net.Server[] = [];
  try {
    for (const kind of ['object', 'container', 'account'] as const) listeners.push(await listen(kind));
  } catch (err) {
    for (const l of listeners) l.close();
    throw err;
  }
  const [object, container, account] = listeners as [net.Server, net.Server, net.Server];
  return { listeners: { object, container, account }, routes };
}

function portOf(listener: net.Server): number {
  return (listener.address() as net.AddressInfo).port;
}
