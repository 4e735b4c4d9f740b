import path from 'node:path';
import { rootLogger } from '../../../core/logging.js';
import { ensureTestImage } from '../../test-image.js';

/**
 * The test guest image for tests that boot real guests:
 * `STRATUS_TEST_IMAGE` when set, else built by `images/build-test-image.sh`
 * once per recipe into the machine's cache (`ensureTestImage`).
 */

export interface TestImage {
  image: string;
  probe: { kernel: string; initrd: string };
}

/** The image and the probe files beside it (`probe-vmlinuz`, `probe-initrd`). */
export async function testImage(): Promise<TestImage> {
  const given = process.env.STRATUS_TEST_IMAGE;
  if (given) {
    const dir = path.dirname(path.resolve(given));
    return { image: path.resolve(given), probe: { kernel: path.join(dir, 'probe-vmlinuz'), initrd: path.join(dir, 'probe-initrd') } };
  }
  // The cache `stratus up` uses too: one build per recipe and machine.
  const files = await ensureTestImage(rootLogger());
  return { image: files.image, probe: { kernel: files.probeKernel, initrd: files.probeInitrd } };
}
