import { execFile, type ExecFileException } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { hasIsoSignature, hasQcow2DataFile, isVmdkDescriptor, parseVmdkDescriptor, readImageHead } from './image-header.js';

/** What the image data really is, as qemu-img (and the ISO signature) says. */
export interface FormatInfo {
  /** qemu's format name (raw, qcow2, vmdk, vpc, vhdx, vdi, parallels, qed, luks, dmg, ...), or `iso`. */
  format: string;
  /** Size of the disk the image describes, in bytes; null when qemu does not say. */
  virtualSize: number | null;
  /** The backing file named in the image's header; never opened. */
  backingFile: string | null;
  /** A file outside the image that holds its data: a qcow2 external data file or a VMDK extent. */
  dataFile: string | null;
  /** True when the data needs a key to be read. */
  encrypted: boolean;
}

/** Options for running qemu-img. */
export interface QemuImgOptions {
  /** The qemu-img executable; default `qemu-img` from PATH. */
  qemuImg?: string;
  /** How long qemu-img may run before it is killed. */
  timeoutMs?: number;
}

/**
 * Why qemu-img could not inspect or convert image data:
 * `invalid`: qemu refused the data (the user's image is bad: a 400);
 * `timeout`: qemu-img did not finish in time (a crafted image or a busy host);
 * `unavailable`: qemu-img cannot be run;
 * `failed`: anything else (unreadable output, a failed conversion: a 500).
 */
export type FormatInspectionErrorKind = 'invalid' | 'timeout' | 'unavailable' | 'failed';

/**
 * qemu-img failed on image data. `message` is fit for a user (the server's
 * path is masked); `detail` is qemu's own stderr, for logs.
 */
export class FormatInspectionError extends Error {
  constructor(
    readonly kind: FormatInspectionErrorKind,
    message: string,
    readonly detail = '',
  ) {
    super(message);
    this.name = 'FormatInspectionError';
  }
}

const DEFAULT_INSPECT_TIMEOUT_MS = 30_000;
const DEFAULT_CONVERT_TIMEOUT_MS = 60 * 60_000;
const AVAILABILITY_TIMEOUT_MS = 10_000;
/** qemu-img info's JSON is a few KiB, even for a VMDK with many extents. */
const MAX_OUTPUT_BYTES = 1024 * 1024;

/**
 * Glance's disk formats and the qemu formats their data may have. raw accepts
 * an ISO, which is raw bytes; iso demands the signature.
 */
const ACCEPTED_FORMATS: ReadonlyMap<string, readonly string[]> = new Map([
  ['ami', ['raw']],
  ['ari', ['raw']],
  ['aki', ['raw']],
  ['raw', ['raw', 'iso']],
  ['iso', ['iso']],
  ['qcow2', ['qcow2']],
  ['vmdk', ['vmdk']],
  ['vhd', ['vpc']],
  ['vhdx', ['vhdx']],
  ['vdi', ['vdi']],
  ['ploop', ['parallels']],
]);

/** Formats that are themselves the encryption container, for which being encrypted is the point. */
const ENCRYPTION_CONTAINERS: ReadonlySet<string> = new Set(['luks']);

/**
 * Finds out what format a file really has with `qemu-img info --output=json -U`,
 * letting qemu probe (no `-f`). Reads only the image itself: qemu-img info does
 * not open backing files, a qcow2 external data file is replaced by a null
 * device for qemu versions that would open it, and a VMDK text descriptor
 * (whose extents qemu would open) is read here instead of by qemu. Raw data
 * with an ISO 9660 signature is reported as `iso`. Read-only; rejects with a
 * FormatInspectionError when qemu-img fails or times out (default 30 s), and
 * with the fs error when the file cannot be opened.
 */
export async function inspectImage(file: string, options: QemuImgOptions = {}): Promise<FormatInfo> {
  // An absolute path can be neither an option nor a qemu protocol (`nbd:`, `json:`).
  const absolute = path.resolve(file);
  const head = await readImageHead(absolute);
  if (isVmdkDescriptor(head)) return describeVmdkDescriptor(head);
  const stdout = await runQemuImg(['info', '--output=json', '-U', ...infoTarget(absolute, head)], {
    qemuImg: options.qemuImg ?? 'qemu-img',
    timeoutMs: options.timeoutMs ?? DEFAULT_INSPECT_TIMEOUT_MS,
    file: absolute,
    action: 'info',
  });
  const info = parseQemuInfo(stdout, absolute);
  return info.format === 'raw' && hasIsoSignature(head) ? { ...info, format: 'iso' } : info;
}

