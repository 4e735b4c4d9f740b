import fs from 'node:fs/promises';
import os from 'node:os';
import type { HostResources } from '../driver.js';
import type { Accel } from './command-line.js';
import { run } from '../../../core/host-commands.js';

/** The real host, as the qemu driver reports it to placement and `hypervisor show`. */

/** Nova's integer form of a version: 7.2.22 is 7002022. */
export function versionNumber(text: string): number {
  const match = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) return 0;
  return Number(match[1]) * 1_000_000 + Number(match[2]) * 1000 + Number(match[3] ?? 0);
}

const versions = new Map<string, Promise<number>>();

/** The emulator's version (`qemu-system-x86_64 --version`) as Nova encodes it, read once; 0 when it cannot be read. */
export function qemuVersion(binary: string): Promise<number> {
  let version = versions.get(binary);
  if (!version) {
    version = run(binary, ['--version']).then(versionNumber, () => 0);
    versions.set(binary, version);
  }
  return version;
}

/** What the driver supports, as placement traits. */
const TRAITS = [
  'COMPUTE_NET_ATTACH_INTERFACE',
  'COMPUTE_VOLUME_ATTACH',
  'COMPUTE_VOLUME_EXTEND',
  'COMPUTE_IMAGE_TYPE_QCOW2',
  'COMPUTE_IMAGE_TYPE_RAW',
  'COMPUTE_IMAGE_TYPE_VMDK',
  'COMPUTE_IMAGE_TYPE_VHD',
  'COMPUTE_NET_VIF_MODEL_VIRTIO',
  'COMPUTE_STORAGE_BUS_VIRTIO',
  'COMPUTE_STORAGE_BUS_IDE',
  'COMPUTE_GRAPHICS_MODEL_VGA',
  'COMPUTE_RESCUE_BFV',
];

async function cpuModel(): Promise<{ model: string; vendor: string; flags: string[] }> {
  const text = await fs.readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const field = (name: string): string => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { model: field('model name') || (os.cpus()[0]?.model ?? 'unknown'), vendor: field('vendor_id') || 'unknown', flags: field('flags').split(/\s+/).filter(Boolean) };
}

/** The host's CPUs, memory and the disk of `instancesPath`, with the accelerator in use. */
export async function hostResources(options: { host: string; hostIp: string; binary: string; instancesPath: string; accel: Accel; accelReason: string }): Promise<HostResources> {
  const fsStat = await fs.statfs(options.instancesPath);
  const cpu = await cpuModel();
  const vcpus = os.cpus().length;
  return {
    hypervisorHostname: options.host,
    hypervisorType: options.accel === 'kvm' ? 'KVM' : 'QEMU',
    hypervisorVersion: await qemuVersion(options.binary),
    hostIp: options.hostIp,
    vcpus,
    memoryMb: Math.floor(os.totalmem() / 1024 ** 2),
    localGb: Math.floor((fsStat.blocks * fsStat.bsize) / 1024 ** 3),
    cpuInfo: {
      arch: os.arch() === 'x64' ? 'x86_64' : os.arch(),
      model: cpu.model,
      vendor: cpu.vendor,
      topology: { sockets: 1, cores: vcpus, threads: 1 },
      features: cpu.flags,
      accel: options.accel,
      accel_reason: options.accelReason,
    },
    traits: TRAITS,
  };
}
