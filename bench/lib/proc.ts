import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `promise` at most `ms`; rejects with `what` on the timeout. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Seconds since an arbitrary origin (monotonic clock). */
export function now(): number {
  return performance.now() / 1000;
}

/** Clock ticks per second of the CPU times in /proc/<pid>/stat. */
const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number((r.stdout ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

interface ProcStat {
  pid: number;
  ppid: number;
  /** user + system CPU seconds of this process (not of its reaped children). */
  cpu: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may contain spaces.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { pid, ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK };
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** The given PIDs and all their descendants that are alive now. */
export function treePids(roots: number[]): number[] {
  const stats = allStats();
  const parent = new Map(stats.map((s) => [s.pid, s.ppid]));
  const want = new Set(roots);
  const out: number[] = [];
  for (const s of stats) {
    let x: number | undefined = s.pid;
    for (let depth = 0; x !== undefined && x > 0 && depth < 64; depth++) {
      if (want.has(x)) {
        out.push(s.pid);
        break;
      }
      x = parent.get(x);
    }
  }
  return out;
}

/** Memory of a process tree: resident set and proportional set size, summed. */
export interface TreeMemory {
  /** Sum of VmRSS over the processes (shared pages counted once per process). */
  rss_mib: number;
  /** Sum of Pss (shared pages split between the processes sharing them). */
  pss_mib: number;
  /** Number of processes summed. */
  procs: number;
}

/** RSS and PSS summed over the trees rooted at `roots` (/proc, Linux only). */
export function treeMemory(roots: number[]): TreeMemory {
  let rss = 0;
  let pss = 0;
  let procs = 0;
  for (const pid of treePids(roots)) {
    try {
      const m = /^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      rss += m ? Number(m[1]) : 0;
    } catch {
      continue;
    }
    try {
      const m = /^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      pss += m ? Number(m[1]) : 0;
    } catch {
      // smaps_rollup needs Linux 4.14+; PSS stays 0 without it.
    }
    procs++;
  }
  return { rss_mib: rss / 1024, pss_mib: pss / 1024, procs };
}

/** CPU seconds (user + system) used so far by one thread (`tid` = `pid`: the main thread, e.g. Node's event loop), or null when it is gone. */
export function threadCpuSeconds(pid: number, tid = pid): number | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** CPU seconds (user + system) used so far by the live processes of the trees. */
export function treeCpuSeconds(roots: number[]): number {
  if (roots.length === 0) return 0;
  const pids = new Set(treePids(roots));
  let total = 0;
  for (const pid of pids) total += readStat(pid)?.cpu ?? 0;
  return total;
}

/** Whole-host CPU counters from the first line of /proc/stat. */
export interface HostCpu {
  total: number;
  idle: number;
}

/** Reads the whole-host CPU counters (all processes, all CPUs). */
export function hostCpu(): HostCpu {
  const first = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = first.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { total, idle: (v[3] ?? 0) + (v[4] ?? 0) };
}

/** Whole-host CPU busy percentage between two samples (100 = all CPUs busy). */
export function busyPercent(a: HostCpu, b: HostCpu): number {
  const total = b.total - a.total;
  return total > 0 ? (100 * (total - (b.idle - a.idle))) / total : 0;
}

/** Whole-host CPU busy percentage over the next `ms` milliseconds. */
export async function hostBusy(ms: number): Promise<number> {
  const a = hostCpu();
  await sleep(ms);
  return busyPercent(a, hostCpu());
}

/** Every child this benchmark started and that has not exited yet. */
export const liveChildren = new Set<ChildProcess>();

/** `spawn` that records the child in `liveChildren` until it exits. */
export function track(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  child.once('error', () => liveChildren.delete(child));
  return child;
}

/** Outcome of a finished command. */
export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion, collecting its output; kills it (SIGTERM,
 * then SIGKILL) after `timeoutMs`. Rejects only when it cannot be started.
 */
export function runCommand(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = track(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = options.timeoutMs
      ? setTimeout(() => {
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 5000).unref();
        }, options.timeoutMs)
      : null;
    child.once('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The last `lines` lines of a command's output (for error messages). */
export function outputTail(r: CommandResult, lines = 15): string {
  return `${r.stdout}${r.stderr}`.trim().split('\n').slice(-lines).join('\n');
}

/** The PID on the first line of a PID file, when that process is alive; null otherwise. */
export function readPidFile(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').split('\n')[0]?.trim());
    return Number.isInteger(pid) && pid > 0 && fs.existsSync(`/proc/${pid}`) ? pid : null;
  } catch {
    return null;
  }
}

/** True when `name` is an executable on PATH (or an executable path). */
export function haveCommand(name: string): boolean {
  return spawnSync('bash', ['-c', 'command -v "$1"', 'bash', name], { stdio: 'ignore' }).status === 0;
}

/** The first non-empty output line of a command (whatever its exit status), or null when it cannot run. */
export function commandLine(command: string, args: string[], cwd?: string): string | null {
  const r = spawnSync(command, args, { encoding: 'utf8', cwd });
  if (r.error) return null;
  const line = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim() !== '');
  return line ? line.trim() : null;
}

/** The installed version of a Debian package, or null. */
export function debVersion(pkg: string): string | null {
  return commandLine('dpkg-query', ['-W', '-f=${Version}', pkg]);
}
