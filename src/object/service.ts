import type { StratusConfig } from '../core/config.js';
import { roleLogger } from '../core/logging.js';
import type { TokenValidator } from '../core/auth/token-middleware.js';
import type { HashPathSalt } from './common.js';
import { startObjectProxy } from './proxy/server.js';
import { devicesDir, ensureDefaultRings, ringDir } from './ring/defaults.js';
import { Ring, ringFile } from './ring/ring.js';
import { loadHashPathSalt } from './salt.js';
import { HttpStorageClient } from './storage/http-client.js';
import { startStorageNode } from './storage/http-server.js';
import { startObjectWorkers } from './workers/index.js';

/** How the object proxy logs in to identity (the `swift` service user) and checks tokens. */
export interface ObjectOptions {
  identity: { authUrl: string; password: string; username?: string };
  validator?: TokenValidator;
}

/** The three rings of the cluster, as this node reads them (re-read when their files change). */
export interface ObjectRings {
  account: Ring;
  container: Ring;
  object: Ring;
}

/** Loads the rings from `ring_dir`; says which is missing and how to make it. */
export function loadRings(config: StratusConfig, salt: HashPathSalt): ObjectRings {
  const dir = ringDir(config);
  const load = (kind: 'account' | 'container' | 'object'): Ring => {
    const file = ringFile(dir, kind);
    try {
      return Ring.load(file, salt);
    } catch (err) {
      throw new Error(`the ${kind} ring ${file} cannot be read (${(err as Error).message}): make it with 'stratus ring create/add/rebalance ${kind}'`);
    }
  };
  return { account: load('account'), container: load('container'), object: load('object') };
}

/** A running role (or set of roles) of object storage. */
export interface RunningObjectRole {
  stop(): Promise<void>;
}

/** The `object-server` role: this node's account, container and object servers, for every device under `devices_dir`. */
export async function startObjectServers(config: StratusConfig): Promise<RunningObjectRole & { ports: { object: number; container: number; account: number } }> {
  const salt = loadHashPathSalt(config);
  const { storage } = config.object;
  const node = await startStorageNode({
    config,
    salt,
    devicesDir: devicesDir(config),
    logger: roleLogger('object-server'),
    bindHost: storage.bind_host,
    ports: { object: storage.object_port, container: storage.container_port, account: storage.account_port },
  });
  return node;
}

/** The `object-proxy` role: Swift API v1 and S3 on `object.port`. */
export async function startObjectProxyRole(config: StratusConfig, options: ObjectOptions): Promise<RunningObjectRole & { port: number }> {
  const salt = loadHashPathSalt(config);
  const rings = loadRings(config, salt);
  const storage = new HttpStorageClient();
  const proxy = await startObjectProxy(config, { identity: options.identity, ...(options.validator ? { validator: options.validator } : {}), rings, salt, storage });
  return {
    port: proxy.port,
    async stop() {
      await proxy.stop();
      storage.close();
    },
  };
}

/** The `object-workers` role: replicator, auditor, updater, expirer and reaper over this node's devices. */
export async function startObjectWorkersRole(config: StratusConfig): Promise<RunningObjectRole> {
  const salt = loadHashPathSalt(config);
  const rings = loadRings(config, salt);
  const storage = new HttpStorageClient();
  const workers = await startObjectWorkers({ config, salt, rings, storage, devicesDir: devicesDir(config), logger: roleLogger('object-workers') });
  return {
    async stop() {
      await workers.stop();
      storage.close();
    },
  };
}

/** Every object storage role of an all-in-one process. */
export interface RunningObject {
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts object storage as `up` runs it: the default rings on first start
 * (one node, `default_ring.devices` device directories, `replicas` replicas),
 * this node's storage servers, the proxy, and the background workers.
 */
export async function startObject(config: StratusConfig, options: ObjectOptions): Promise<RunningObject> {
  ensureDefaultRings(config);
  const undo: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const step of undo.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    const servers = await startObjectServers(config);
    undo.push(() => servers.stop());
    const proxy = await startObjectProxyRole(config, options);
    undo.push(() => proxy.stop());
    const workers = await startObjectWorkersRole(config);
    undo.push(() => workers.stop());
    return { port: proxy.port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
