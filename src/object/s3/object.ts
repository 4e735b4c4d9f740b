import { CONSTRAINTS } from '../common.js';
import type { SwiftResponse } from '../proxy/pipeline.js';
import { S3Error, invalidArgument } from './errors.js';
import { contentMd5ToEtag, isSlo, metaHeaders, objectEtag, s3ObjectHeaders, singleRange, STORED_HEADERS } from './headers.js';
import { discard, emptyResponse, headBucket, readBody, S3_LIMITS, swift, swiftError, xmlResponse, type S3Call } from './request.js';
import { el, toXml } from './xml.js';

/** Query parameters that override response headers of a GET (`response-content-type`, ...). */
const RESPONSE_OVERRIDES = ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding'];

/** The S3 error of a Swift 404 on an object: NoSuchKey when the bucket exists, else NoSuchBucket. */
async function notFound(call: S3Call, bucket: string, key: string): Promise<S3Error> {
  await headBucket(call, bucket);
  return new S3Error('NoSuchKey', undefined, { Key: key });
}

/** The conditional headers of a request (`if-match`, ... or `x-amz-copy-source-if-match`, ...). */
interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

function conditionsOf(headers: Record<string, string>, prefix = ''): Conditions {
  return {
    ifMatch: headers[`${prefix}if-match`],
    ifNoneMatch: headers[`${prefix}if-none-match`],
    ifModifiedSince: headers[`${prefix}if-modified-since`],
    ifUnmodifiedSince: headers[`${prefix}if-unmodified-since`],
  };
}

function hasConditions(c: Conditions): boolean {
  return Object.values(c).some((v) => v !== undefined);
}

function etagMatches(list: string, etag: string): boolean {
  const bare = etag.replace(/^"|"$/g, '');
  return list.split(',').some((v) => {
    const t = v.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
    return t === '*' || t === bare || (t.endsWith('-N') && bare.startsWith(t.slice(0, -2)));
  });
}

/**
 * Evaluates conditional headers against an object's S3 ETag and
 * Last-Modified, in RFC 7232's order: 412 for If-Match / If-Unmodified-Since,
 * 304 for If-None-Match / If-Modified-Since (412 for a copy source).
 * Done here rather than by the object server because a multipart upload's
 * S3 ETag is not the ETag Swift compares.
 */
function evaluate(c: Conditions, etag: string, lastModified: string | undefined, copySource: boolean): 'ok' | 304 | 412 {
  const modified = lastModified ? Date.parse(lastModified) : NaN;
  const time = (v: string): number => Date.parse(v);
  if (c.ifMatch !== undefined) {
    if (!etagMatches(c.ifMatch, etag)) return 412;
  } else if (c.ifUnmodifiedSince !== undefined && !Number.isNaN(time(c.ifUnmodifiedSince)) && modified > time(c.ifUnmodifiedSince)) {
    return 412;
  }
  if (c.ifNoneMatch !== undefined) {
    if (etagMatches(c.ifNoneMatch, etag)) return copySource ? 412 : 304;
  } else if (c.ifModifiedSince !== undefined && !Number.isNaN(time(c.ifModifiedSince)) && !(modified > time(c.ifModifiedSince))) {
    return copySource ? 412 : 304;
  }
  return 'ok';
}

/** HEADs an object and applies conditions; returns its headers, or throws PreconditionFailed / answers 304. */
async function checkConditions(call: S3Call, bucket: string, key: string, c: Conditions, copySource: boolean): Promise<{ headers: Record<string, string>; notModified: boolean }> {
  const head = await swift(call, 'HEAD', bucket, key);
  discard(head);
  if (head.status === 404) throw await notFound(call, bucket, key);
  if (head.status >= 300) throw await swiftError(call, head);
  const verdict = evaluate(c, objectEtag(head.headers) ?? '', head.headers['last-modified'], copySource);
  if (verdict === 412) throw new S3Error('PreconditionFailed', undefined, { Condition: Object.keys(c).find((k) => c[k as keyof Conditions] !== undefined) ?? '' });
  return { headers: head.headers, notModified: verdict === 304 };
}

