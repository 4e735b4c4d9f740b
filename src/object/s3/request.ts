import { Readable } from 'node:stream';
import type { ObjectConfig } from '../../core/config.js';
import { subrequest, type Handler, type ProxyContext, type SwiftRequest, type SwiftResponse } from '../proxy/pipeline.js';
import type { S3BodyStream } from './body.js';
import { S3Error } from './errors.js';
import { parseXml, XmlSyntaxError, type XmlElement } from './xml.js';

/** Parts of uploads live in `<bucket>+segments` (Swift's s3api layout). */
export const SEGMENTS_SUFFIX = '+segments';
/** Sysmeta where the S3 ETag of a completed multipart upload is kept. */
export const S3_ETAG_SYSMETA = 'x-object-sysmeta-s3api-etag';
/** Sysmeta on an upload marker: the upload's content type. */
export const UPLOAD_CONTENT_TYPE_SYSMETA = 'x-object-sysmeta-s3api-content-type';
/** Sysmeta on an upload marker: whether the client gave a content type (`yes`/`no`). */
export const UPLOAD_HAS_CONTENT_TYPE_SYSMETA = 'x-object-sysmeta-s3api-has-content-type';
/** Sysmeta on a completed upload's manifest: the upload id it came from. */
export const UPLOAD_ID_SYSMETA = 'x-object-sysmeta-s3api-upload-id';
/** The container listing override that carries the S3 ETag of a multipart upload (SLO adds its own etag before the `;`). */
export const CONTAINER_UPDATE_OVERRIDE_ETAG = 'x-object-sysmeta-container-update-override-etag';

/** The limits s3api reports in `/info` and applies. */
export const S3_LIMITS = {
  max_bucket_listing: 1000,
  max_parts_listing: 1000,
  max_upload_part_num: 1000,
  max_multi_delete_objects: 1000,
  allow_multipart_uploads: true,
  min_segment_size: 5 * 1024 * 1024,
  s3_acl: false,
};

/** One S3 request once authenticated: what every operation works from. */
export interface S3Call {
  /** The request as it came in (headers lower-case). */
  req: SwiftRequest;
  ctx: ProxyContext;
  config: ObjectConfig;
  /** The rest of the pipeline (auth and below): where Swift subrequests go. */
  next: Handler;
  method: string;
  /** Null for the service (`GET /`). */
  bucket: string | null;
  /** Null for bucket and service requests. */
  key: string | null;
  /** The query parameters, decoded (first value of each name). */
  params: Map<string, string>;
  /** The payload (decoded and checked as it streams), null when the request has none. */
  body: Readable | null;
  /** The checking stream under `body`, to learn why it failed. */
  bodyStream: S3BodyStream | null;
  /** The payload length when known. */
  contentLength: number | null;
  /** `AUTH_<project_id>`. */
  account: string;
  /** Shown as owner and initiator (`<project name>:<user name>`, as s3api with keystone). */
  owner: string;
  requestId: string;
  /** The request path for error bodies (`/bucket/key`). */
  resource: string;
}

/** Options of a Swift subrequest. */
export interface SwiftCallOptions {
  /** Query parameters, encoded here (a null value is a bare name). */
  query?: Record<string, string | number | null | undefined>;
  headers?: Record<string, string>;
  body?: Readable | Buffer | string | null;
}

