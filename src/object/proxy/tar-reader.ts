import { Readable } from 'node:stream';
import { ByteReader } from './byte-reader.js';

/**
 * A streaming reader of tar archives (POSIX ustar, pax and GNU forms), for
 * bulk's extract-archive: entries come one at a time with their data as a
 * stream, and nothing but one 512-byte header (or a pax/GNU name record) is
 * ever held in memory.
 */

/** Raised for anything that is not a well-formed archive; the message is what the client sees. */
export class TarError extends Error {}

/** What the archive says of one member. */
export interface TarEntry {
  /** The member's path (pax `path`, GNU long name or ustar prefix + name), decoded as UTF-8. */
  name: string;
  /** False when the name's bytes are not valid UTF-8 (`name` then holds a lossy decoding). */
  nameIsUtf8: boolean;
  /** `file`, `directory`, `symlink`, `link` or `other`. */
  type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  size: number;
  /** pax extended header records of this member (global ones merged in). */
  pax: Record<string, string>;
  /**
   * The member's data (regular files only; empty for the rest). Read it or
   * leave it: the reader skips whatever is left when asked for the next entry.
   */
  body: Readable;
}

const BLOCK = 512;
/** pax and GNU long-name records are held in memory: cap them. */
const MAX_META_RECORD = 1024 * 1024;
const DATA_READ = 64 * 1024;

function field(block: Buffer, start: number, length: number): Buffer {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return end >= 0 ? raw.subarray(0, end) : raw;
}

/** Numeric header fields: octal text, or GNU's base-256 when the high bit is set. */
function numberField(block: Buffer, start: number, length: number, what: string): number {
  const raw = block.subarray(start, start + length);
  if (raw.length > 0 && ((raw[0] as number) & 0x80) !== 0) {
    let value = (raw[0] as number) & 0x7f;
    for (let i = 1; i < raw.length; i++) value = value * 256 + (raw[i] as number);
    return value;
  }
  const text = field(block, start, length).toString('latin1').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`invalid ${what} field`);
  return Number.parseInt(text, 8);
}

function checksumMatches(block: Buffer): boolean {
  let stored: number;
  try {
    stored = numberField(block, 148, 8, 'checksum');
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

function decodeName(bytes: Buffer): { text: string; utf8: boolean } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), utf8: true };
  } catch {
    return { text: bytes.toString('latin1'), utf8: false };
  }
}

/** Parses pax records (`<len> <key>=<value>\n`). */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break;
    const space = data.indexOf(0x20, at);
    if (space < 0) throw new TarError('invalid header');
    const length = Number.parseInt(data.subarray(at, space).toString('latin1'), 10);
    if (!Number.isInteger(length) || length <= space - at + 1 || at + length > data.length) throw new TarError('invalid header');
    const record = data.subarray(space + 1, at + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals < 0) throw new TarError('invalid header');
    out[record.subarray(0, equals).toString('utf8')] = record.subarray(equals + 1).toString('utf8');
    at += length;
  }
  return out;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The member's type as tar means it (an old-style regular file with a trailing `/` is a directory). */
function memberType(typeflag: string, name: string): TarEntry['type'] {
  switch (typeflag) {
    case '0':
    case '7':
      return 'file';
    case '\0':
      return name.endsWith('/') ? 'directory' : 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'link';
    default:
      return 'other';
  }
}

/** The member's name: pax `path`, else a GNU long name, else the ustar prefix and name. */
function memberName(block: Buffer, longName: Buffer | null, pax: Record<string, string>): { text: string; utf8: boolean } {
  if (pax.path !== undefined) return { text: pax.path, utf8: true };
  if (longName) return decodeName(longName);
  const name = field(block, 0, 100);
  const ustar = block.subarray(257, 263).toString('latin1') === 'ustar\0';
  const prefix = ustar ? field(block, 345, 155) : Buffer.alloc(0);
  return decodeName(prefix.length > 0 ? Buffer.concat([prefix, Buffer.from('/'), name]) : name);
}

