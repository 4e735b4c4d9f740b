import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig, type StratusConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import { freePort } from '../../core/testing.js';
import type { HashPathSalt } from '../common.js';
import { Ring, ringFile, simpleRing, writeRingFile, type RingDevice, type RingKind } from '../ring/ring.js';
import type { StorageRequest, StorageResponse } from './client.js';
import { HttpStorageClient } from './http-client.js';
import { startStorageNode, type StorageNode } from './http-server.js';

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
  /** Stops one node's servers (its ports stay in the rings; requests to it fail to connect). */
  stopNode(index: number): Promise<void>;
  /** Starts a stopped node again on the same ports. */
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
  const start = async (node: ClusterNode): Promise<void> => {
    node.server = await startStorageNode({
      config: node.config,
      salt,
      devicesDir: node.devicesDir,
      logger: logger.child({ node: node.index + 1 }),
      bindHost: '127.0.0.1',
      ports: node.ports,
      rings: { account: rings.account, container: rings.container },
      ...(options.accountReportDelayMs !== undefined ? { accountReportDelayMs: options.accountReportDelayMs } : {}),
    });
    node.ports = { ...node.server.ports };
    node.running = true;
  };

  const client = new HttpStorageClient({ connectTimeoutMs: 500, timeoutMs: 5000 });
  try {
    // Rings name the nodes' ports, so the ports are found first and the rings written before the nodes serve.
    const taken = new Set<number>();
    const placeholders: ClusterNode['ports'][] = [];
    for (let i = 0; i < nodes.length; i++) placeholders.push(await freePorts(taken));
    nodes.forEach((node, i) => {
      node.ports = placeholders[i] as ClusterNode['ports'];
    });
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
      client.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** Free loopback ports (object, container, account), released at once for the node to take; none twice in one cluster. */
async function freePorts(taken: Set<number>): Promise<{ object: number; container: number; account: number }> {
  const next = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  return { object: await next(), container: await next(), account: await next() };
}