/**
 * Says whether image data may be stored under the Glance `disk_format` the
 * user declared: null when it may, else a message for a 400. Refuses a format
 * mismatch, any backing file, any external data file, and encrypted data
 * (unless the format is the encryption container itself).
 */
export function checkDiskFormat(declared: string, info: FormatInfo): string | null {
  const accepted = ACCEPTED_FORMATS.get(declared);
  if (accepted === undefined) {
    return `Image disk_format '${declared}' is not supported; use one of ${[...ACCEPTED_FORMATS.keys()].join(', ')}`;
  }
  if (!accepted.includes(info.format)) {
    return `Image disk_format '${declared}' does not match the data, which is '${info.format}'`;
  }
  return safetyProblem(info);
}

/**
 * Converts image data to raw or qcow2 with `qemu-img convert -f <detected>`,
 * for the conversion step of import. Inspects the source first and refuses
 * (kind `invalid`, nothing written) data that has a backing file, an external
 * data file or encryption, because converting would copy those other files'
 * contents into the target. Overwrites `target`; removes it when the
 * conversion fails or times out (default 1 hour).
 */
export async function convertImage(source: string, target: string, toFormat: 'raw' | 'qcow2', options: QemuImgOptions = {}): Promise<void> {
  const from = path.resolve(source);
  const to = path.resolve(target);
  if (from === to) throw new FormatInspectionError('failed', 'An image cannot be converted onto itself');
  const qemuImg = options.qemuImg ?? 'qemu-img';
  const info = await inspectImage(from, { qemuImg });
  const problem = safetyProblem(info);
  if (problem !== null) throw new FormatInspectionError('invalid', problem);
  const sourceFormat = info.format === 'iso' ? 'raw' : info.format;
  try {
    await runQemuImg(['convert', '-U', '-f', sourceFormat, '-O', toFormat, from, to], {
      qemuImg,
      timeoutMs: options.timeoutMs ?? DEFAULT_CONVERT_TIMEOUT_MS,
      file: from,
      action: 'convert',
    });
  } catch (err) {
    await fs.rm(to, { force: true });
    throw err;
  }
}

/** True when `qemu-img --version` runs; never rejects. */
export async function qemuImgAvailable(qemuImg = 'qemu-img'): Promise<boolean> {
  try {
    await runQemuImg(['--version'], { qemuImg, timeoutMs: AVAILABILITY_TIMEOUT_MS, file: '', action: 'version' });
    return true;
  } catch {
    return false;
  }
}

/** Why data that is in the declared format still may not be stored or converted. */
function safetyProblem(info: FormatInfo): string | null {
  if (info.backingFile !== null) {
    return `Image data (${info.format}) has a backing file '${info.backingFile}', which is not allowed`;
  }
  if (info.dataFile !== null) {
    return `Image data (${info.format}) has an external data file '${info.dataFile}', which is not allowed`;
  }
  if (info.encrypted && !ENCRYPTION_CONTAINERS.has(info.format)) {
    return `Image data (${info.format}) is encrypted, which is not allowed`;
  }
  return null;
}

/** The arguments naming the image for `qemu-img info`. */
function infoTarget(file: string, head: Buffer): string[] {
  if (!hasQcow2DataFile(head)) return [file];
  // qemu before the CVE-2024-4467 fix opens the data file even for info; a
  // null-co stand-in keeps it closed, and qemu still reports the header's name.
  return ['--image-opts', `driver=qcow2,file.driver=file,file.filename=${file.replaceAll(',', ',,')},data-file.driver=null-co`];
}

