import path from 'node:path';
import { anchorsDir, intEnv } from '../../lib/settings.js';

/** Benchmark settings, read once from the environment (see bench/image/README.md). */
export interface Settings {
  /** Size of the test image in MiB. */
  imgMib: number;
  /** Measured runs per side (each: one upload and one download). */
  runs: number;
  /** Size of the untimed warm-up image per server, in MiB (0: no warm-up transfer). */
  warmupMib: number;
  /** Where the test file, the copies and Stratus' data directory go (a new directory is made in it). */
  workParent: string;
  /** Directory of the OpenStack anchor scripts. */
  anchors: string;
  /** The anchor scripts' state directory (this benchmark's own Keystone and Glance). */
  anchorState: string;
  /** 0 = do not try Glance. */
  glance: boolean;
  ksPort: number;
  ksMemcachePort: number;
  ksCache: string;
  ksPassword: string;
  glPort: number;
  stratusPort: number;
  stratusImagePort: number;
  stratusPassword: string;
  /** Longest a single transfer (curl --max-time) may take, seconds. */
  transferTimeoutS: number;
  /** Longest the whole benchmark may take before it stops everything, seconds. */
  totalTimeoutS: number;
  /** RSS sampling interval, ms. */
  sampleMs: number;
  /** 1 = keep the work directory (test file, Stratus data) and logs. */
  keepData: boolean;
  /** 1 = run Stratus with --cpu-prof and summarise the profile. */
  profile: boolean;
}

/** Reads the settings; throws UsageError for a malformed value. */
export function readSettings(root: string): Settings {
  const imgMib = intEnv('IMG_MIB', 1024);
  return {
    imgMib,
    runs: intEnv('RUNS', 3),
    warmupMib: Math.min(intEnv('WARMUP_MIB', 64, 0), imgMib),
    workParent: path.resolve(process.env.BENCH_WORK_PARENT || '/tmp'),
    anchors: anchorsDir(root),
    anchorState: path.resolve(process.env.OS_ANCHOR_STATE || '/tmp/os-anchors-imgbench'),
    glance: process.env.GLANCE !== '0',
    ksPort: intEnv('KS_PORT', 5072),
    ksMemcachePort: intEnv('KS_MEMCACHE_PORT', 11215),
    ksCache: process.env.KS_CACHE ?? '1',
    ksPassword: process.env.KS_ADMIN_PASSWORD || 'secret',
    glPort: intEnv('GL_PORT', 9372),
    stratusPort: intEnv('STRATUS_PORT', 5071),
    stratusImagePort: intEnv('STRATUS_IMAGE_PORT', 9371),
    stratusPassword: process.env.BENCH_STRATUS_PASSWORD || 'secret',
    // A 1 GiB transfer takes seconds; 10 minutes means something is stuck.
    transferTimeoutS: intEnv('TRANSFER_TIMEOUT_S', Math.max(120, Math.ceil(imgMib / 2))),
    totalTimeoutS: intEnv('TOTAL_TIMEOUT_S', 3600),
    sampleMs: intEnv('SAMPLE_MS', 100, 10),
    keepData: process.env.KEEP_DATA === '1',
    profile: process.env.PROFILE === '1',
  };
}
