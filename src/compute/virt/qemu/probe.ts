import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import type { Accel } from './command-line.js';
import { exists } from '../../../core/host-commands.js';

/**
 * Whether guests run under KVM or TCG. `/dev/kvm` opening is not enough
 * (on some hosts a Linux guest hangs under KVM right after its boot
 * loader), so under `auto` a tiny guest (the probe kernel and initramfs,
 * whose init prints `stratus-probe: ok`) must boot under KVM within the
 * deadline; otherwise TCG.
 */

/** The decision and why. */
export interface AccelDecision {
  accel: Accel;
  reason: string;
}

/** The marker the probe guest prints on its serial console. */
export const PROBE_MARKER = 'stratus-probe: ok';

/** Decides the accelerator for `accel` (`auto`, `kvm` or `tcg`); never throws. */
export async function decideAccel(options: { binary: string; accel: string; probe?: { kernel: string; initrd: string }; timeoutSeconds: number }): Promise<AccelDecision> {
  if (options.accel === 'tcg') return { accel: 'tcg', reason: 'configured (compute.qemu.accel = tcg)' };
  if (options.accel === 'kvm') return { accel: 'kvm', reason: 'configured (compute.qemu.accel = kvm)' };
  const kvm = await fs.open('/dev/kvm', 'r+').then(
    async (handle) => {
      await handle.close();
      return null;
    },
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  if (kvm !== null) return { accel: 'tcg', reason: `/dev/kvm cannot be opened (${kvm})` };
  const probe = options.probe;
  if (!probe || !(await exists(probe.kernel)) || !(await exists(probe.initrd))) return { accel: 'tcg', reason: `no probe guest to test KVM with (${probe ? `${probe.kernel} or ${probe.initrd} missing` : 'none configured'})` };
  const started = Date.now();
  const ok = await bootProbe(options.binary, probe, options.timeoutSeconds * 1000);
  const ms = Date.now() - started;
  return ok === true
    ? { accel: 'kvm', reason: `the probe guest booted under KVM in ${ms} ms` }
    : { accel: 'tcg', reason: `the probe guest did not boot under KVM (${ok}); guests run under TCG` };
}

/** Boots the probe under KVM; true when its marker came in time, else why not. */
function bootProbe(binary: string, probe: { kernel: string; initrd: string }, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const child = spawn(
      binary,
      ['-machine', 'pc', '-accel', 'kvm', '-cpu', 'host', '-m', '128', '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot', '-kernel', probe.kernel, '-initrd', probe.initrd, '-append', 'console=ttyS0 panic=-1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    let stderr = '';
    let settled = false;
    const finish = (result: true | string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve(result);
    };
    const timer = setTimeout(() => finish(`no '${PROBE_MARKER}' within ${timeoutMs} ms`), timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      output = (output + chunk).slice(-4096);
      if (output.includes(PROBE_MARKER)) finish(true);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-1024);
    });
    child.on('error', (err) => finish(err.message));
    child.on('exit', (code) => finish(`qemu exited with ${code ?? 'a signal'}${stderr.trim() ? `: ${stderr.trim().split('\n')[0] ?? ''}` : ''}`));
  });
}