/** `GET` and `HEAD` of an object: Range (one range; HEAD answers it too), conditions, `response-*` overrides, `partNumber=1`. */
export async function getObject(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  const head = call.method === 'HEAD';
  const range = call.req.headers.range;
  const partNumber = call.params.get('partNumber');
  if (partNumber !== undefined && range !== undefined) throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter');
  if (partNumber !== undefined && !(/^\d+$/.test(partNumber) && Number(partNumber) >= 1 && Number(partNumber) <= 10000)) {
    throw invalidArgument('partNumber', partNumber, `Part number must be an integer between 1 and ${S3_LIMITS.max_upload_part_num}, inclusive`);
  }
  const conditions = conditionsOf(call.req.headers);
  let expectedEtag: string | null = null;
  if (hasConditions(conditions)) {
    const checked = await checkConditions(call, bucket, key, conditions, false);
    const etag = objectEtag(checked.headers);
    if (checked.notModified) return emptyResponse(304, { ...(etag ? { etag } : {}), ...(checked.headers['last-modified'] ? { 'last-modified': checked.headers['last-modified'] } : {}) });
    expectedEtag = etag;
  }
  const headers: Record<string, string> = {};
  // S3 serves one range; for several it sends the whole object, as here.
  if (!head && range !== undefined && /^bytes=\d*-\d*$/.test(range.trim())) headers.range = range.trim();
  const resp = await swift(call, head ? 'HEAD' : 'GET', bucket, key, { headers });
  if (resp.status === 404) {
    discard(resp);
    throw await notFound(call, bucket, key);
  }
  if (resp.status !== 200 && resp.status !== 206) throw await swiftError(call, resp);
  const out = s3ObjectHeaders(resp.headers);
  if (expectedEtag !== null && out.etag !== expectedEtag) {
    // The object changed between the check and the read: refuse rather than mix.
    discard(resp);
    throw new S3Error('PreconditionFailed');
  }
  let status = resp.status;
  const size = Number(resp.headers['content-length'] ?? '0');
  if (partNumber !== undefined) {
    const parts = Number(resp.headers['x-parts-count'] ?? (isSlo(resp.headers) ? 0 : 1));
    if (isSlo(resp.headers) && !resp.headers['x-parts-count']) {
      discard(resp);
      throw new S3Error('NotImplemented', 'GET by partNumber of a multipart object is not supported; use Range.');
    }
    if (Number(partNumber) > parts) {
      discard(resp);
      throw new S3Error('InvalidRange', 'The requested partnumber is not satisfiable');
    }
    status = 206;
    out['content-range'] = `bytes 0-${Math.max(0, size - 1)}/${size}`;
    out['x-amz-mp-parts-count'] ??= String(parts);
  }
  if (head && range !== undefined) {
    const r = singleRange(range, size);
    if (r) {
      status = 206;
      out['content-range'] = `bytes ${r[0]}-${r[1]}/${size}`;
      out['content-length'] = String(r[1] - r[0] + 1);
    }
  }
  for (const name of RESPONSE_OVERRIDES) {
    const value = call.params.get(`response-${name}`);
    if (value !== undefined) out[name] = value;
  }
  if (head) discard(resp);
  return { status, headers: out, body: head ? null : resp.body };
}