/** A text descriptor holds no data: its extents, files of their own, do. */
function describeVmdkDescriptor(head: Buffer): FormatInfo {
  const descriptor = parseVmdkDescriptor(head);
  const [firstExtent] = descriptor.extentFiles;
  if (firstExtent === undefined) {
    throw new FormatInspectionError('invalid', 'Image data is a VMDK descriptor without extents');
  }
  return { format: 'vmdk', virtualSize: descriptor.virtualSize, backingFile: descriptor.parentFile, dataFile: firstExtent, encrypted: false };
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Maps qemu-img info's JSON (`virtual-size`, `backing-filename`, `format-specific.data`) onto FormatInfo. */
function parseQemuInfo(stdout: string, file: string): FormatInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new FormatInspectionError('failed', 'qemu-img info printed no JSON', stdout.slice(0, 1000));
  }
  if (!isObject(parsed) || typeof parsed.format !== 'string') {
    throw new FormatInspectionError('failed', 'qemu-img info printed no format', stdout.slice(0, 1000));
  }
  const specific = isObject(parsed['format-specific']) ? parsed['format-specific'] : {};
  const data = isObject(specific.data) ? specific.data : {};
  const virtualSize = parsed['virtual-size'];
  return {
    format: parsed.format,
    virtualSize: typeof virtualSize === 'number' ? virtualSize : null,
    backingFile: stringOrNull(parsed['backing-filename']) ?? stringOrNull(parsed['full-backing-filename']),
    dataFile: stringOrNull(data['data-file']) ?? foreignExtent(data, file),
    encrypted: parsed.encrypted === true,
  };
}

/** The first VMDK extent that is not the image itself (sparse VMDKs list themselves). */
function foreignExtent(data: JsonObject, file: string): string | null {
  if (!Array.isArray(data.extents)) return null;
  for (const extent of data.extents) {
    const name = isObject(extent) ? stringOrNull(extent.filename) : null;
    if (name !== null && name !== file) return name;
  }
  return null;
}

/**
 * What a non-zero exit of each qemu-img subcommand means: info refuses the
 * user's data; convert can also fail on our side (a full disk), so it is ours.
 */
const EXIT_FAILURES = {
  info: { kind: 'invalid', prefix: 'Image data could not be read' },
  convert: { kind: 'failed', prefix: 'Image conversion failed' },
  version: { kind: 'failed', prefix: 'qemu-img failed' },
} as const satisfies Record<string, { kind: FormatInspectionErrorKind; prefix: string }>;

interface RunOptions {
  qemuImg: string;
  timeoutMs: number;
  /** The image's path, masked in user-facing messages. */
  file: string;
  action: keyof typeof EXIT_FAILURES;
}

/** Runs qemu-img without a shell, bounded in time and output; resolves with its stdout. */
function runQemuImg(args: string[], options: RunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      options.qemuImg,
      args,
      { encoding: 'utf8', timeout: options.timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES },
      (error, stdout, stderr) => {
        if (error === null) resolve(stdout);
        else reject(toInspectionError(error, stderr, options));
      },
    );
  });
}

function toInspectionError(error: ExecFileException, stderr: string, options: RunOptions): FormatInspectionError {
  const detail = stderr.trim();
  if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
    return new FormatInspectionError('failed', `qemu-img wrote more than ${MAX_OUTPUT_BYTES} bytes of output`, detail);
  }
  if (typeof error.code === 'string') {
    return new FormatInspectionError('unavailable', `qemu-img could not be run (${error.code})`, detail);
  }
  if (error.killed === true) {
    return new FormatInspectionError('timeout', `qemu-img did not finish within ${options.timeoutMs} ms`, detail);
  }
  const { kind, prefix } = EXIT_FAILURES[options.action];
  const reason = detail === '' ? `qemu-img ended with ${error.signal ?? `status ${String(error.code)}`}` : userMessage(detail, options.file);
  return new FormatInspectionError(kind, `${prefix}: ${reason}`, detail);
}

/** qemu's stderr without its program prefix and with the server's path masked. */
function userMessage(stderr: string, file: string): string {
  const lines = stderr.split('\n').map((line) => line.replace(/^qemu-img: /, '').trim());
  const text = lines.filter((line) => line !== '').join('; ');
  return file === '' ? text : text.replaceAll(file, '<image>');
}
