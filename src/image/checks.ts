import { BadRequest } from '../core/errors.js';
import { checkDiskFormat, inspectImage } from './formats/inspect.js';
import type { ImageService } from './image.js';

/**
 * Checks stored data against the image's declared `disk_format` with
 * `qemu-img info` (a qcow2 that claims to be raw, a backing file, ... are
 * refused with 400) and returns its virtual size. Only bare containers are
 * checked: other containers (ova, docker, ...) wrap the disk.
 */
export async function checkData(images: ImageService, file: string, diskFormat: string | null, containerFormat: string | null): Promise<number | null> {
  if (containerFormat !== null && containerFormat !== 'bare') return null;
  const info = await inspectImage(file, { qemuImg: images.config.image.qemu_img });
  if (diskFormat) {
    const problem = checkDiskFormat(diskFormat, info);
    if (problem) throw new BadRequest(problem);
  }
  return info.virtualSize;
}
