import fs from 'node:fs';
import { runCommand } from '../../lib/proc.js';

/** One reference copy of the test image on the same file system. */
export interface CopyRun {
  /** `cp SRC DST`: until cp returned (the data may be in the page cache only). */
  cp_s: number;
  /** `cp SRC DST; sync DST`: until the copy's fsync returned (the data on disk). */
  cp_fsync_s: number;
  /** The untimed `sync -f` before it, seconds. */
  sync_before_s: number;
  /** Whole-host CPU busy % in the second before it. */
  host_busy_pct?: number;
}

// Timed inside one bash, so that process start-up is not in the figures.
const SCRIPT = `
set -e
src=$1; dst=$2
t0=$EPOCHREALTIME; cp "$src" "$dst"; t1=$EPOCHREALTIME; sync "$dst"; t2=$EPOCHREALTIME
rm -f "$dst"; sync -f "$src"
echo "$t0 $t1 $t2"
`;

/** Copies `src` to `dst` with cp, then fsyncs the copy; removes it (and flushes that, untimed). Throws when a step fails. */
export async function copyReference(src: string, dst: string, syncBefore: number, timeoutS: number): Promise<CopyRun> {
  const r = await runCommand('bash', ['-c', SCRIPT, 'bash', src, dst], { timeoutMs: timeoutS * 1000 });
  fs.rmSync(dst, { force: true });
  const t = r.stdout.trim().split(/\s+/).map(Number);
  if (r.code !== 0 || t.length !== 3 || t.some((x) => !Number.isFinite(x))) {
    throw new Error(`reference copy failed (exit ${r.code ?? r.signal}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  const d = (i: number, j: number): number => Math.round(((t[j] ?? 0) - (t[i] ?? 0)) * 1000) / 1000;
  return { cp_s: d(0, 1), cp_fsync_s: d(0, 2), sync_before_s: Math.round(syncBefore * 1000) / 1000 };
}
