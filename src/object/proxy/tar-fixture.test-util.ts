/**
 * Builds tar archives in memory for tests of the tar reader and of bulk's
 * extract-archive: ustar members, pax records and GNU long names.
 */

/** One member of a test archive. */
export interface FixtureMember {
  name: string;
  data?: Buffer | string;
  /** `0` file (default), `5` directory, `2` symlink, `1` hard link. */
  type?: '0' | '5' | '2' | '1';
  /** pax records written in an `x` header before the member. */
  pax?: Record<string, string>;
  /** Write a name over 100 bytes as a GNU `L` record instead of pax. */
  gnuLongName?: boolean;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: Buffer, size: number, type: string, prefix = Buffer.alloc(0)): Buffer {
  const block = Buffer.alloc(512);
  name.copy(block, 0, 0, Math.min(100, name.length));
  block.write(octal(0o644, 8), 100, 'latin1');
  block.write(octal(0, 8), 108, 'latin1');
  block.write(octal(0, 8), 116, 'latin1');
  block.write(octal(size, 12), 124, 'latin1');
  block.write(octal(1700000000, 12), 136, 'latin1');
  block.write('        ', 148, 'latin1');
  block.write(type, 156, 'latin1');
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');
  prefix.copy(block, 345, 0, Math.min(155, prefix.length));
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function padded(data: Buffer): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

/** pax records `<len> <key>=<value>\n`, the length counting itself. */
export function paxRecords(records: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
    parts.push(Buffer.from(`${length}${body}`, 'utf8'));
  }
  return Buffer.concat(parts);
}

/** The archive's bytes, ended by two zero blocks (`end: false` leaves them out). */
export function buildTar(members: FixtureMember[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const member of members) {
    const data = member.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(member.data) ? member.data : Buffer.from(member.data, 'utf8');
    const type = member.type ?? '0';
    const size = type === '0' ? data.length : 0;
    const nameBytes = Buffer.from(member.name, 'utf8');
    const pax = { ...member.pax };
    let headerName = nameBytes;
    if (nameBytes.length > 100) {
      if (member.gnuLongName) {
        const long = Buffer.concat([nameBytes, Buffer.alloc(1)]);
        parts.push(header(Buffer.from('././@LongLink'), long.length, 'L'), padded(long));
      } else {
        pax.path = member.name;
      }
      headerName = nameBytes.subarray(0, 100);
    }
    if (Object.keys(pax).length > 0) {
      const records = paxRecords(pax);
      parts.push(header(Buffer.from('PaxHeader'), records.length, 'x'), padded(records));
    }
    parts.push(header(headerName, size, type));
    if (size > 0) parts.push(padded(data));
  }
  if (options.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
