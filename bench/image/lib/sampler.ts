import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { now, treePids } from '../../lib/proc.js';

/** Clock ticks per second of the CPU times in /proc/<pid>/stat. */
const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number((r.stdout ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** User and system CPU seconds. */
export interface CpuTimes {
  user_s: number;
  sys_s: number;
}

function procCpu(pid: number): CpuTimes | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) is in parentheses and may hold spaces; utime/stime are fields 14/15.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { user_s: Number(fields[11]) / CLK_TCK, sys_s: Number(fields[12]) / CLK_TCK };
  } catch {
    return null;
  }
}

/** CPU seconds (all threads) used so far by the given processes, summed. */
export function cpuOf(pids: number[]): CpuTimes {
  const out = { user_s: 0, sys_s: 0 };
  for (const pid of pids) {
    const c = procCpu(pid);
    if (c) {
      out.user_s += c.user_s;
      out.sys_s += c.sys_s;
    }
  }
  return out;
}

/** CPU used between two readings. */
export function cpuDelta(a: CpuTimes, b: CpuTimes): CpuTimes {
  return { user_s: b.user_s - a.user_s, sys_s: b.sys_s - a.sys_s };
}

function statusKib(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident set size of the processes, summed, in MiB. */
export function rssMib(pids: number[]): number {
  return pids.reduce((a, pid) => a + statusKib(pid, 'VmRSS'), 0) / 1024;
}

/** The kernel's peak RSS (VmHWM, since each process started), summed over the processes, in MiB. */
export function hwmMib(pids: number[]): number {
  return pids.reduce((a, pid) => a + statusKib(pid, 'VmHWM'), 0) / 1024;
}

/** Dirty + Writeback page cache of the whole host, in MiB (/proc/meminfo). */
export function dirtyMib(): number {
  try {
    const text = fs.readFileSync('/proc/meminfo', 'utf8');
    const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return (kib('Dirty') + kib('Writeback')) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Bytes read (`rchar`) by a process so far, or null when it is gone. */
function rchar(pid: number): number | null {
  try {
    const m = /^rchar:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The children of a process (Linux /proc/<pid>/task/<pid>/children). */
export function childPids(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** How often the client's progress is read to see the end of an upload body, ms. */
const WATCH_MS = 20;

/** What a sampler saw while it ran. */
export interface Samples {
  /** Server RSS (MiB) just before the transfer. */
  rss_before_mib: number;
  /** Highest server RSS (MiB) seen in any sample during the transfer. */
  rss_peak_mib: number;
  /** Server RSS (MiB) at the end of the transfer. */
  rss_after_mib: number;
  samples: number;
  /** Seconds from the start until the client had read the whole upload body from its file (it was then in the socket, give or take 20 ms); null if not seen. */
  body_sent_s: number | null;
}

/**
 * Samples the summed RSS of the server's processes every `intervalMs` while a
 * transfer runs; optionally watches the client's `rchar` to see when it has
 * read the whole upload body. Never throws; processes that vanish count 0.
 */
export class RssSampler {
  private readonly pids: number[];
  private readonly t0 = now();
  private readonly before: number;
  private peak: number;
  private count = 0;
  private bodySent: number | null = null;
  private clientPid: number | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly watchTimer: NodeJS.Timeout | null;

  /**
   * @param roots the server's root PIDs (their trees are summed)
   * @param watch the client launcher's PID (its child is curl) and the bytes of the upload body
   */
  constructor(
    roots: number[],
    intervalMs: number,
    private readonly watch: { launcherPid: number; bytes: number } | null = null,
  ) {
    this.pids = treePids(roots);
    this.before = rssMib(this.pids);
    this.peak = this.before;
    this.timer = setInterval(() => this.sample(), intervalMs);
    // The end of the body is watched more often: the server's work after it is ~0.1 s.
    this.watchTimer = watch ? setInterval(() => this.watchBody(), WATCH_MS) : null;
  }

  private sample(): void {
    this.count++;
    this.peak = Math.max(this.peak, rssMib(this.pids));
  }

  private watchBody(): void {
    if (!this.watch || this.bodySent !== null) return;
    this.clientPid ??= childPids(this.watch.launcherPid)[0] ?? null;
    const read = this.clientPid === null ? null : rchar(this.clientPid);
    if (read !== null && read >= this.watch.bytes) this.bodySent = now() - this.t0;
  }

  /** Stops sampling (takes one last sample) and returns what was seen. */
  stop(): Samples {
    clearInterval(this.timer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    const after = rssMib(this.pids);
    this.peak = Math.max(this.peak, after);
    return { rss_before_mib: this.before, rss_peak_mib: this.peak, rss_after_mib: after, samples: this.count, body_sent_s: this.bodySent };
  }
}

/** Bytes of `file` in the page cache (util-linux fincore), or null when unknown. */
export function cachedBytes(file: string): number | null {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8', timeout: 10000 });
  const n = Number((r.stdout ?? '').trim());
  return r.status === 0 && Number.isFinite(n) ? n : null;
}
