/** The background workers of object storage (replicator, auditor, updater, expirer, reaper): see `workers.ts`. */
export { startObjectWorkers, WORKER_NAMES, type ObjectWorkerOptions, type ObjectWorkers, type WorkerName, type WorkerPassReport } from './workers.js';
