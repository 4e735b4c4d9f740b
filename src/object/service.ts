import type { StratusConfig } from '../core/config.js';
import { roleLogger } from '../core/logging.js';
import type { TokenValidator } from '../core/auth/token-middleware.js';
import type { HashPathSalt } from './common.js';
import { startObjectProxy } from './proxy/server.js';
import { devicesDir, ensureDefaultRings, ringDir } from './ring/defaults.js';
import { Ring, ringFile } from './ring/ring.js';
import { loadHashPathSalt } from './salt.js';
import type { StorageClient } from './storage/client.js';
import { HttpStorageClient } from './storage/http-client.js';
import { LocalStorageClient } from './storage/local-client.js';
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

/** The storage client of a role: HTTP with the configured timeouts. */
function httpStorageClient(config: StratusConfig): HttpStorageClient {
  return new HttpStorageClient({ connectTimeoutMs: config.object.conn_timeout * 1000, timeoutMs: config.object.node_timeout * 1000 });
}

/**
 * The `object-server` role: this node's account, container and object
 * servers, for every device under `devices_dir`. With `local`, the servers
 * are also registered there under the address the rings give them, and send
 * their own updates through it.
 */
export async function startObjectServers(config: StratusConfig, local?: LocalStorageClient): Promise<RunningObjectRole & { ports: { object: number; container: number; account: number } }> {
  const salt = loadHashPathSalt(config);
  const { storage } = config.object;
  const node = await startStorageNode({
    config,
    salt,
    devicesDir: devicesDir(config),
    logger: roleLogger('object-server'),
    bindHost: storage.bind_host,
    ports: { object: storage.object_port, container: storage.container_port, account: storage.account_port },
    ...(local ? { client: local } : {}),
  });
  if (local) {
    local.register(storage.host, node.ports.object, node.handlers.object);
    local.register(storage.host, node.ports.container, node.handlers.container);
    local.register(storage.host, node.ports.account, node.handlers.account);
  }
  return {
    ports: node.ports,
    async stop() {
      if (local) for (const port of Object.values(node.ports)) local.unregister(storage.host, port);
      await node.stop();
    },
  };
}

/** The `object-proxy` role: Swift API v1 and S3 on `object.port`. */
export async function startObjectProxyRole(config: StratusConfig, options: ObjectOptions, storage: StorageClient = httpStorageClient(config)): Promise<RunningObjectRole & { port: number }> {
  const salt = loadHashPathSalt(config);
  const rings = loadRings(config, salt);
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
export async function startObjectWorkersRole(config: StratusConfig, storage: StorageClient = httpStorageClient(config)): Promise<RunningObjectRole> {
  const salt = loadHashPathSalt(config);
  const rings = loadRings(config, salt);
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
 * this node's storage servers, the proxy, and the background workers, which
 * call this node's servers directly (other nodes of the rings over HTTP).
 */
export async function startObject(config: StratusConfig, options: ObjectOptions): Promise<RunningObject> {
  ensureDefaultRings(config);
  const undo: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const step of undo.splice(0).reverse()) await step().catch(() => undefined);
  };
  // One process: the proxy, the servers' own updates and the workers reach this node's servers by direct calls.
  const local = new LocalStorageClient(httpStorageClient(config), config.object.node_timeout * 1000);
  const shared: StorageClient = { request: (node, req, opts) => local.request(node, req, opts), close: () => undefined };
  undo.push(async () => local.close());
  try {
    const servers = await startObjectServers(config, local);
    undo.push(() => servers.stop());
    const proxy = await startObjectProxyRole(config, options, shared);
    undo.push(() => proxy.stop());
    const workers = await startObjectWorkersRole(config, shared);
    undo.push(() => workers.stop());
    return { port: proxy.port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
