import fs from 'node:fs/promises';

/**
 * What inspection reads itself from the start of an image, before and after
 * qemu-img: qemu's probe window, the qcow2 header and the ISO 9660 signature
 * all lie within the first 0x8006 bytes.
 */
export const HEAD_BYTES = 0x8006;

/** qemu probes formats on this many leading bytes (BLOCK_PROBE_BUF_SIZE). */
const QEMU_PROBE_BYTES = 2048;

/** "CD001" follows the type byte of the volume descriptor in sector 16 (2048-byte sectors). */
const ISO_SIGNATURE_OFFSET = 0x8001;
const ISO_SIGNATURE = 'CD001';

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
const QCOW2_INCOMPATIBLE_FEATURES_OFFSET = 72;
const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;

const SECTOR_BYTES = 512;
const VMDK_EXTENT_LINE = /^(?:RW|RDONLY|NOACCESS)\s+(\d+)\s+\S+\s+"([^"\r\n]*)"/gm;
const VMDK_PARENT_HINT = /^parentFileNameHint\s*=\s*"([^"\r\n]*)"/m;

/** What a VMDK text descriptor says, read without opening any file it names. */
export interface VmdkDescriptor {
  /** Sum of the extents' sizes in bytes. */
  virtualSize: number;
  /** The files named by the extent lines, in order. */
  extentFiles: string[];
  /** `parentFileNameHint`, the VMDK spelling of a backing file. */
  parentFile: string | null;
}

/**
 * Reads the first HEAD_BYTES of a file (fewer when the file is shorter).
 * Rejects with the fs error when the file cannot be opened.
 */
export async function readImageHead(file: string): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    let filled = 0;
    while (filled < HEAD_BYTES) {
      const { bytesRead } = await handle.read(buffer, filled, HEAD_BYTES - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/** True when sector 16 carries the ISO 9660 volume descriptor signature. */
export function hasIsoSignature(head: Buffer): boolean {
  return head.subarray(ISO_SIGNATURE_OFFSET, ISO_SIGNATURE_OFFSET + ISO_SIGNATURE.length).toString('latin1') === ISO_SIGNATURE;
}

/** True for a qcow2 (version 3 and later) whose header sets the "external data file" feature bit. */
export function hasQcow2DataFile(head: Buffer): boolean {
  if (head.length < QCOW2_INCOMPATIBLE_FEATURES_OFFSET + 8) return false;
  if (head.readUInt32BE(0) !== QCOW2_MAGIC || head.readUInt32BE(4) < 3) return false;
  return (head.readBigUInt64BE(QCOW2_INCOMPATIBLE_FEATURES_OFFSET) & QCOW2_INCOMPAT_DATA_FILE) !== 0n;
}

/**
 * True when qemu's probe would take the file for a VMDK text descriptor
 * (block/vmdk.c, vmdk_probe): past comment lines and lines of spaces, the
 * first line is exactly `version=1`, `2` or `3`. qemu opens every extent file
 * such a descriptor names, even for `info`, so these never reach qemu-img.
 */
export function isVmdkDescriptor(head: Buffer): boolean {
  const lines = head.subarray(0, QEMU_PROBE_BYTES).toString('latin1').split('\n');
  lines.pop(); // qemu wants a newline after version=N; the last piece has none
  for (const line of lines) {
    if (line.startsWith('#') || /^ +\r?$/.test(line)) continue;
    return /^version=[123]\r?$/.test(line);
  }
  return false;
}

/** Reads the extents and parent of a VMDK text descriptor from its text alone. */
export function parseVmdkDescriptor(head: Buffer): VmdkDescriptor {
  const text = head.toString('utf8');
  let virtualSize = 0;
  const extentFiles: string[] = [];
  for (const [, sectors = '0', file = ''] of text.matchAll(VMDK_EXTENT_LINE)) {
    virtualSize += Number(sectors) * SECTOR_BYTES;
    extentFiles.push(file);
  }
  return { virtualSize, extentFiles, parentFile: VMDK_PARENT_HINT.exec(text)?.[1] ?? null };
}
