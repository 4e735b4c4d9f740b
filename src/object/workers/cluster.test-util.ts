import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { StratusConfig } from '../../core/config.js';
import { hashPathHex, Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import type { StorageRequest } from '../storage/client.js';
import { objectDir } from '../storage/diskfile.js';
import { createStorageCluster, type StorageCluster, type StorageClusterOptions } from '../storage/testing.js';
import { readBody } from './direct-client.js';
import { startObjectWorkers, type ObjectWorkerOptions, type ObjectWorkers, type WorkerName, type WorkerPassReport } from './workers.js';

/** What a storage node answered, body read. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A test cluster of H2's storage nodes with a set of workers per node (intervals 0: passes run only through `runOnce`). */
export interface WorkerCluster {
  cluster: StorageCluster;
  workers: ObjectWorkers[];
  /** Runs one pass of a worker on each running node, one node after the other, in node order. */
  runAll(name: WorkerName): Promise<WorkerPassReport[]>;
  /** Runs one pass of a worker on one node. */
  run(node: number, name: WorkerName): Promise<WorkerPassReport>;
  /** One request to a device's server; an unreachable node answers status 0. */
  send(node: RingDevice, req: Omit<StorageRequest, 'device'>): Promise<Answer>;
  /** A fresh, increasing timestamp. */
  ts(): string;
  /** Creates an account and a container on all their replicas (each container replica telling its account replica). */
  createContainer(account: string, container: string): Promise<void>;
  /** PUTs an object to each of its primaries that answers (each telling its paired container replica); returns the statuses. */
  putObject(account: string, container: string, object: string, body: Buffer, headers?: Record<string, string>): Promise<number[]>;
  /** DELETEs an object on each of its primaries that answers (each telling its paired container replica); returns the statuses. */
  deleteObject(account: string, container: string, object: string, timestamp?: string): Promise<number[]>;
  /** GETs an object from the first primary that has it (as the proxy reads). */
  getObject(account: string, container: string, object: string): Promise<Answer>;
  /** The current `.data` file of an object on a device, or null. */
  dataFile(device: string, account: string, container: string, object: string): string | null;
  /** Starts a stopped node again on its ports (the storage harness keeps them while the node is down). */
  startNode(index: number): Promise<void>;
  /** The object's listing rows on each container replica (null for a replica that did not answer 200/204). */
  listings(account: string, container: string): Promise<(string[] | null)[]>;
  close(): Promise<void>;
}

/** A configuration for workers on a node: every interval 0, no auditor rate limit. */
function workerConfig(config: StratusConfig): StratusConfig {
  return {
    ...config,
    object: {
      ...config.object,
      workers: { replicator_interval: 0, auditor_interval: 0, updater_interval: 0, expirer_interval: 0, reaper_interval: 0 },
      auditor_bytes_per_second: 0,
    },
  };
}

/** Starts a storage cluster (one node per device) and one set of workers per node. */
export async function createWorkerCluster(options: StorageClusterOptions & { workers?: Partial<ObjectWorkerOptions> } = {}): Promise<WorkerCluster> {
  const cluster = await createStorageCluster(options);
  const logger = pino({ level: 'silent' });
  const workers = cluster.nodes.map((node) =>
    startObjectWorkers({
      config: workerConfig(node.config),
      salt: cluster.salt,
      rings: cluster.rings,
      storage: cluster.client,
      devicesDir: node.devicesDir,
      logger: logger.child({ node: node.index + 1 }),
      ...options.workers,
    }),
  );
  let ticks = Timestamp.now().ticks;
  const ts = (): string => {
    ticks = Math.max(ticks + 1, Timestamp.now().ticks);
    return new Timestamp(ticks).internal;
  };
  const send = async (node: RingDevice, req: Omit<StorageRequest, 'device'>): Promise<Answer> => {
    try {
      const res = await cluster.client.request(node, { ...req, device: node.device });
      return { status: res.status, headers: res.headers, body: await readBody(res.body) };
    } catch {
      return { status: 0, headers: {}, body: Buffer.alloc(0) };
    }
  };
  const self: WorkerCluster = {
    cluster,
    workers,
    async runAll(name) {
      const reports: WorkerPassReport[] = [];
      for (const [i, w] of workers.entries()) if (cluster.nodes[i]?.running) reports.push(await w.runOnce(name));
      return reports;
    },
    run(node, name) {
      const w = workers[node];
      if (!w) throw new Error(`no node ${node}`);
      return w.runOnce(name);
    },
    send,
    ts,
    async createContainer(account, container) {
      const a = cluster.rings.account.getNodes(account);
      for (const node of a.nodes) await send(node, { method: 'PUT', partition: a.partition, account, headers: { 'x-timestamp': ts() } });
      const c = cluster.rings.container.getNodes(account, container);
      const stamp = ts();
      await Promise.all(
        c.nodes.map((node, i) => {
          const an = a.nodes[i % a.nodes.length] as RingDevice;
          return send(node, {
            method: 'PUT',
            partition: c.partition,
            account,
            container,
            headers: { 'x-timestamp': stamp, 'x-account-host': `${an.ip}:${an.port}`, 'x-account-partition': String(a.partition), 'x-account-device': an.device },
          });
        }),
      );
    },
    async putObject(account, container, object, body, headers = {}) {
      const { partition, nodes } = cluster.rings.object.getNodes(account, container, object);
      const c = cluster.rings.container.getNodes(account, container);
      const stamp = ts();
      const answers = await Promise.all(
        nodes.map((node, i) => {
          const cn = c.nodes[i % c.nodes.length] as RingDevice;
          return send(node, {
            method: 'PUT',
            partition,
            account,
            container,
            object,
            headers: {
              'x-timestamp': stamp,
              'content-type': 'application/octet-stream',
              'x-container-host': `${cn.ip}:${cn.port}`,
              'x-container-partition': String(c.partition),
              'x-container-device': cn.device,
              ...headers,
            },
            body,
          });
        }),
      );
      return answers.map((a) => a.status);
    },
    async deleteObject(account, container, object, timestamp) {
      const { partition, nodes } = cluster.rings.object.getNodes(account, container, object);
      const c = cluster.rings.container.getNodes(account, container);
      const stamp = timestamp ?? ts();
      const answers = await Promise.all(
        nodes.map((node, i) => {
          const cn = c.nodes[i % c.nodes.length] as RingDevice;
          return send(node, {
            method: 'DELETE',
            partition,
            account,
            container,
            object,
            headers: { 'x-timestamp': stamp, 'x-container-host': `${cn.ip}:${cn.port}`, 'x-container-partition': String(c.partition), 'x-container-device': cn.device },
          });
        }),
      );
      return answers.map((a) => a.status);
    },
    async getObject(account, container, object) {
      const { partition, nodes } = cluster.rings.object.getNodes(account, container, object);
      let last: Answer = { status: 404, headers: {}, body: Buffer.alloc(0) };
      for (const node of nodes) {
        last = await send(node, { method: 'GET', partition, account, container, object, headers: {} });
        if (last.status === 200) return last;
      }
      return last;
    },
    dataFile(device, account, container, object) {
      const partition = cluster.rings.object.partition(account, container, object);
      const dir = objectDir(cluster.devicePath(device), partition, hashPathHex(cluster.salt, account, container, object));
      try {
        const data = fs.readdirSync(dir).find((f) => f.endsWith('.data'));
        return data ? path.join(dir, data) : null;
      } catch {
        return null;
      }
    },
    async startNode(index) {
      await cluster.startNode(index);
    },
    async listings(account, container) {
      const c = cluster.rings.container.getNodes(account, container);
      return Promise.all(
        c.nodes.map(async (node) => {
          const res = await send(node, { method: 'GET', partition: c.partition, account, container, headers: {}, query: 'format=json' });
          if (res.status === 204) return [];
          if (res.status !== 200) return null;
          return (JSON.parse(res.body.toString('utf8')) as { name: string }[]).map((r) => r.name);
        }),
      );
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await cluster.close();
    },
  };
  return self;
}
