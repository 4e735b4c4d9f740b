import type { StratusConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import type { HashPathSalt } from '../common.js';
import type { Handler } from '../proxy/pipeline.js';
import type { StorageClient } from '../storage/client.js';
import { auditorPass } from './auditor.js';
import { RECLAIM_AGE_SECONDS, type PassStats, type Rings, type WorkerContext } from './context.js';
import { dbReplicatorPass } from './db-replicator.js';
import { expirerPass } from './expirer.js';
import { objectReplicatorPass } from './object-replicator.js';
import { reaperPass } from './reaper.js';
import { updaterPass } from './updater.js';

/** The background workers of a storage node, by the name `runOnce` and the `*_interval` options use. */
export type WorkerName = 'replicator' | 'auditor' | 'updater' | 'expirer' | 'reaper';

/** Every worker, in the order a full maintenance round runs them. */
export const WORKER_NAMES: readonly WorkerName[] = ['updater', 'replicator', 'auditor', 'expirer', 'reaper'];

/** Scheduled replicator passes between two full ones (a full pass also checks the local suffix hashes against the disk). */
const FULL_REPLICATION_EVERY = 10;

/** What one pass of a worker did. */
export interface WorkerPassReport {
  worker: WorkerName;
  elapsedMs: number;
  /** Counters by what happened (`checked`, `repaired`, `failed`, ...). */
  stats: PassStats;
}

/** Options of `startObjectWorkers`. */
export interface ObjectWorkerOptions {
  config: StratusConfig;
  salt: HashPathSalt;
  rings: Rings;
  storage: StorageClient;
  /** This node's device directories (`<devicesDir>/<device>`). */
  devicesDir: string;
  /** The role's logger (`roleLogger('object-workers')`): each pass logs one line (`pass completed`, with its counters) under `worker: <name>`. */
  logger: Logger;
  /** The proxy app without auth, when running in the proxy's process (not needed: passes talk to storage servers directly). */
  internal?: Handler;
  /** Seconds after which tombstones are reclaimed (default a week; tests shorten it). */
  reclaimAge?: number;
  /** The clock, seconds since the epoch (tests move it). */
  now?: () => number;
}

/** Running workers. */
export interface ObjectWorkers {
  /** Stops the timers, asks passes in progress to end early and waits for them. Idempotent. */
  stop(): Promise<void>;
  /**
   * Runs one full pass of a worker now, after the pass in progress (if any)
   * ends: passes of one worker never overlap. Resolves with what it did;
   * rejects only when the pass itself fails unexpectedly (it is logged too).
   */
  runOnce(name: WorkerName): Promise<WorkerPassReport>;
}

/**
 * Starts this node's background workers (Swift's replicators, auditor,
 * updaters, expirer and reaper): each runs a pass every
 * `config.object.workers.<name>_interval` seconds (0: only through
 * `runOnce`), one pass at a time, over the devices of the rings that this
 * node serves (ip:port are `config.object.storage.host` and its ports).
 * Every pass logs what it checked, repaired and failed.
 */
export function startObjectWorkers(options: ObjectWorkerOptions): ObjectWorkers {
  const log = options.logger;
  const abort = new AbortController();
  const ctx: WorkerContext = {
    config: options.config.object,
    salt: options.salt,
    rings: options.rings,
    storage: options.storage,
    devicesDir: options.devicesDir,
    log,
    signal: abort.signal,
    ...(options.internal ? { internal: options.internal } : {}),
    reclaimAge: options.reclaimAge ?? RECLAIM_AGE_SECONDS,
    now: options.now ?? (() => Date.now() / 1000),
  };
  // What passes keep between them: the container updater's last reports, the count of replicator passes.
  const reported = new Map<string, string>();
  let replicatorPasses = 0;
  const passes: Record<WorkerName, (ctx: WorkerContext, stats: PassStats, explicit: boolean) => Promise<void>> = {
    async replicator(passCtx, stats, explicit) {
      const full = explicit || replicatorPasses % FULL_REPLICATION_EVERY === 0;
      replicatorPasses++;
      stats.full = full ? 1 : 0;
      await objectReplicatorPass(passCtx, stats, full);
      await dbReplicatorPass(passCtx, stats, 'container');
      await dbReplicatorPass(passCtx, stats, 'account');
    },
    auditor: (passCtx, stats) => auditorPass(passCtx, stats),
    updater: (passCtx, stats) => updaterPass(passCtx, stats, reported),
    expirer: (passCtx, stats) => expirerPass(passCtx, stats),
    reaper: (passCtx, stats) => reaperPass(passCtx, stats),
  };
  const running = new Map<WorkerName, Promise<unknown>>();
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;

  const run = (name: WorkerName, explicit: boolean): Promise<WorkerPassReport> => {
    const previous = running.get(name) ?? Promise.resolve();
    const pass = previous
      .catch(() => undefined)
      .then(async () => {
        const stats: PassStats = {};
        const started = Date.now();
        const workerLog = log.child({ worker: name });
        workerLog.debug('pass begins');
        try {
          await passes[name]({ ...ctx, log: workerLog }, stats, explicit);
        } catch (err) {
          workerLog.error({ err, stats, elapsed_ms: Date.now() - started }, 'pass failed');
          throw err;
        }
        const report: WorkerPassReport = { worker: name, elapsedMs: Date.now() - started, stats };
        workerLog.info({ stats, elapsed_ms: report.elapsedMs, aborted: ctx.signal.aborted }, 'pass completed');
        return report;
      });
    const tracked = pass.catch(() => undefined).finally(() => {
      if (running.get(name) === tracked) running.delete(name);
    });
    running.set(name, tracked);
    return pass;
  };

  const schedule = (name: WorkerName, seconds: number): void => {
    const tick = (): void => {
      if (stopped) return;
      // A scheduled pass never queues behind another: when one is still running, this tick is skipped.
      if (!running.has(name)) void run(name, false).catch(() => undefined);
    };
    // The first pass comes after a random part of the interval, so that nodes started together do not all sweep at once.
    const first = setTimeout(() => {
      tick();
      const timer = setInterval(tick, seconds * 1000);
      timer.unref();
      timers.push(timer);
    }, Math.random() * seconds * 1000);
    first.unref();
    timers.push(first);
  };

  const intervals = options.config.object.workers;
  const intervalOf: Record<WorkerName, number> = {
    replicator: intervals.replicator_interval,
    auditor: intervals.auditor_interval,
    updater: intervals.updater_interval,
    expirer: intervals.expirer_interval,
    reaper: intervals.reaper_interval,
  };
  for (const name of WORKER_NAMES) if (intervalOf[name] > 0) schedule(name, intervalOf[name]);

  return {
    async stop() {
      if (stopped) {
        await Promise.all(running.values());
        return;
      }
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      abort.abort();
      await Promise.all(running.values());
    },
    runOnce(name) {
      if (!WORKER_NAMES.includes(name)) return Promise.reject(new Error(`unknown worker ${JSON.stringify(name)}`));
      if (stopped) return Promise.reject(new Error('the object workers are stopped'));
      return run(name, true);
    },
  };
}