/** The Swift headers of an object's data and metadata from an S3 PUT (or a copy with `REPLACE`). */
function storedHeaders(call: S3Call): Record<string, string> {
  const headers: Record<string, string> = { ...metaHeaders(call.req.headers) };
  for (const name of STORED_HEADERS) {
    const value = call.req.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  headers['content-type'] ??= 'binary/octet-stream';
  return headers;
}

/** The source of a copy: `bucket/key` (leading `/` optional, percent-encoded), `?versionId=null` tolerated. */
export function copySource(value: string): { bucket: string; key: string } {
  const [path = '', query = ''] = value.split('?', 2);
  if (query && query !== 'versionId=null') {
    if (query.startsWith('versionId=')) throw new S3Error('NotImplemented', 'Object versions are not supported.');
    throw invalidArgument('x-amz-copy-source', value, 'Unsupported copy source parameter.');
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    decoded = path;
  }
  const trimmed = decoded.replace(/^\//, '');
  const slash = trimmed.indexOf('/');
  if (slash <= 0 || slash === trimmed.length - 1) {
    throw invalidArgument('x-amz-copy-source', value, 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
  }
  return { bucket: trimmed.slice(0, slash), key: trimmed.slice(slash + 1) };
}

/**
 * Reads a copy source (GET, with a byte range for UploadPartCopy) after its
 * `x-amz-copy-source-if-*` conditions; NoSuchKey/NoSuchBucket as S3 says them.
 */
export async function readCopySource(call: S3Call, range?: string): Promise<{ resp: SwiftResponse; bucket: string; key: string }> {
  const src = copySource(call.req.headers['x-amz-copy-source'] ?? '');
  const conditions = conditionsOf(call.req.headers, 'x-amz-copy-source-');
  let expected: string | null = null;
  if (hasConditions(conditions)) expected = objectEtag((await checkConditions(call, src.bucket, src.key, conditions, true)).headers);
  const resp = await swift(call, 'GET', src.bucket, src.key, { headers: range ? { range } : {} });
  if (resp.status === 404) {
    discard(resp);
    throw await notFound(call, src.bucket, src.key);
  }
  if (resp.status !== 200 && resp.status !== 206) throw await swiftError(call, resp);
  if (expected !== null && objectEtag(resp.headers) !== expected) {
    discard(resp);
    throw new S3Error('PreconditionFailed');
  }
  return { resp, ...src };
}

/** The `x-amz-checksum-*` header the client sent (checked as the body streamed), echoed as S3 does. */
function checksumEcho(call: S3Call): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(call.req.headers)) if (name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-algorithm' && name !== 'x-amz-checksum-type') out[name] = value;
  const trailer = call.req.headers['x-amz-trailer']?.trim().toLowerCase();
  const trailed = trailer ? call.bodyStream?.trailers[trailer] : undefined;
  if (trailer && trailed) out[trailer] = trailed;
  return out;
}

/** Writes an object from a body stream with the given headers; the S3 error of a failure. */
export async function putSwiftObject(call: S3Call, container: string, key: string, headers: Record<string, string>, bucketForErrors: string): Promise<SwiftResponse> {
  const resp = await swift(call, 'PUT', container, key, { headers, body: call.body });
  if (resp.status === 201 && !call.bodyStream?.failure) {
    discard(resp);
    return resp;
  }
  throw await swiftError(call, resp, {
    404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucketForErrors }),
    422: () => new S3Error('BadDigest', undefined, { ExpectedDigest: headers.etag ?? '' }),
  });
}

/** The Swift request headers of an S3 object's payload (length, or chunked transfer). */
export function payloadHeaders(call: S3Call): Record<string, string> {
  if (call.contentLength !== null) return { 'content-length': String(call.contentLength) };
  return call.body ? { 'transfer-encoding': 'chunked' } : { 'content-length': '0' };
}

/** `PUT /bucket/key`: an upload, or a copy (`x-amz-copy-source`, with `x-amz-metadata-directive`). */
export async function putObject(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  if (Buffer.byteLength(key) > CONSTRAINTS.max_object_name_length) throw new S3Error('KeyTooLongError');
  if (call.req.headers['x-amz-copy-source'] !== undefined) return copyObject(call, bucket, key);
  const headers = { ...storedHeaders(call), ...payloadHeaders(call) };
  const etag = contentMd5ToEtag(call.req.headers['content-md5']);
  if (etag) headers.etag = etag;
  if (call.req.headers['if-none-match'] === '*') headers['if-none-match'] = '*';
  const resp = await putSwiftObject(call, bucket, key, headers, bucket);
  return emptyResponse(200, { ...(resp.headers.etag ? { etag: `"${resp.headers.etag.replace(/^"|"$/g, '')}"` } : {}), ...checksumEcho(call) });
}

