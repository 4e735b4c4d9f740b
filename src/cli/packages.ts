import { spawnSync } from 'node:child_process';

function have(cmd: string): boolean {
  // The command as an argument, not shell text: a configured path (image.qemu_img) may hold anything.
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

/**
 * Installs missing Debian packages that commands need (`[command, package]`
 * pairs), with apt-get when running as root; otherwise throws with the
 * command to run.
 */
export function ensurePackages(needed: [string, string][], say: (line: string) => void): void {
  const missing = [...new Set(needed.filter(([cmd]) => !have(cmd)).flatMap(([, pkgs]) => pkgs.split(' ')))];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing packages ${missing.join(' ')}: install them (apt-get install -y ${missing.join(' ')}) or run as root`);
  say(`installing ${missing.join(' ')} (apt-get)...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'inherit' }).status !== 0) throw new Error('apt-get update failed');
  if (spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { env, stdio: 'inherit' }).status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed`);
}
