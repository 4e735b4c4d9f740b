import fs from 'node:fs';
import path from 'node:path';

/** Time of one function in V8 CPU profiles. */
export interface ProfileEntry {
  function: string;
  /** Source file name and line (empty for native or V8-internal entries). */
  where: string;
  /** Self time (summarizeProfiles), or self + callees (summarizeProfileInclusive). */
  self_ms: number;
  /** Share of all non-idle samples, %. */
  pct: number;
}

/** Self time of one source file (or group: node internals, native, GC) in V8 CPU profiles. */
export interface ProfileFileEntry {
  /** `node:<module>` for Node's own code, `npm:<package>` for a dependency, a path below the repository for ours, or a V8 group ((garbage collector), (program)). */
  file: string;
  self_ms: number;
  /** Share of all non-idle samples, %. */
  pct: number;
}

/**
 * Intervals of the monotonic clock in microseconds (`process.hrtime.bigint() / 1000n`
 * of any process on the host: V8 stamps its samples with the same clock).
 */
export type ProfileWindow = [fromUs: number, toUs: number];

/**
 * Which threads' profiles to read: `main` (the event loop; Node's file name
 * `CPU.<date>.<time>.<pid>.0.<n>.cpuprofile`), `workers` (worker threads), or all.
 */
export type ProfileThreads = 'main' | 'workers' | 'all';

function threadOf(file: string): 'main' | 'workers' {
  const m = /^CPU\.\d+\.\d+\.\d+\.(\d+)\./.exec(file);
  return m && m[1] !== '0' ? 'workers' : 'main';
}

/** The monotonic clock in microseconds, as V8 stamps profile samples. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Calls `each(stack, us)` for every non-idle sample of the `.cpuprofile` files
 * of `dir` of the `threads` chosen (inside one of `windows`, when given); `stack` yields the sample's
 * frames from the leaf up. Returns the total non-idle microseconds.
 */
function forEachSample(dir: string, windows: ProfileWindow[] | undefined, threads: ProfileThreads, each: (stack: () => Iterable<CallFrame>, us: number) => void): number {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && (threads === 'all' || threadOf(f) === threads)) : [];
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    let t = profile.startTime;
    profile.samples.forEach((id, i) => {
      const us = profile.timeDeltas[i] ?? 0;
      t += us;
      if (windows && !windows.some(([from, to]) => t >= from && t <= to)) return;
      const leaf = byId.get(id);
      if (!leaf || leaf.functionName === '(idle)') return;
      total += us;
      each(function* () {
        for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
          const frame = byId.get(x);
          if (frame) yield frame;
        }
      }, us);
    });
  }
  return total;
}

function entries(map: Map<string, { fn: string; where: string; us: number }>, total: number, top: number): ProfileEntry[] {
  return [...map.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ function: e.fn, where: e.where, self_ms: Math.round(e.us / 1000), pct: total > 0 ? Math.round((1000 * e.us) / total) / 10 : 0 }));
}

/**
 * The functions with the most self time in the `.cpuprofile` files of a
 * directory (node --cpu-prof), idle time left out, within `windows` and of
 * the `threads` when given. Empty when there are none.
 */
export function summarizeProfiles(dir: string, top = 15, windows?: ProfileWindow[], threads: ProfileThreads = 'all'): ProfileEntry[] {
  const self = new Map<string, { fn: string; where: string; us: number }>();
  const total = forEachSample(dir, windows, threads, (stack, us) => {
    for (const frame of stack()) {
      const where = frame.url ? `${path.basename(frame.url)}:${frame.lineNumber + 1}` : '';
      const key = `${frame.functionName}|${where}`;
      const entry = self.get(key) ?? { fn: frame.functionName || '(anonymous)', where, us: 0 };
      entry.us += us;
      self.set(key, entry);
      return;
    }
  });
  return entries(self, total, top);
}

/** Where a profiled function's code lives, as a short group name (see ProfileFileEntry.file). */
function fileGroup(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').replace(/\/.*$/, '');
  const npm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (npm?.[1]) return `npm:${npm[1]}`;
  const ours = /\/(src|bench|test)\/(.*)$/.exec(url);
  return ours ? `${ours[1]}/${ours[2]}` : path.basename(url);
}

/**
 * Self time summed per source file (Node's own modules and npm packages
 * grouped; a native function by its name), idle time left out, within
 * `windows` when given: which part of the code the CPU went to.
 */
export function summarizeProfileFiles(dir: string, top = 20, windows?: ProfileWindow[], threads: ProfileThreads = 'all'): ProfileFileEntry[] {
  const self = new Map<string, number>();
  const total = forEachSample(dir, windows, threads, (stack, us) => {
    for (const frame of stack()) {
      const key = fileGroup(frame);
      self.set(key, (self.get(key) ?? 0) + us);
      return;
    }
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([file, us]) => ({ file, self_ms: Math.round(us / 1000), pct: total > 0 ? Math.round((1000 * us) / total) / 10 : 0 }));
}

/**
 * Total time (self + callees) of the functions whose source URL contains
 * `within` (e.g. `/src/object/`), idle left out, within `windows` when given:
 * a function counts once per sample however deep it recurses. `pct` is of
 * all non-idle samples, and `self_ms` holds the total (inclusive) time here.
 */
export function summarizeProfileInclusive(dir: string, within: string, top = 20, windows?: ProfileWindow[], threads: ProfileThreads = 'all'): ProfileEntry[] {
  const incl = new Map<string, { fn: string; where: string; us: number }>();
  const total = forEachSample(dir, windows, threads, (stack, us) => {
    const seen = new Set<string>();
    for (const frame of stack()) {
      if (!frame.url.includes(within)) continue;
      const where = `${frame.url.slice(frame.url.indexOf(within) + 1)}:${frame.lineNumber + 1}`;
      const key = `${frame.functionName}|${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = incl.get(key) ?? { fn: frame.functionName || '(anonymous)', where, us: 0 };
      entry.us += us;
      incl.set(key, entry);
    }
  });
  return entries(incl, total, top);
}