/**
 * CopyObject: reads the source and writes it as the destination, streaming;
 * metadata and content headers come from the source (`COPY`, the default)
 * or from this request (`REPLACE`). Copying an object onto itself needs
 * `REPLACE`, as S3 says.
 */
async function copyObject(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  const h = call.req.headers;
  if (h['x-amz-copy-source-range'] !== undefined) throw invalidArgument('x-amz-copy-source-range', h['x-amz-copy-source-range'], 'Illegal copy header');
  if (h.range !== undefined) throw invalidArgument('Range', h.range, 'RANGE is not supported in Copy!');
  const directive = h['x-amz-metadata-directive'] ?? 'COPY';
  const src = copySource(h['x-amz-copy-source'] ?? '');
  if (src.bucket === bucket && src.key === key && directive === 'COPY') {
    throw new S3Error(
      'InvalidRequest',
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const { resp: source } = await readCopySource(call);
  let headers: Record<string, string>;
  if (directive === 'REPLACE') {
    headers = storedHeaders(call);
  } else {
    headers = {};
    for (const [name, value] of Object.entries(source.headers)) {
      if (name.startsWith('x-object-meta-') || STORED_HEADERS.includes(name)) headers[name] = value;
    }
  }
  headers['content-length'] = source.headers['content-length'] ?? '0';
  const resp = await swift(call, 'PUT', bucket, key, { headers, body: source.body });
  if (resp.status !== 201) throw await swiftError(call, resp, { 404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucket }) });
  discard(resp);
  const lastModified = Date.parse(resp.headers['last-modified'] ?? '');
  const etag = `"${(resp.headers.etag ?? '').replace(/^"|"$/g, '')}"`;
  const when = new Date(Number.isNaN(lastModified) ? Date.now() : lastModified).toISOString();
  return xmlResponse(toXml(el('CopyObjectResult', [el('LastModified', when), el('ETag', etag)])));
}

/**
 * `DELETE /bucket/key`: 204 whether or not the key existed (NoSuchBucket when
 * the bucket does not); a completed multipart upload goes with its parts.
 */
export async function deleteObject(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  const versionId = call.params.get('versionId');
  if (versionId !== undefined && versionId !== 'null') throw new S3Error('NotImplemented', 'Object versions are not supported.');
  await deleteKey(call, bucket, key);
  return emptyResponse(204);
}

/** Deletes one key (with its segments when it is a multipart upload); a missing key is no error, a missing bucket is NoSuchBucket. */
export async function deleteKey(call: S3Call, bucket: string, key: string): Promise<void> {
  const head = await swift(call, 'HEAD', bucket, key);
  discard(head);
  if (head.status === 404) {
    await headBucket(call, bucket);
    return;
  }
  if (head.status >= 300) throw await swiftError(call, head);
  const slo = isSlo(head.headers);
  const resp = await swift(call, 'DELETE', bucket, key, slo ? { query: { 'multipart-manifest': 'delete' }, headers: { accept: 'application/json' } } : {});
  if (slo && resp.status === 200) {
    // The segments are deleted while this answer streams: read it to the end before answering.
    const report = (await readBody(resp, 16 * 1024 * 1024)).toString('utf8');
    let result: { 'Response Status'?: string; Errors?: unknown[] } = {};
    try {
      result = JSON.parse(report.trim() || '{}') as typeof result;
    } catch {
      result = {};
    }
    if ((result.Errors ?? []).length > 0 || !/^2/.test(result['Response Status'] ?? '200')) {
      call.ctx.log.warn({ request_id: call.requestId, bucket, key, status: result['Response Status'], errors: result.Errors }, 'S3: deleting the parts of a multipart object left some behind');
    }
    return;
  }
  discard(resp);
  if (resp.status < 300 || resp.status === 404) return;
  throw await swiftError(call, resp);
}
