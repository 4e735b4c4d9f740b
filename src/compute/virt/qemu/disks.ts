import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { GuestSpec } from '../driver.js';
import { metadataFiles, type MetadataOptions } from '../../metadata/content.js';
import type { BaseImage } from './guest-record.js';
import { run } from '../../../core/host-commands.js';

/**
 * A guest's local disks: the root overlay on its cached base, the
 * ephemeral and swap disks of its flavor, the config drive.
 */

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** The binaries the disks are made with. */
export interface DiskTools {
  qemuImg: string;
}

/** The size of a root disk: the flavor's root_gb, or the image's own size when that is 0 (or larger). */
export function rootSize(rootGb: number, base: BaseImage): number {
  return Math.max(rootGb * GiB, base.virtualSize);
}

/** Creates `file` as a qcow2 overlay on `base` of `bytes`. */
export async function createOverlay(tools: DiskTools, file: string, base: BaseImage, bytes: number): Promise<void> {
  await run(tools.qemuImg, ['create', '-q', '-f', 'qcow2', '-F', base.format, '-b', base.path, file, String(bytes)]);
}

/** Grows a qcow2 overlay to `bytes`; a disk is never shrunk (that would lose data), so a smaller size leaves it as it is. */
export async function growOverlay(tools: DiskTools, file: string, bytes: number): Promise<void> {
  const info = JSON.parse(await run(tools.qemuImg, ['info', '--output=json', '-U', '-f', 'qcow2', file])) as { 'virtual-size': number };
  if (bytes > info['virtual-size']) await run(tools.qemuImg, ['resize', '-q', '-f', 'qcow2', file, String(bytes)]);
}

/** Creates the ephemeral disk: a sparse raw file of `gb` with a vfat file system labelled `ephemeral0` (Nova's label). */
export async function createEphemeral(file: string, gb: number): Promise<void> {
  await fs.rm(file, { force: true });
  const handle = await fs.open(file, 'w', 0o644);
  await handle.truncate(gb * GiB);
  await handle.close();
  await run('mkfs.vfat', ['-n', 'EPHEMERAL0', file]);
}

/** Creates the swap disk: a raw file of `mb` with a swap signature. */
export async function createSwap(file: string, mb: number): Promise<void> {
  await fs.rm(file, { force: true });
  const handle = await fs.open(file, 'w', 0o644);
  await handle.truncate(mb * MiB);
  await handle.close();
  await run('mkswap', ['-q', file]).catch(() => run('mkswap', [file]));
}

/**
 * Writes the config drive: an ISO 9660 image labelled `config-2` with the
 * OpenStack and EC2 metadata trees (`openstack/latest/meta_data.json`, ...).
 * Made in a temporary directory, removed afterwards.
 */
export async function createConfigDrive(file: string, spec: GuestSpec, options: MetadataOptions): Promise<void> {
  const tree = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-config-drive-'));
  try {
    for (const [name, data] of metadataFiles(spec.metadataInfo, options)) {
      const target = path.join(tree, name);
      if (!target.startsWith(tree + path.sep)) throw new Error(`config drive path ${name} leaves the drive`);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, data);
    }
    await fs.rm(file, { force: true });
    await run('genisoimage', ['-o', file, '-ldots', '-allow-lowercase', '-allow-multidot', '-l', '-publisher', 'Stratus Compute', '-V', 'config-2', '-J', '-r', '-quiet', tree]);
  } finally {
    await fs.rm(tree, { recursive: true, force: true });
  }
}
