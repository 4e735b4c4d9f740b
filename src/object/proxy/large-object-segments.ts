import { createHash } from 'node:crypto';
import { SegmentError } from './large-object-response.js';
import { bodyChunks, closeBody, contentLength, drainBody, isSuccess, normalizeEtag, readBody } from './large-object-util.js';
import { subrequest, type Handler, type SwiftRequest } from './pipeline.js';

/**
 * Reading the segments of a large object one after the other (Swift's
 * `SegmentedIterable`): each segment is a GET subrequest with the caller's
 * identity (so the caller needs read access to the segments' containers),
 * checked against what the manifest expects, streamed on.
 */

/** One piece of an assembled body: some bytes of one segment object, or inline data (SLO `data` segments). */
export interface SegmentPiece {
  /** Decoded `/v1/<account>/<container>/<object>` of an object segment. */
  path?: string;
  /** Inline bytes instead of an object. */
  data?: Buffer;
  /** First byte wanted within the segment. */
  first: number;
  /** Last byte wanted (inclusive); null: to the end of the segment. */
  last: number | null;
  /** The ETag the segment must have (unquoted); null: not checked. */
  etag?: string | null;
  /** The size the segment must have; null: not checked. */
  size?: number | null;
}

/** Options of `readPieces`. */
export interface ReadPiecesOptions {
  /** `SLO` or `DLO`: the `source` of the subrequests, for logs. */
  source: string;
  /** The large object's path, for messages. */
  name: string;
}

function shorten(text: string): string {
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}

/**
 * Streams the pieces' bytes in order. A segment that is missing, answers an
 * error, or whose ETag/size/MD5 differs from what is expected ends the stream
 * with a SegmentError (503 for a server error). Every subresponse is closed,
 * also when the consumer stops early.
 */
export async function* readPieces(req: SwiftRequest, handler: Handler, pieces: AsyncIterable<SegmentPiece> | Iterable<SegmentPiece>, options: ReadPiecesOptions): AsyncGenerator<Buffer> {
  for await (const piece of pieces) {
    if (piece.data) {
      const end = piece.last === null ? piece.data.length : piece.last + 1;
      if (end > piece.first) yield piece.data.subarray(piece.first, end);
      continue;
    }
    if (piece.path === undefined) continue;
    yield* readSegment(req, handler, piece, piece.path, options);
  }
}

async function* readSegment(req: SwiftRequest, handler: Handler, piece: SegmentPiece, path: string, options: ReadPiecesOptions): AsyncGenerator<Buffer> {
  const size = piece.size ?? null;
  const goToEnd = piece.last === null || (size !== null && piece.last === size - 1);
  const headers: Record<string, string> = {};
  const ranged = piece.first !== 0 || !goToEnd;
  if (ranged) headers['range'] = `bytes=${piece.first}-${goToEnd ? '' : String(piece.last)}`;
  // multipart-manifest=get: the segment itself, never what a manifest assembles.
  const resp = await handler(subrequest(req, 'GET', path, { query: 'multipart-manifest=get', headers, source: options.source }));
  let finished = false;
  try {
    if (!isSuccess(resp.status)) {
      const body = await readBody(resp.body, 4096).catch(() => Buffer.alloc(0));
      finished = true;
      const message = `While processing manifest ${options.name}, got ${resp.status} (${shorten(body.toString('utf8'))}) while retrieving ${path}`;
      throw new SegmentError(message, resp.status >= 500 ? 503 : 409);
    }
    const gotEtag = normalizeEtag(resp.headers['etag']);
    const gotLength = contentLength(resp.headers);
    if ((piece.etag && gotEtag !== piece.etag) || (size !== null && !ranged && gotLength !== size)) {
      await drainBody(resp);
      finished = true;
      throw new SegmentError(`Object segment no longer valid: ${path} etag: ${String(gotEtag)} != ${String(piece.etag)} or ${String(gotLength)} != ${String(size)}.`);
    }
    const hash = gotEtag && !ranged ? createHash('md5') : null;
    let length = 0;
    for await (const chunk of bodyChunks(resp.body)) {
      hash?.update(chunk);
      length += chunk.length;
      yield chunk;
    }
    finished = true;
    if (hash) {
      if (gotLength !== null && length !== gotLength) {
        throw new SegmentError(`Bad response length for ${path} as part of ${options.name}: headers had ${gotLength}, but response length was actually ${length}`);
      }
      const actual = hash.digest('hex');
      if (actual !== gotEtag) throw new SegmentError(`Bad MD5 checksum for ${path} as part of ${options.name}: headers had ${String(gotEtag)}, but object MD5 was actually ${actual}`);
    }
  } finally {
    if (!finished) closeBody(resp);
  }
}
