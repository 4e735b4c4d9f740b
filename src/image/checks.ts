import fsp from 'node:fs/promises';
import { BadRequest } from '../core/errors.js';
import { checkDiskFormat, FormatInspectionError, inspectImage, type FormatInfo } from './formats/inspect.js';
import type { ImageService } from './image.js';

/**
 * Checks stored data against the image's declared `disk_format` with
 * `qemu-img info` (a qcow2 that claims to be raw, a backing file, ... are
 * refused with 400) and returns its virtual size. Only bare containers are
 * checked: other containers (ova, docker, ...) wrap the disk.
 */
export async function checkData(images: ImageService, file: string, diskFormat: string | null, containerFormat: string | null): Promise<number | null> {
  if (containerFormat !== null && containerFormat !== 'bare') return null;
  let info: FormatInfo;
  try {
    info = await inspectImage(file, { qemuImg: images.config.image.qemu_img });
  } catch (err) {
    // Data qemu cannot make sense of is the caller's problem; qemu-img missing or crashing is ours.
    if (err instanceof FormatInspectionError && (err.kind === 'invalid' || err.kind === 'timeout')) throw new BadRequest(`Image data is not valid ${diskFormat ?? 'disk'} data: ${err.message}`);
    if (err instanceof FormatInspectionError) images.log.error({ err, detail: err.detail }, 'qemu-img failed');
    throw err;
  }
  if (diskFormat) {
    const problem = checkDiskFormat(diskFormat, info);
    if (problem) throw new BadRequest(problem);
  }
  // qemu rounds raw data up to whole sectors; Glance's raw inspector counts the bytes.
  if (info.format === 'raw') return (await fsp.stat(file)).size;
  return info.virtualSize;
}