/** Encodes a query for a Swift subrequest. */
export function encodeQuery(query: Record<string, string | number | null | undefined>): string {
  return Object.entries(query)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => (v === null ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`))
    .join('&');
}

/** The Swift path of an account, container or object (decoded, as SwiftRequest paths are). */
export function swiftPath(account: string, container?: string | null, object?: string | null): string {
  let path = `/v1/${account}`;
  if (container) path += `/${container}`;
  if (container && object) path += `/${object}`;
  return path;
}

/**
 * Sends a Swift request down the rest of the pipeline on behalf of the S3
 * caller (same identity and request id; logged with source `S3`).
 */
export function swift(call: S3Call, method: string, container: string | null, object: string | null, options: SwiftCallOptions = {}): Promise<SwiftResponse> {
  const body = options.body ?? null;
  const headers: Record<string, string> = { ...options.headers };
  let stream: Readable | null = null;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    headers['content-length'] = String(bytes.length);
    stream = Readable.from([bytes]);
  } else if (body) {
    stream = body;
  } else if (method === 'PUT' || method === 'POST') {
    headers['content-length'] ??= '0';
  }
  const sub: SwiftRequest = subrequest(call.req, method, swiftPath(call.account, container, object), {
    query: encodeQuery(options.query ?? {}),
    headers,
    body: stream,
    source: 'S3',
  });
  return call.next(sub);
}

/** Reads a whole (small) response body; `limit` guards against surprises. */
export async function readBody(resp: SwiftResponse, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const body = resp.body;
  if (body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body);
  if (Buffer.isBuffer(body)) return body;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of body) {
    const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as string);
    size += buf.length;
    if (size > limit) {
      body.destroy();
      throw new S3Error('InternalError');
    }
    parts.push(buf);
  }
  return Buffer.concat(parts);
}

/** Throws away a response body nobody will read. */
export function discard(resp: SwiftResponse): void {
  const body = resp.body;
  if (body instanceof Readable) {
    body.resume();
    body.on('error', () => undefined);
  }
}

/** Reads a JSON listing response. */
export async function readJson<T>(resp: SwiftResponse): Promise<T> {
  const data = await readBody(resp);
  try {
    return JSON.parse(data.toString('utf8') || 'null') as T;
  } catch {
    throw new S3Error('InternalError');
  }
}

/**
 * Reads an XML request body of at most `max` bytes, or null when there is
 * none; throws MalformedXML when it is too big or not XML.
 */
export async function readXmlBody(call: S3Call, max: number): Promise<{ root: XmlElement; raw: Buffer } | null> {
  const body = call.body;
  if (!body) return null;
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const piece of body) {
      const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as string);
      size += buf.length;
      if (size > max) {
        body.destroy();
        throw new S3Error('MalformedXML');
      }
      parts.push(buf);
    }
  } catch (err) {
    if (err instanceof S3Error) throw err;
    throw call.bodyStream?.failure ?? new S3Error('IncompleteBody', 'The request body terminated unexpectedly');
  }
  if (size === 0) return null;
  const raw = Buffer.concat(parts);
  try {
    return { root: parseXml(raw), raw };
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw new S3Error('MalformedXML');
    throw err;
  }
}

/** What a Swift status means for this kind of S3 operation, when the operation does not say otherwise. */
export async function swiftError(call: S3Call, resp: SwiftResponse, overrides: Record<number, () => S3Error> = {}): Promise<S3Error> {
  const override = overrides[resp.status];
  if (override) {
    discard(resp);
    return override();
  }
  const failure = call.bodyStream?.failure;
  if (failure) {
    discard(resp);
    return failure;
  }
  const text = resp.status === 400 || resp.status === 413 ? (await readBody(resp, 65536).catch(() => Buffer.alloc(0))).toString('utf8') : (discard(resp), '');
  switch (resp.status) {
    case 400:
      if (/metadata/i.test(text)) return new S3Error('MetadataTooLarge', text.replace(/<[^>]*>/g, '').trim() || undefined);
      return new S3Error('InvalidRequest', text.replace(/<[^>]*>/g, '').trim() || undefined);
    case 401:
      return new S3Error('SignatureDoesNotMatch');
    case 403:
      return new S3Error('AccessDenied');
    case 408:
    case 499:
      return new S3Error('RequestTimeout', undefined, {}, { connection: 'close' });
    case 411:
      return new S3Error('MissingContentLength');
    case 413:
      return new S3Error('EntityTooLarge', /quota/i.test(text) ? text.replace(/<[^>]*>/g, '').trim() : undefined);
    case 416:
      return new S3Error('InvalidRange');
    case 412:
      return new S3Error('PreconditionFailed');
    case 429:
    case 498:
      return new S3Error('SlowDown');
    case 503:
      return new S3Error('ServiceUnavailable');
    default:
      call.ctx.log.error({ status: resp.status, request_id: call.requestId, method: call.method, bucket: call.bucket }, 'S3: unexpected status from the object store');
      return new S3Error('InternalError');
  }
}

/** Whether a Swift container exists for this caller: its HEAD, or the S3 error (NoSuchBucket, AccessDenied, ...). */
export async function headBucket(call: S3Call, bucket: string): Promise<SwiftResponse> {
  const resp = await swift(call, 'HEAD', bucket, null);
  if (resp.status >= 200 && resp.status < 300) {
    discard(resp);
    return resp;
  }
  throw await swiftError(call, resp, { 404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucket }) });
}

/** S3's XML time form: `2009-10-12T17:50:30.000Z`, rounded up to the second as `Last-Modified` is. */
export function s3Time(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString();
}

/** The time of a Swift listing entry (`2024-01-02T03:04:05.123450`, UTC without zone). */
export function listingTime(value: string | undefined): string {
  if (!value) return s3Time(0);
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
  // Swift keeps microseconds; Date keeps milliseconds: round up as Swift rounds Last-Modified up.
  const micros = /\.(\d+)/.exec(value)?.[1] ?? '';
  const extra = micros.length > 3 && Number(micros.slice(3)) > 0 ? 1 : 0;
  return Number.isNaN(ms) ? s3Time(0) : s3Time(ms + extra);
}

/** An S3 response with an XML body. */
export function xmlResponse(xml: string, status = 200, headers: Record<string, string> = {}): SwiftResponse {
  return { status, headers: { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(xml)), ...headers }, body: xml };
}

/** An S3 response without a body. */
export function emptyResponse(status: number, headers: Record<string, string> = {}): SwiftResponse {
  return { status, headers: { 'content-length': '0', ...headers }, body: null };
}
