import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';

/**
 * The host commands the host-side drivers run (qemu-img, mkswap, mkfs.vfat,
 * genisoimage, qemu, ip, dnsmasq, iptables) and what they ask of /proc. Always argument
 * arrays, never a shell.
 */

/** Runs `binary args` (with `input` on its stdin); resolves with stdout, rejects with the first lines of stderr. */
export function run(binary: string, args: string[], options: { timeoutMs?: number; detached?: boolean; input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary,
      args,
      { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' }, timeout: options.timeoutMs ?? 0, ...(options.detached ? { detached: true } : {}) },
      (err, stdout, stderr) => {
        if (err) {
          const detail = String(stderr || err.message).trim().split('\n').slice(0, 4).join(' ');
          reject(new Error(`${binary} ${args[0] ?? ''} failed: ${detail}`));
          return;
        }
        resolve(String(stdout));
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** The pid in a pid file, or null when there is none. */
export async function readPid(file: string): Promise<number | null> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * True when `pid` is a live process whose command line holds `marker` (a
 * recycled pid, or a zombie with its command line gone, is not).
 */
export async function processAlive(pid: number, marker: string): Promise<boolean> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.split('\0').some((arg) => arg.includes(marker))) return false;
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== '' && state !== 'Z' && state !== 'X';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the process is gone; false when it still runs after `timeoutMs`. */
export async function waitForExit(pid: number, marker: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    if (!(await processAlive(pid, marker))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
  }
}

/** Sends SIGKILL to the process if it is still the one named by `marker`, and waits for it to go. */
export async function killProcess(pid: number, marker: string): Promise<void> {
  if (!(await processAlive(pid, marker))) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitForExit(pid, marker, 10_000);
}

/** True when the path exists. */
export async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
