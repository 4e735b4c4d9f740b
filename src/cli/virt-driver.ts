import { spawnSync } from 'node:child_process';
import { ensurePackages } from './packages.js';
import { ConfigError, type StratusConfig } from '../core/config.js';

/** True when `cmd` runs from PATH (or is an executable path). */
function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

/** The Debian packages the qemu driver runs with: the emulator, qemu-img, and genisoimage for config drives. */
function qemuPackages(config: StratusConfig): [string, string][] {
  return [
    [config.compute.qemu.binary, 'qemu-system-x86'],
    ['qemu-img', 'qemu-utils'],
    ['genisoimage', 'genisoimage'],
  ];
}

/**
 * Settles `compute.virt_driver` before the agents start: `qemu` and `fake`
 * stay; `auto` (the default) becomes `qemu` when QEMU is there (installed
 * first when running as root) and `fake` otherwise, which `say` tells.
 * `qemu` without QEMU, and an unknown driver, are configuration errors.
 */
export function resolveVirtDriver(config: StratusConfig, say: (line: string) => void): 'fake' | 'qemu' {
  const wanted = config.compute.virt_driver;
  if (wanted === 'fake') return 'fake';
  if (wanted !== 'qemu' && wanted !== 'auto') throw new ConfigError(`compute.virt_driver '${wanted}' is unknown (use auto, qemu or fake)`);
  try {
    ensurePackages(qemuPackages(config), say);
  } catch (err) {
    if (wanted === 'qemu') throw new ConfigError(`compute.virt_driver qemu: ${(err as Error).message}`);
  }
  const ready = qemuPackages(config).every(([cmd]) => have(cmd));
  if (!ready) {
    if (wanted === 'qemu') throw new ConfigError(`compute.virt_driver qemu: ${qemuPackages(config).filter(([cmd]) => !have(cmd)).map(([cmd]) => cmd).join(', ')} not found`);
    say('warning: QEMU is not installed: compute runs the fake virt driver (servers get no real VMs); install qemu-system-x86 or run as root');
    config.compute.virt_driver = 'fake';
    return 'fake';
  }
  config.compute.virt_driver = 'qemu';
  return 'qemu';
}
