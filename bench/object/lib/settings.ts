import path from 'node:path';
import { anchorsDir, intEnv, listEnv, UsageError } from '../../lib/settings.js';

/** The object stores the benchmark measures, in this order. */
export type TargetName = 'stratus' | 'swift';

/** The parts of a run: small objects (4 KiB PUT/GET rates), large objects (MiB/s). */
export type PartName = 'small' | 'large';

/** Benchmark settings, read once from the environment and flags (see bench/object/README.md). */
export interface Settings {
  targets: TargetName[];
  parts: PartName[];
  /** Concurrencies of the small-object runs (in-flight requests, one keep-alive connection each). */
  concurrency: number[];
  /** Timed runs per (operation, concurrency), and per large transfer. */
  repeat: number;
  /** Time limit of one small-object run, seconds. */
  durationS: number;
  /** Request limit of one small-object run (whichever of count and time comes first ends it). */
  count: number;
  /** Untimed requests before each target's timed runs (connections, caches, JIT). */
  warmup: number;
  /** Size of a small object, bytes. */
  objBytes: number;
  /** Objects seeded for the GET runs (each GET picks one at random). */
  nseed: number;
  /** Size of the large object, MiB. */
  bigMib: number;
  /** Longest one request of a small-object run may take, seconds. */
  requestTimeoutS: number;
  /** Longest one large transfer may take, seconds. */
  transferTimeoutS: number;
  /** Longest a target's start may take, seconds. */
  startTimeoutS: number;
  totalTimeoutS: number;
  /** Leave out the disk references (SKIP_DISK=1; the limit columns stay empty). */
  skipDisk: boolean;
  /** Run Stratus under `node --cpu-prof` and report where its CPU time went. */
  profile: boolean;
  keepData: boolean;
  anchors: string;
  /** The anchor state directory of this benchmark's Swift (its own: never someone else's). */
  anchorState: string;
  swProxyPort: number;
  memcachePort: number;
  stratusMain: string;
  /** Stratus ports: identity PORT_BASE, object-proxy +1, object server +2, container server +3, account server +4. */
  portBase: number;
  stratusPassword: string;
  /** Where the work directory (test files, Stratus data, references) is made; the file system measured. */
  workParent: string;
}

function oneOf<T extends string>(name: string, values: string[], allowed: readonly T[], env: NodeJS.ProcessEnv): T[] {
  for (const v of values) if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${name}=${env[name]}: ${allowed.join(' and/or ')}, comma separated`);
  if (values.length === 0) throw new UsageError(`${name} is empty`);
  return values as T[];
}

/** Reads and checks every setting; a bad one is a UsageError naming it. */
export function readSettings(root: string, env: NodeJS.ProcessEnv = process.env): Settings {
  const targets = oneOf('TARGETS', listEnv('TARGETS', 'stratus,swift', env), ['stratus', 'swift'] as const, env);
  const parts = oneOf('PARTS', listEnv('PARTS', 'small,large', env), ['small', 'large'] as const, env);
  const concurrency = listEnv('CONCURRENCY', '1,16', env).map(Number);
  if (concurrency.length === 0 || concurrency.some((c) => !Number.isInteger(c) || c < 1 || c > 256)) throw new UsageError(`CONCURRENCY=${env.CONCURRENCY}: whole numbers 1..256, comma separated`);
  return {
    targets,
    parts,
    concurrency,
    repeat: intEnv('REPEAT', 3, 1, env),
    durationS: intEnv('DURATION_S', 10, 1, env),
    count: intEnv('COUNT', 20000, 1, env),
    warmup: intEnv('WARMUP', 200, 0, env),
    objBytes: intEnv('OBJ_BYTES', 4096, 1, env),
    nseed: intEnv('NSEED', 100, 1, env),
    bigMib: intEnv('BIG_MIB', 256, 1, env),
    requestTimeoutS: intEnv('REQUEST_TIMEOUT_S', 30, 1, env),
    transferTimeoutS: intEnv('TRANSFER_TIMEOUT_S', 300, 1, env),
    startTimeoutS: intEnv('START_TIMEOUT_S', 300, 1, env),
    totalTimeoutS: intEnv('TOTAL_TIMEOUT_S', 3600, 1, env),
    skipDisk: env.SKIP_DISK === '1',
    profile: env.PROFILE === '1',
    keepData: env.KEEP_DATA === '1',
    anchors: anchorsDir(root, env),
    anchorState: path.resolve(env.OS_ANCHOR_STATE || '/tmp/os-anchors-objbench'),
    swProxyPort: intEnv('SW_PROXY_PORT', 8080, 1, env),
    memcachePort: intEnv('MEMCACHE_PORT', 11211, 1, env),
    stratusMain: path.resolve(env.STRATUS_MAIN || path.join(root, 'dist', 'src', 'cli', 'main.js')),
    portBase: intEnv('PORT_BASE', 18880, 1024, env),
    stratusPassword: env.BENCH_STRATUS_PASSWORD || 'secret',
    workParent: path.resolve(env.BENCH_WORK_PARENT || '/tmp'),
  };
}
