import path from 'node:path';
import { anchorsDir, intEnv, listEnv, UsageError } from '../../lib/settings.js';

/** Which clouds the benchmark measures, in this order. */
export type TargetName = 'neutron' | 'stratus' | 'external';

/** Benchmark settings, read once from the environment and flags (see bench/network/README.md). */
export interface Settings {
  targets: TargetName[];
  /** Ports created at concurrency 1, and that phase's time limit. */
  c1Ports: number;
  /** Ports created at concurrency `concurrency` (16), and that phase's time limit. */
  cNPorts: number;
  concurrency: number;
  phaseTimeS: number;
  /** Ports present for the list measurements (the create phases count towards it). */
  totalPorts: number;
  fillTimeS: number;
  /** Repetitions of each list, and each list kind's time limit. */
  fullListReps: number;
  pageListReps: number;
  deviceListReps: number;
  listTimeS: number;
  /** Page size of the `network_id=...&limit=N` list. */
  pageLimit: number;
  deleteTimeS: number;
  requestTimeoutS: number;
  listTimeoutS: number;
  /** A phase stops after this many failed requests. */
  maxErrors: number;
  subnetCidr: string;
  /** Prefix length of the subnets: SUBNET_CIDR itself, or as many parts of it of this length as the ports need. */
  subnetPrefix: number;
  totalTimeoutS: number;
  keepData: boolean;
  /** Kept-alive connections (KEEP_ALIVE=1) instead of one connection per request. */
  keepAlive: boolean;
  /** The anchor scripts (start-keystone.sh, ...) and their state directory. */
  anchors: string;
  anchorState: string;
  ksPort: number;
  ksMemcachePort: number;
  ksPassword: string;
  neutronPort: number;
  neutronApiWorkers: number;
  stratusMain: string;
  stratusIdentityPort: number;
  stratusImagePort: number;
  stratusNetworkPort: number;
  stratusPassword: string;
  /** The `external` target: an already running cloud (loopback only). */
  external: { authUrl: string; username: string; password: string; project: string; domain: string };
  /** Where the Stratus data directory and logs go (a new directory is made in it). */
  workParent: string;
}

function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
  } catch {
    return false;
  }
}

/** Reads the settings; throws UsageError for a malformed value. */
export function readSettings(root: string, env: NodeJS.ProcessEnv = process.env): Settings {
  const int = (name: string, fallback: number, min = 1): number => intEnv(name, fallback, min, env);
  const targets = listEnv('TARGETS', 'neutron,stratus', env);
  for (const t of targets) if (t !== 'neutron' && t !== 'stratus' && t !== 'external') throw new UsageError(`TARGETS=${env.TARGETS}: each of neutron, stratus, external`);
  if (targets.length === 0) throw new UsageError('TARGETS is empty');
  const c1Ports = int('C1_PORTS', 300, 0);
  const cNPorts = int('CN_PORTS', 1000, 0);
  const externalUrl = env.NETBENCH_AUTH_URL ?? '';
  if (targets.includes('external')) {
    if (!externalUrl) throw new UsageError('TARGETS has external: set NETBENCH_AUTH_URL (and NETBENCH_PASSWORD, ...)');
    if (!isLoopback(externalUrl)) throw new UsageError(`NETBENCH_AUTH_URL=${externalUrl}: this benchmark only talks to 127.0.0.1`);
  }
  return {
    targets: targets as TargetName[],
    c1Ports,
    cNPorts,
    concurrency: int('CONCURRENCY', 16),
    phaseTimeS: int('PHASE_TIME_S', 300),
    totalPorts: Math.max(int('TOTAL_PORTS', 10000), c1Ports + cNPorts),
    fillTimeS: int('FILL_TIME_S', 3600),
    fullListReps: int('FULL_LIST_REPS', 10, 0),
    pageListReps: int('PAGE_LIST_REPS', 50, 0),
    deviceListReps: int('DEVICE_LIST_REPS', 50, 0),
    listTimeS: int('LIST_TIME_S', 180),
    pageLimit: int('PAGE_LIMIT', 100),
    deleteTimeS: int('DELETE_TIME_S', 1800),
    requestTimeoutS: int('REQUEST_TIMEOUT_S', 60),
    listTimeoutS: int('LIST_TIMEOUT_S', 300),
    maxErrors: int('MAX_ERRORS', 20),
    subnetCidr: env.SUBNET_CIDR || '10.0.0.0/16',
    subnetPrefix: int('SUBNET_PREFIX', Number((env.SUBNET_CIDR || '10.0.0.0/16').split('/')[1]) || 16, 8),
    totalTimeoutS: int('TOTAL_TIMEOUT_S', 7200),
    keepData: env.KEEP_DATA === '1',
    keepAlive: env.KEEP_ALIVE === '1',
    anchors: anchorsDir(root, env),
    anchorState: path.resolve(env.OS_ANCHOR_STATE || '/tmp/os-anchors-netbench'),
    ksPort: int('KS_PORT', 5081),
    ksMemcachePort: int('KS_MEMCACHE_PORT', 11216),
    ksPassword: env.KS_ADMIN_PASSWORD || 'secret',
    neutronPort: int('NEUTRON_PORT', 9697),
    neutronApiWorkers: int('NEUTRON_API_WORKERS', 2),
    stratusMain: path.resolve(env.STRATUS_MAIN || path.join(root, 'dist', 'src', 'cli', 'main.js')),
    stratusIdentityPort: int('STRATUS_PORT', 5082),
    stratusImagePort: int('STRATUS_IMAGE_PORT', 9382),
    stratusNetworkPort: int('STRATUS_NETWORK_PORT', 9686),
    stratusPassword: env.BENCH_STRATUS_PASSWORD || 'secret',
    external: {
      authUrl: externalUrl.replace(/\/+$/, '').replace(/\/v3$/, ''),
      username: env.NETBENCH_USERNAME || 'admin',
      password: env.NETBENCH_PASSWORD || 'secret',
      project: env.NETBENCH_PROJECT || 'admin',
      domain: env.NETBENCH_DOMAIN || 'Default',
    },
    workParent: path.resolve(env.BENCH_WORK_PARENT || '/tmp'),
  };
}
