import { execFile, type ChildProcess } from 'node:child_process';

/** What `qemu-img info --output=json` tells of an image. */
export interface QemuImageInfo {
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'format-specific'?: { type?: string; data?: Record<string, unknown> };
}

/**
 * Runs `qemu-img` (never through a shell) and remembers the running
 * processes, so that a stop (a crash of the agent) can end them.
 */
export class QemuImg {
  private readonly children = new Set<ChildProcess>();

  constructor(readonly binary: string) {}

  /** Runs `qemu-img <args>`; resolves with stdout; rejects with stderr's first lines. */
  run(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile(this.binary, args, { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
        this.children.delete(child);
        if (err) {
          const detail = String(stderr || err.message).trim().split('\n').slice(0, 3).join(' ');
          reject(new Error(`qemu-img ${args[0] ?? ''} failed: ${detail}`));
          return;
        }
        resolve(String(stdout));
      });
      this.children.add(child);
    });
  }

  /** `qemu-img info`, sharing the image with a process that has it open (`-U`); `format` skips probing. */
  async info(file: string, format?: string): Promise<QemuImageInfo> {
    const out = await this.run(['info', '--output=json', '-U', ...(format ? ['-f', format] : []), file]);
    return JSON.parse(out) as QemuImageInfo;
  }

  /** Creates an empty image of `bytes`. */
  async create(file: string, format: string, bytes: number): Promise<void> {
    await this.run(['create', '-q', '-f', format, file, String(bytes)]);
  }

  /**
   * Copies `from` (of `fromFormat`) into a new image `to` of `toFormat`,
   * skipping zeroes; `share: false` for a source that is not a local file
   * (an `nbd://` URL), which takes no image lock.
   */
  async convert(from: string, fromFormat: string, to: string, toFormat: string, options: { share?: boolean } = {}): Promise<void> {
    await this.run(['convert', ...(options.share === false ? [] : ['-U']), '-W', '-f', fromFormat, '-O', toFormat, from, to]);
  }

  /** Sets the virtual size of a qcow2 image (grow only). */
  async resize(file: string, format: string, bytes: number): Promise<void> {
    await this.run(['resize', '-q', '-f', format, file, String(bytes)]);
  }

  /** Ends every running qemu-img (a stop in the middle of work, as a crash). */
  killAll(): void {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
  }
}

/** True when `binary --version` runs. */
export function qemuImgWorks(binary: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(binary, ['--version'], { timeout: 10_000 }, (err) => resolve(!err));
  });
}

/** The qemu-img format name of an image API `disk_format` (null when qemu-img has none). */
export function qemuFormatOf(diskFormat: string): string | null {
  switch (diskFormat) {
    case 'raw':
    case 'iso':
    case 'ami':
    case 'ari':
    case 'aki':
      return 'raw';
    case 'qcow2':
    case 'vmdk':
    case 'vdi':
    case 'vhdx':
      return diskFormat;
    case 'vhd':
      return 'vpc';
    default:
      return null;
  }
}
