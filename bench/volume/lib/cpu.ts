import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { treePids } from '../../lib/proc.js';

/** Clock ticks per second of the CPU times in /proc/<pid>/stat. */
const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number((r.stdout ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/**
 * CPU seconds used so far by the process trees rooted at `roots`, children
 * that have ended included: per live process utime + stime + cutime + cstime
 * (a reaped child's time is in its parent's cutime/cstime). So the qemu-img
 * runs of a volume driver and PostgreSQL's ended backends count too, which
 * bench/lib/proc's treeCpuSeconds (live processes only) leaves out.
 */
export function treeCpuWithChildren(roots: number[]): number {
  if (roots.length === 0) return 0;
  let total = 0;
  for (const pid of treePids(roots)) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the parenthesised command name: [0] is field 3 (state); utime..cstime are fields 14-17.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  }
  return total;
}
