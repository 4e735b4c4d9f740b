import fs from 'node:fs';
import path from 'node:path';
import { boundedLoad, type LoadResult } from '../../lib/load.js';
import { runCommand } from '../../lib/proc.js';

/** Seconds of an untimed `sync -f` of the file system of `dir` (what earlier steps left dirty goes to disk before, not during, the next step). */
export async function syncFs(dir: string): Promise<number> {
  const t0 = performance.now();
  await runCommand('sync', ['-f', dir], { timeoutMs: 300_000 });
  return (performance.now() - t0) / 1000;
}

/**
 * The small-object limit of the disk: new files of `bytes` bytes, each
 * `open(O_CREAT|O_EXCL) + write + fsync + close`, `concurrency` at a time,
 * until `count` or `durationS`. One copy: an object with 3 replicas needs
 * three of these.
 */
export function smallFileWrites(dir: string, o: { bytes: number; concurrency: number; count: number; durationS: number; tag: string }): Promise<LoadResult> {
  const body = Buffer.alloc(o.bytes, 0x78);
  return boundedLoad({
    count: o.count,
    concurrency: o.concurrency,
    timeLimitS: o.durationS,
    maxErrors: 10,
    keepLatencies: false,
    op: async (i) => {
      const t0 = performance.now();
      const fh = await fs.promises.open(path.join(dir, `${o.tag}-${i}`), 'wx');
      try {
        await fh.write(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return performance.now() - t0;
    },
  });
}

/** Writes `n` files of `bytes` bytes named seed-0 .. seed-(n-1) in `dir` (untimed), for smallFileReads. */
export async function seedFiles(dir: string, n: number, bytes: number): Promise<void> {
  const body = Buffer.alloc(bytes, 0x78);
  for (let i = 0; i < n; i++) await fs.promises.writeFile(path.join(dir, `seed-${i}`), body);
}

/** The small-object read limit: `open + read + close` of one of `n` seeded files at random (page cache, nothing dropped). */
export function smallFileReads(dir: string, o: { n: number; bytes: number; concurrency: number; count: number; durationS: number }): Promise<LoadResult> {
  return boundedLoad({
    count: o.count,
    concurrency: o.concurrency,
    timeLimitS: o.durationS,
    maxErrors: 10,
    keepLatencies: false,
    op: async () => {
      const t0 = performance.now();
      const buf = await fs.promises.readFile(path.join(dir, `seed-${Math.floor(Math.random() * o.n)}`));
      if (buf.length !== o.bytes) throw new Error(`read ${buf.length} bytes, not ${o.bytes}`);
      return performance.now() - t0;
    },
  });
}

/** One sequential copy of the large file on the same disk. */
export interface LargeReference {
  /** `dd if=SRC of=DST bs=1M conv=fsync`: until dd's fsync returned (the source is in the page cache). */
  write_s: number;
  /** `dd if=DST of=/dev/null bs=1M` right after: nothing dropped, so from the page cache. */
  read_cached_s: number;
  /** `dd if=DST of=/dev/null bs=1M iflag=direct`: O_DIRECT, from the disk itself. */
  read_direct_s: number;
  /** The untimed `sync -f` before the write, seconds. */
  sync_before_s: number;
}

// Timed inside one bash with $EPOCHREALTIME, so that no process start-up is counted.
const SCRIPT = `
set -e
src=$1; dst=$2
t0=$EPOCHREALTIME; dd if="$src" of="$dst" bs=1M conv=fsync status=none; t1=$EPOCHREALTIME
dd if="$dst" of=/dev/null bs=1M status=none; t2=$EPOCHREALTIME
dd if="$dst" of=/dev/null bs=1M iflag=direct status=none; t3=$EPOCHREALTIME
echo "$t0 $t1 $t2 $t3"
`;

/** Writes `src` to `dst` with dd + fsync, reads it back twice (cached, O_DIRECT), removes it. Throws when a step fails. */
export async function largeReference(src: string, dst: string, timeoutS: number): Promise<LargeReference> {
  const sync_before_s = await syncFs(path.dirname(dst));
  const r = await runCommand('bash', ['-c', SCRIPT, 'bash', src, dst], { timeoutMs: timeoutS * 1000 });
  fs.rmSync(dst, { force: true });
  await syncFs(path.dirname(dst));
  const t = r.stdout.trim().split(/\s+/).map(Number);
  if (r.code !== 0 || t.length !== 4 || t.some((x) => !Number.isFinite(x))) throw new Error(`dd reference failed (exit ${r.code ?? r.signal}): ${r.stderr.trim() || r.stdout.trim()}`);
  const d = (i: number, j: number): number => Math.round(((t[j] ?? 0) - (t[i] ?? 0)) * 1000) / 1000;
  return { write_s: d(0, 1), read_cached_s: d(1, 2), read_direct_s: d(2, 3), sync_before_s: Math.round(sync_before_s * 1000) / 1000 };
}