/** A member's data as a stream pulled from `reader`, and how much of it (with padding) is still unread. */
function memberBody(reader: ByteReader, size: number, readable: boolean): { body: Readable; unread: () => number } {
  let remaining = size;
  const pad = padding(size);
  if (!readable) return { body: Readable.from([]), unread: () => remaining + pad };
  const body = new Readable({
    highWaterMark: DATA_READ,
    read() {
      if (remaining === 0) {
        this.push(null);
        return;
      }
      reader.readUpTo(Math.min(remaining, DATA_READ), (chunk) => (remaining -= chunk.length)).then(
        (chunk) => {
          if (chunk.length === 0) {
            this.destroy(new TarError('unexpected end of data'));
            return;
          }
          this.push(chunk);
          if (remaining === 0) this.push(null);
        },
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
  // Readers see errors through their own listeners; this one keeps an error after a reader
  // has given up (a PUT that answered early) from going unheard. Truncation is also found by the skip.
  body.on('error', () => undefined);
  return { body, unread: () => remaining + pad };
}

/** The next header block; null at the end of the archive. */
async function readHeader(reader: ByteReader, first: boolean): Promise<Buffer | null> {
  const block = await reader.readExactly(BLOCK);
  if (block.length === 0 || (block.length === BLOCK && block.every((byte) => byte === 0))) {
    if (first) throw new TarError('empty file');
    return null;
  }
  if (block.length < BLOCK) throw new TarError(first ? 'truncated header' : 'unexpected end of data');
  // Python's tarfile, which Swift uses, ends the archive quietly at a damaged header after the first;
  // saying so is better than reporting a partial extraction as a success.
  if (!checksumMatches(block)) throw new TarError('bad checksum');
  return block;
}

/**
 * Reads the archive on `source` entry by entry. Ends at the end-of-archive
 * block (or a clean end of the stream after at least one member); throws
 * `TarError` on a damaged or truncated archive. The source is not read
 * past the end-of-archive block: pass a `ByteReader` to read on afterwards.
 */
export async function* readTar(source: Readable | ByteReader): AsyncGenerator<TarEntry> {
  const reader = source instanceof ByteReader ? source : new ByteReader(source);
  const globalPax: Record<string, string> = {};
  let pendingPax: Record<string, string> = {};
  let longName: Buffer | null = null;
  let first = true;
  let previous: { body: Readable; unread: () => number } | null = null;

  for (;;) {
    if (previous) {
      const { body, unread } = previous;
      body.destroy();
      let wanted = 0;
      // Counted when the skip's turn comes, after any read of the body still under way.
      const skipped = await reader.skip(() => (wanted = unread()));
      if (skipped < wanted) throw new TarError('unexpected end of data');
      previous = null;
    }
    const block = await readHeader(reader, first);
    if (!block) return;
    first = false;
    const typeflag = String.fromCharCode(block[156] as number);
    const declaredSize = numberField(block, 124, 12, 'size');
    const size = pendingPax.size !== undefined && /^\d+$/.test(pendingPax.size) ? Number(pendingPax.size) : declaredSize;

    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META_RECORD) throw new TarError('invalid header');
      const data = await reader.readExactly(size);
      if (data.length < size || (await reader.skip(padding(size))) < padding(size)) throw new TarError('unexpected end of data');
      if (typeflag === 'x') pendingPax = { ...pendingPax, ...parsePax(data) };
      else if (typeflag === 'g') Object.assign(globalPax, parsePax(data));
      else if (typeflag === 'L') longName = field(data, 0, data.length);
      continue;
    }

    const pax = { ...globalPax, ...pendingPax };
    const name = memberName(block, longName, pax);
    pendingPax = {};
    longName = null;
    const type = memberType(typeflag, name.text);
    // Only files (and unknown types) carry data after the header: hard links,
    // devices and directories may declare a size but store nothing.
    const dataSize = type === 'file' || type === 'other' ? size : 0;
    previous = memberBody(reader, dataSize, type === 'file');
    yield { name: name.text, nameIsUtf8: name.utf8, type, size: dataSize, pax, body: previous.body };
  }
}
