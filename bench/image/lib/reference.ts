import fs from 'node:fs';
import { runCommand } from '../../lib/proc.js';

/** One run of the physical-limit references on the test file. */
export interface ReferenceRun {
  /** `cp SRC DST`: until cp returned (data in the page cache, not yet on disk). */
  cp_s: number;
  /** `cp SRC DST; sync DST`: until the copy's fsync returned (data on disk). */
  cp_fsync_s: number;
  /** `dd if=SRC of=DST bs=1M conv=fsync`: read/write through user space in 1 MiB blocks, then fsync. */
  dd_fsync_s: number;
  /** `cat SRC > /dev/null` (SRC in the page cache). */
  cat_s: number;
}

// Times inside one bash, so that process start-up is not in the figures. Every step
// starts with a clean file system (the caller ran `sync -f` before this script).
const SCRIPT = `
set -e
src=$1; dst=$2
t0=$EPOCHREALTIME; cp "$src" "$dst"; t1=$EPOCHREALTIME; sync "$dst"; t2=$EPOCHREALTIME
# Untimed: the removal's journal commit (and discard, when mounted with it) is not the next step's.
rm -f "$dst"; sync -f "$src"
t3=$EPOCHREALTIME; dd if="$src" of="$dst" bs=1M conv=fsync status=none; t4=$EPOCHREALTIME
rm -f "$dst"; sync -f "$src"
t5=$EPOCHREALTIME; cat "$src" > /dev/null; t6=$EPOCHREALTIME
echo "$t0 $t1 $t2 $t3 $t4 $t5 $t6"
`;

/**
 * Copies `src` to `dst` (same file system) with cp, cp + fsync, dd with
 * fsync, and reads it with cat; removes the copy. Throws when a step fails.
 */
export async function referenceRun(src: string, dst: string, timeoutS: number): Promise<ReferenceRun> {
  const r = await runCommand('bash', ['-c', SCRIPT, 'bash', src, dst], { timeoutMs: timeoutS * 1000 });
  fs.rmSync(dst, { force: true });
  const t = r.stdout.trim().split(/\s+/).map(Number);
  if (r.code !== 0 || t.length !== 7 || t.some((x) => !Number.isFinite(x))) {
    throw new Error(`reference copy failed (exit ${r.code ?? r.signal}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  const d = (i: number, j: number): number => (t[j] ?? 0) - (t[i] ?? 0);
  return { cp_s: d(0, 1), cp_fsync_s: d(0, 2), dd_fsync_s: d(3, 4), cat_s: d(5, 6) };
}
