import path from 'node:path';
import { anchorsDir, intEnv, listEnv, UsageError } from '../../lib/settings.js';

/** Which clouds the benchmark measures, in this order. */
export type TargetName = 'stratus' | 'cinder';

/** Benchmark settings, read once from the environment and flags (see bench/volume/README.md). */
export interface Settings {
  targets: TargetName[];
  /** Size of the test image, MiB (1024: the 1 GiB of the brief). */
  imageMib: number;
  /** Volume size of the image, snapshot and clone measurements, GiB (at least the image). */
  volumeGb: number;
  /** Timed repetitions of create-from-image, snapshot, clone and the cp references. */
  repeat: number;
  /** Volumes created (then deleted) per concurrency on the fake backend. */
  count: number;
  concurrency: number[];
  /** Format of the volume files: Stratus `file` backend's `format`, Cinder's `nfs_qcow2_volumes`. */
  fileFormat: 'qcow2' | 'raw';
  /** Pause between two polls (of one volume, or of the watcher's list), ms. */
  pollMs: number;
  /** Longest one 1 GiB operation (create from image, snapshot, clone, a delete) may take. */
  opTimeoutS: number;
  /** Longest one create or delete phase of the fake backend may take. */
  phaseTimeoutS: number;
  /** Longest a target's start (stratus up; start-cinder.sh) may take. */
  startTimeoutS: number;
  totalTimeoutS: number;
  /** Skip parts: `image` (create from image, snapshot, clone) and/or `rate` (volumes/s). */
  parts: ('image' | 'rate')[];
  keepData: boolean;
  anchors: string;
  anchorState: string;
  ksPort: number;
  ksMemcachePort: number;
  ksPassword: string;
  glPort: number;
  cinderPort: number;
  cinderApiWorkers: number;
  stratusMain: string;
  /** Stratus identity, image and volume ports: PORT_BASE, +1, +2. */
  portBase: number;
  stratusPassword: string;
  /** Where the work directory (test image, copies, Stratus data) is made; must be the file system measured. */
  workParent: string;
}

/** Reads and checks every setting; a bad one is a UsageError naming it. */
export function readSettings(root: string, env: NodeJS.ProcessEnv = process.env): Settings {
  const targets = listEnv('TARGETS', 'stratus,cinder', env);
  for (const t of targets) if (t !== 'stratus' && t !== 'cinder') throw new UsageError(`TARGETS=${env.TARGETS}: stratus and/or cinder, comma separated`);
  const concurrency = listEnv('CONCURRENCY', '1,8,32', env).map(Number);
  if (concurrency.length === 0 || concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new UsageError(`CONCURRENCY=${env.CONCURRENCY}: whole numbers >= 1, comma separated`);
  const parts = listEnv('PARTS', 'image,rate', env);
  for (const p of parts) if (p !== 'image' && p !== 'rate') throw new UsageError(`PARTS=${env.PARTS}: image and/or rate`);
  const fileFormat = env.FILE_FORMAT || 'qcow2';
  if (fileFormat !== 'qcow2' && fileFormat !== 'raw') throw new UsageError(`FILE_FORMAT=${fileFormat}: qcow2 or raw`);
  const imageMib = intEnv('IMAGE_MIB', 1024, 1, env);
  const volumeGb = intEnv('VOLUME_GB', 1, 1, env);
  if (volumeGb * 1024 < imageMib) throw new UsageError(`VOLUME_GB=${volumeGb} cannot hold IMAGE_MIB=${imageMib}`);
  return {
    targets: targets as TargetName[],
    imageMib,
    volumeGb,
    repeat: intEnv('REPEAT', 3, 1, env),
    count: intEnv('COUNT', 500, 1, env),
    concurrency,
    fileFormat,
    pollMs: intEnv('POLL_MS', 50, 1, env),
    opTimeoutS: intEnv('OP_TIMEOUT_S', 600, 1, env),
    phaseTimeoutS: intEnv('PHASE_TIMEOUT_S', 900, 1, env),
    startTimeoutS: intEnv('START_TIMEOUT_S', 600, 1, env),
    totalTimeoutS: intEnv('TOTAL_TIMEOUT_S', 5400, 1, env),
    parts: parts as ('image' | 'rate')[],
    keepData: env.KEEP_DATA === '1',
    anchors: anchorsDir(root, env),
    anchorState: path.resolve(env.OS_ANCHOR_STATE || '/tmp/os-anchors-volbench'),
    ksPort: intEnv('KS_PORT', 5091, 1, env),
    ksMemcachePort: intEnv('KS_MEMCACHE_PORT', 11217, 1, env),
    ksPassword: env.KS_ADMIN_PASSWORD || 'secret',
    glPort: intEnv('GL_PORT', 9393, 1, env),
    cinderPort: intEnv('CINDER_PORT', 8786, 1, env),
    cinderApiWorkers: intEnv('CINDER_API_WORKERS', 2, 1, env),
    stratusMain: path.resolve(env.STRATUS_MAIN || path.join(root, 'dist', 'src', 'cli', 'main.js')),
    portBase: intEnv('PORT_BASE', 18860, 1024, env),
    stratusPassword: env.BENCH_STRATUS_PASSWORD || 'secret',
    workParent: path.resolve(env.BENCH_WORK_PARENT || '/tmp'),
  };
}
