import { Readable } from 'node:stream';
import { ByteReader } from './byte-reader.js';

/**
 * A streaming reader of `multipart/form-data` bodies (RFC 7578), for
 * formpost: parts come one at a time, their bodies as streams, so a form
 * carrying large files never sits in memory.
 */

/** The body does not begin with the boundary. */
export class MimeInvalid extends Error {}

/** One part of the form. */
export interface FormPart {
  /** Header names lower-case. */
  headers: Record<string, string>;
  /** The part's bytes up to the next boundary; the reader skips what is not read. */
  body: Readable;
}

const READ_SIZE = 64 * 1024;
const MAX_HEADER_LINE = 8192;
const MAX_HEADER_LINES = 64;

/** `form-data; name="a"; filename="b"` → `['form-data', {name: 'a', filename: 'b'}]` (Swift's `parse_content_disposition`). */
export function parseContentDisposition(header: string): [string, Record<string, string>] {
  const semi = header.indexOf(';');
  if (semi < 0) return [header.trim(), {}];
  const value = header.slice(0, semi).trim();
  let rest = header.slice(semi + 1).trim();
  const attributes: Record<string, string> = {};
  const attribute = /^\s*([^=\s;]+)\s*=\s*("[^"]*"|[^;]*)\s*;?\s*/;
  for (;;) {
    const match = attribute.exec(rest);
    if (!match || match[0].length === 0) break;
    rest = rest.slice(match[0].length);
    attributes[match[1] as string] = (match[2] as string).trim().replace(/^"+|"+$/g, '');
  }
  return [value, attributes];
}

const CRLF = Buffer.from('\r\n');

/** A part's header lines (folded lines joined); `ended` when the body ran out first. */
async function readPartHeaders(reader: ByteReader): Promise<{ headers: Record<string, string>; ended: boolean }> {
  const headers: Record<string, string> = {};
  let lastName: string | null = null;
  for (let lines = 0; ; lines++) {
    const line = await reader.readUntil(CRLF, MAX_HEADER_LINE);
    if (!line.found) {
      if (line.data.length === 0) return { headers, ended: true };
      throw new MimeInvalid('invalid part header');
    }
    if (line.data.length === 0) return { headers, ended: false };
    if (lines >= MAX_HEADER_LINES) throw new MimeInvalid('too many part headers');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(line.data);
    } catch {
      text = line.data.toString('latin1');
    }
    if ((text.startsWith(' ') || text.startsWith('\t')) && lastName) {
      headers[lastName] = `${headers[lastName] ?? ''} ${text.trim()}`;
      continue;
    }
    const colon = text.indexOf(':');
    if (colon <= 0) continue;
    lastName = text.slice(0, colon).trim().toLowerCase();
    headers[lastName] = text.slice(colon + 1).trim();
  }
}

/** The state of one part's body: `done` once its delimiter (or the end of the form) was reached. */
interface PartState {
  body: Readable;
  done: boolean;
  /** The form ended inside this part (no closing boundary). */
  lastPart: boolean;
}

/** A part's body as a stream pulled from `reader` up to `delimiter`. */
function partBody(reader: ByteReader, delimiter: Buffer, ended: boolean): PartState {
  const state: PartState = { body: Readable.from([]), done: ended, lastPart: ended };
  const landed = (piece: { data: Buffer; found: boolean }): void => {
    if (piece.found) state.done = true;
    else if (piece.data.length === 0) {
      // The body ended without a closing boundary: the part ends there.
      state.done = true;
      state.lastPart = true;
    }
  };
  state.body = new Readable({
    highWaterMark: READ_SIZE,
    read() {
      if (state.done) {
        this.push(null);
        return;
      }
      reader.readUntil(delimiter, READ_SIZE, landed).then(
        (piece) => {
          if (piece.data.length > 0) this.push(piece.data);
          if (state.done) this.push(null);
        },
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
  // Readers see errors through their own listeners; this one keeps an error after a reader has given up from going unheard.
  state.body.on('error', () => undefined);
  return state;
}

/** Skips what is left of a part and the rest of its delimiter line: true when another part follows. */
async function skipPart(reader: ByteReader, delimiter: Buffer, part: PartState): Promise<boolean> {
  part.body.destroy();
  // A read of the body may still be under way: let it land before looking at `done`.
  await reader.settled();
  while (!part.done) {
    const piece = await reader.readUntil(delimiter, READ_SIZE);
    if (piece.found) break;
    if (piece.data.length === 0 && (await reader.atEnd())) return false;
  }
  if (part.lastPart) return false;
  // After a delimiter: `--` ends the form; anything else ends its line and a new part follows.
  const tail = await reader.readUntil(CRLF, READ_SIZE);
  return !(tail.data.subarray(0, 2).toString('latin1') === '--' || (!tail.found && tail.data.length === 0));
}

/**
 * Reads the form in `source` delimited by `boundary` (without the leading
 * dashes). Throws `MimeInvalid` when the body does not start with it. A part
 * that the caller leaves unread is skipped when the next one is asked for.
 * Pass a `ByteReader` to read on after the form (or after leaving it early).
 */
export async function* readMultipartForm(source: Readable | ByteReader, boundary: string): AsyncGenerator<FormPart> {
  const reader = source instanceof ByteReader ? source : new ByteReader(source);
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  // Empty lines may come before the first boundary.
  let first: { data: Buffer; found: boolean };
  do first = await reader.readUntil(CRLF, dashBoundary.length + 2);
  while (first.found && first.data.length === 0);
  if (first.data.toString('latin1').trim() !== dashBoundary.toString('latin1')) throw new MimeInvalid('invalid starting boundary');
  if (!first.found) return; // `--boundary` then the end: no parts
  const delimiter = Buffer.concat([CRLF, dashBoundary]);
  for (;;) {
    const { headers, ended } = await readPartHeaders(reader);
    const part = partBody(reader, delimiter, ended);
    yield { headers, body: part.body };
    if (!(await skipPart(reader, delimiter, part))) return;
  }
}
