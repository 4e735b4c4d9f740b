import { PassThrough } from 'node:stream';
import { statusLine } from './feature-util.js';
import type { SwiftResponse } from './pipeline.js';

/**
 * The response of Swift's bulk operations: always `200 OK`, the outcome in
 * the body (plain text, JSON or XML by `Accept`), and whitespace sent every
 * few seconds while the work goes on so that neither the client nor a load
 * balancer gives up on a long request.
 */

/** Formats the bulk middleware can answer in, in Swift's order of preference. */
export const BULK_FORMATS = ['text/plain', 'application/json', 'application/xml', 'text/xml'] as const;

/** A failed path and the status line it got (`['c/o', '403 Forbidden']`). */
export type BulkFailure = [string, string];

/** The outcome Swift reports: ordered keys (`Response Status`, `Response Body`, counts). */
export type BulkResult = Record<string, string | number>;

/** Raised inside a bulk operation: becomes `Response Status`/`Response Body` of the report. */
export class BulkAbort extends Error {
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string) {
    super(body);
    this.status = status;
    this.body = body;
  }
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The report's text (Swift's `get_heartbeat_response_body`): JSON with an
 * `Errors` list, XML under `<rootTag>` (keys sorted, lower-case with `_`),
 * or `Key: value` lines then `Errors:` and one `name, status` line per failure.
 */
export function formatBulkReport(format: string | null, result: BulkResult, failures: BulkFailure[], rootTag: 'delete' | 'extract'): string {
  if (format === 'application/json') return JSON.stringify({ ...result, Errors: failures });
  const keys = Object.keys(result).sort();
  if (format?.endsWith('/xml')) {
    let out = `<${rootTag}>\n`;
    for (const key of keys) {
      const tag = key.replace(/ /g, '_').toLowerCase();
      out += `<${tag}>${escapeXml(String(result[key]))}</${tag}>\n`;
    }
    out += '<errors>\n';
    for (const [name, status] of failures) out += `<object><name>${escapeXml(name)}</name><status>${escapeXml(status)}</status></object>\n`;
    return `${out}</errors>\n</${rootTag}>\n`;
  }
  let out = '';
  for (const key of keys) out += `${key}: ${result[key]}\n`;
  out += 'Errors:\n';
  for (const [name, status] of failures) out += `${name}, ${status}\n`;
  return out;
}

/** What a bulk operation gets to report progress and see whether anyone still listens. */
export interface BulkProgress {
  /** True once the client has gone: stop starting new work. */
  readonly gone: boolean;
}

/**
 * Starts `work` and answers at once with a 200 whose body is whitespace
 * every `heartbeatMs` until `work` settles, then the report. `work` returns
 * the result and failures; a `BulkAbort` it throws becomes the report's
 * status and body; anything else is a `500 Internal Error` report (logged by
 * `onError`).
 */
export function bulkResponse(
  format: string | null,
  rootTag: 'delete' | 'extract',
  initial: BulkResult,
  heartbeatMs: number,
  work: (result: BulkResult, failures: BulkFailure[], progress: BulkProgress) => Promise<void>,
  onError: (err: unknown) => void,
): SwiftResponse {
  const out = new PassThrough();
  const result: BulkResult = { ...initial };
  const failures: BulkFailure[] = [];
  let heartbeat = format?.endsWith('/xml') ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ' ';
  let separator = '';
  const progress = {
    get gone(): boolean {
      return out.destroyed;
    },
  };
  const timer = setInterval(() => {
    if (out.destroyed) return;
    out.write(heartbeat);
    heartbeat = ' ';
    separator = '\r\n\r\n';
  }, heartbeatMs);
  const finish = (): void => {
    clearInterval(timer);
    if (!out.destroyed) out.end(separator + formatBulkReport(format, result, failures, rootTag));
  };
  void work(result, failures, progress).then(finish, (err: unknown) => {
    if (err instanceof BulkAbort) {
      result['Response Status'] = statusLine(err.status);
      result['Response Body'] = err.body;
    } else {
      onError(err);
      result['Response Status'] = statusLine(500);
    }
    finish();
  });
  const contentType = format ?? 'text/html; charset=UTF-8';
  return { status: 200, headers: { 'content-type': contentType }, body: out };
}
