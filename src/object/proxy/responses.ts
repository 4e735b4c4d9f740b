import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { SwiftResponse } from './pipeline.js';

/**
 * Swift's responses: status reasons and the small HTML bodies swob writes for
 * an error that has no body of its own, plus an error type that carries a
 * finished response out of deep code.
 */

/** Reason phrase and default explanation per status, as Swift's swob has them. */
export const REASONS: Record<number, [string, string]> = {
  100: ['Continue', ''],
  200: ['OK', ''],
  201: ['Created', ''],
  202: ['Accepted', 'The request is accepted for processing.'],
  204: ['No Content', ''],
  206: ['Partial Content', ''],
  301: ['Moved Permanently', 'The resource has moved permanently.'],
  302: ['Found', 'The resource has moved temporarily.'],
  303: ['See Other', 'The response to the request can be found under a different URI.'],
  304: ['Not Modified', ''],
  307: ['Temporary Redirect', 'The resource has moved temporarily.'],
  400: ['Bad Request', 'The server could not comply with the request since it is either malformed or otherwise incorrect.'],
  401: ['Unauthorized', 'This server could not verify that you are authorized to access the document you requested.'],
  402: ['Payment Required', 'Access was denied for financial reasons.'],
  403: ['Forbidden', 'Access was denied to this resource.'],
  404: ['Not Found', 'The resource could not be found.'],
  405: ['Method Not Allowed', 'The method is not allowed for this resource.'],
  406: ['Not Acceptable', 'The resource is not available in a format acceptable to your browser.'],
  408: ['Request Timeout', 'The server has waited too long for the request to be sent by the client.'],
  409: ['Conflict', 'There was a conflict when trying to complete your request.'],
  410: ['Gone', 'This resource is no longer available.'],
  411: ['Length Required', 'Content-Length header required.'],
  412: ['Precondition Failed', 'A precondition for this request was not met.'],
  413: ['Request Entity Too Large', 'The body of your request was too large for this server.'],
  414: ['Request URI Too Long', 'The request URI was too long for this server.'],
  415: ['Unsupported Media Type', 'The request media type is not supported by this server.'],
  416: ['Requested Range Not Satisfiable', 'The Range requested is not available.'],
  417: ['Expectation Failed', 'Expectation failed.'],
  422: ['Unprocessable Entity', 'Unable to process the contained instructions'],
  499: ['Client Disconnect', 'The client was disconnected during request.'],
  500: ['Internal Error', 'The server has either erred or is incapable of performing the requested operation.'],
  501: ['Not Implemented', 'The requested method is not implemented by this server.'],
  502: ['Bad Gateway', 'Bad gateway.'],
  503: ['Service Unavailable', 'The server is currently unavailable. Please try again at a later time.'],
  504: ['Gateway Timeout', 'A timeout has occurred speaking to a backend server.'],
  507: ['Insufficient Storage', 'There was not enough space to save the resource. Drive: unknown'],
};

const HTML = 'text/html; charset=UTF-8';

/**
 * A response as swob builds one for a status: with `body` as given (HTML
 * content type unless `headers` name another), else Swift's
 * `<html><h1>Title</h1><p>Explanation</p></html>` for statuses that have an
 * explanation, else empty.
 */
export function httpError(status: number, body?: string, headers: Record<string, string> = {}): SwiftResponse {
  let text = body;
  if (text === undefined) {
    const reason = REASONS[status];
    text = reason?.[1] ? `<html><h1>${reason[0]}</h1><p>${reason[1]}</p></html>` : '';
  }
  return { status, headers: { 'content-type': HTML, ...headers }, body: text };
}

/** An error with a `text/plain` body (Swift's constraint messages). */
export function plainError(status: number, body: string, headers: Record<string, string> = {}): SwiftResponse {
  return { status, headers: { 'content-type': 'text/plain', ...headers }, body };
}

/** Thrown to answer a request from deep inside the proxy; `catch_errors` and the app turn it into its response. */
export class SwiftHttpError extends Error {
  constructor(readonly response: SwiftResponse) {
    super(`HTTP ${response.status}`);
  }
}

/** Throws {@link httpError} (or {@link plainError} when `plain`). */
export function fail(status: number, body?: string, options: { plain?: boolean; headers?: Record<string, string> } = {}): never {
  const response = options.plain && body !== undefined ? plainError(status, body, options.headers) : httpError(status, body, options.headers);
  throw new SwiftHttpError(response);
}

/** A new transaction id in Swift's form: `tx` + 21 hex digits + `-` + the time as 10 hex digits. */
export function newTransId(): string {
  const seconds = Math.floor(Date.now() / 1000);
  return `tx${randomBytes(11).toString('hex').slice(0, 21)}-${seconds.toString(16).padStart(10, '0')}`;
}

/** Reads a whole (small) body: backend error bodies, listings, manifests. Rejects past `limit` bytes. */
export async function readAll(body: SwiftResponse['body'] | Readable, limit = 64 * 1024 * 1024): Promise<Buffer> {
  if (body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > limit) {
      (body as Readable).destroy();
      throw new Error(`body larger than ${limit} bytes`);
    }
    chunks.push(bytes);
  }
  return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
}

/** Consumes and drops a body (a response nobody will read). */
export function discard(body: SwiftResponse['body'] | Readable | undefined): void {
  if (body && typeof body !== 'string' && !Buffer.isBuffer(body)) {
    const stream = body as Readable;
    if (!stream.destroyed) {
      stream.on('error', () => undefined);
      stream.resume();
    }
  }
}

/** The length in bytes of a string or Buffer body; undefined for a stream. */
export function bodyLength(body: SwiftResponse['body']): number | undefined {
  if (body === null) return 0;
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (Buffer.isBuffer(body)) return body.length;
  return undefined;
}
