import { createHash, randomUUID } from 'node:crypto';
import { CONSTRAINTS } from '../common.js';
import type { SwiftResponse } from '../proxy/pipeline.js';
import { listContainer, type ListingEntry } from './bucket.js';
import { S3Error, invalidArgument } from './errors.js';
import { contentMd5ToEtag, intParam, metaHeaders, quoteEtag, STORED_HEADERS } from './headers.js';
import { payloadHeaders, putSwiftObject, readCopySource } from './object.js';
import {
  CONTAINER_UPDATE_OVERRIDE_ETAG,
  discard,
  emptyResponse,
  headBucket,
  listingTime,
  readBody,
  readXmlBody,
  S3_ETAG_SYSMETA,
  S3_LIMITS,
  SEGMENTS_SUFFIX,
  swift,
  swiftError,
  UPLOAD_CONTENT_TYPE_SYSMETA,
  UPLOAD_HAS_CONTENT_TYPE_SYSMETA,
  UPLOAD_ID_SYSMETA,
  xmlResponse,
  type S3Call,
} from './request.js';
import { uriEncode } from './signature.js';
import { child, children, el, toXml, type XmlElement } from './xml.js';

/**
 * S3 multipart uploads kept as Swift's s3api keeps them: an upload is a
 * marker object `<key>/<uploadId>` in the container `<bucket>+segments`, its
 * parts are `<key>/<uploadId>/<partNumber>` beside it, and completing it
 * writes a static large object over the parts (`?multipart-manifest=put`,
 * handled by the SLO middleware below) whose S3 ETag is the MD5 of the part
 * MD5s with `-<parts>`.
 */

const MAX_COMPLETE_BODY = 2048 * 1024;

function segmentsOf(bucket: string): string {
  return `${bucket}${SEGMENTS_SUFFIX}`;
}

/** A fresh upload id (the base64url of a UUID, as Swift's s3api makes them). */
function newUploadId(): string {
  return Buffer.from(randomUUID()).toString('base64url');
}

function noSuchUpload(uploadId: string): S3Error {
  return new S3Error('NoSuchUpload', undefined, { UploadId: uploadId });
}

/**
 * The upload's marker headers; when the marker is gone because the upload
 * completed, the completed object's (so a repeated Complete succeeds).
 * NoSuchUpload otherwise.
 */
async function uploadInfo(call: S3Call, bucket: string, key: string, uploadId: string): Promise<{ headers: Record<string, string>; marker: boolean }> {
  if (!uploadId || uploadId.includes('/')) throw noSuchUpload(uploadId);
  const marker = await swift(call, 'HEAD', segmentsOf(bucket), `${key}/${uploadId}`);
  discard(marker);
  if (marker.status === 200) return { headers: marker.headers, marker: true };
  if (marker.status !== 404) throw await swiftError(call, marker);
  const done = await swift(call, 'HEAD', bucket, key);
  discard(done);
  if (done.status === 200 && done.headers[UPLOAD_ID_SYSMETA] === uploadId) return { headers: done.headers, marker: false };
  throw noSuchUpload(uploadId);
}

function partNumberOf(call: S3Call): number {
  const text = call.params.get('partNumber') ?? '';
  const max = S3_LIMITS.max_upload_part_num;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${max}, inclusive`, { ArgumentName: 'partNumber', ArgumentValue: text });
  }
  return Number(text);
}

/** `POST /bucket/key?uploads`: starts an upload (creating `<bucket>+segments` with the bucket's ACLs when needed). */
export async function createMultipartUpload(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  if (Buffer.byteLength(key) > CONSTRAINTS.max_object_name_length) throw new S3Error('KeyTooLongError');
  const primary = await headBucket(call, bucket);
  const segments = segmentsOf(bucket);
  const seg = await swift(call, 'HEAD', segments, null);
  discard(seg);
  if (seg.status === 404) {
    const acls: Record<string, string> = {};
    for (const name of ['x-container-read', 'x-container-write', 'x-storage-policy']) {
      const value = primary.headers[name];
      if (value) acls[name] = value;
    }
    const created = await swift(call, 'PUT', segments, null, { headers: acls });
    discard(created);
    if (created.status !== 201 && created.status !== 202) throw await swiftError(call, created);
  } else if (seg.status >= 300) {
    throw await swiftError(call, seg);
  }
  const uploadId = newUploadId();
  const contentType = call.req.headers['content-type'];
  const headers: Record<string, string> = {
    ...metaHeaders(call.req.headers),
    'content-type': 'application/directory',
    [UPLOAD_HAS_CONTENT_TYPE_SYSMETA]: contentType ? 'yes' : 'no',
  };
  if (contentType) headers[UPLOAD_CONTENT_TYPE_SYSMETA] = contentType;
  for (const name of STORED_HEADERS) {
    const value = call.req.headers[name];
    if (value !== undefined && name !== 'content-type') headers[name] = value;
  }
  const resp = await swift(call, 'PUT', segments, `${key}/${uploadId}`, { headers, body: Buffer.alloc(0) });
  if (resp.status !== 201) throw await swiftError(call, resp, { 404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucket }) });
  discard(resp);
  return xmlResponse(toXml(el('InitiateMultipartUploadResult', [el('Bucket', bucket), el('Key', key), el('UploadId', uploadId)])));
}

/** `PUT /bucket/key?partNumber=N&uploadId=U`: one part, uploaded or copied (`x-amz-copy-source`, `x-amz-copy-source-range`). */
export async function uploadPart(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  const uploadId = call.params.get('uploadId');
  if (uploadId === undefined) throw invalidArgument('ResourceType', 'partNumber', 'Unexpected query string parameter');
  const part = partNumberOf(call);
  await headBucket(call, bucket);
  await uploadInfo(call, bucket, key, uploadId);
  const name = `${key}/${uploadId}/${part}`;
  if (call.req.headers['x-amz-copy-source'] === undefined) {
    const headers: Record<string, string> = { ...payloadHeaders(call), 'content-type': 'application/octet-stream' };
    const etag = contentMd5ToEtag(call.req.headers['content-md5']);
    if (etag) headers.etag = etag;
    const resp = await putSwiftObject(call, segmentsOf(bucket), name, headers, bucket);
    return emptyResponse(200, resp.headers.etag ? { etag: quoteEtag(resp.headers.etag) } : {});
  }
  const rangeText = call.req.headers['x-amz-copy-source-range'];
  let range: [number, number] | null = null;
  if (rangeText !== undefined) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(rangeText.trim());
    if (!m || Number(m[1]) > Number(m[2])) {
      throw invalidArgument(
        'x-amz-source-range',
        rangeText,
        'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
      );
    }
    range = [Number(m[1]), Number(m[2])];
  }
  const { resp: source } = await readCopySource(call, range ? `bytes=${range[0]}-${range[1]}` : undefined);
  if (range) {
    const total = Number(/\/(\d+)$/.exec(source.headers['content-range'] ?? '')?.[1] ?? source.headers['content-length'] ?? '0');
    if (range[1] >= total || (source.status === 200 && range[0] > 0)) {
      discard(source);
      throw invalidArgument('x-amz-source-range', rangeText ?? '', `Range specified is not valid for source object of size: ${total}`);
    }
  }
  const headers = { 'content-length': source.headers['content-length'] ?? '0', 'content-type': 'application/octet-stream' };
  const resp = await swift(call, 'PUT', segmentsOf(bucket), name, { headers, body: source.body });
  if (resp.status !== 201) throw await swiftError(call, resp, { 404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucket }) });
  discard(resp);
  const lastModified = Date.parse(resp.headers['last-modified'] ?? '');
  return xmlResponse(
    toXml(el('CopyPartResult', [el('LastModified', new Date(Number.isNaN(lastModified) ? Date.now() : lastModified).toISOString()), el('ETag', quoteEtag(resp.headers.etag ?? ''))])),
  );
}

/** Every part of an upload, by part number (from the segments container listing). */
async function listParts(call: S3Call, bucket: string, key: string, uploadId: string): Promise<Map<number, ListingEntry>> {
  const prefix = `${key}/${uploadId}/`;
  const parts = new Map<number, ListingEntry>();
  try {
    for await (const page of listContainer(call, segmentsOf(bucket), { prefix, delimiter: '/' })) {
      for (const entry of page) {
        const tail = entry.name?.slice(prefix.length) ?? '';
        if (/^\d+$/.test(tail)) parts.set(Number(tail), entry);
      }
    }
  } catch (err) {
    if (!(err instanceof S3Error && err.code === 'NoSuchBucket')) throw err;
  }
  return parts;
}

/** `GET /bucket/key?uploadId=U`: the upload's parts, by part number, from `part-number-marker`, at most `max-parts`. */
export async function listUploadParts(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  const encoding = call.params.get('encoding-type');
  if (encoding !== undefined && encoding !== 'url') throw invalidArgument('encoding-type', encoding, 'Invalid Encoding Method specified in Request');
  const uploadId = call.params.get('uploadId') ?? '';
  await headBucket(call, bucket);
  await uploadInfo(call, bucket, key, uploadId);
  const maxParts = intParam(call.params, 'max-parts', S3_LIMITS.max_parts_listing, S3_LIMITS.max_parts_listing);
  const marker = intParam(call.params, 'part-number-marker', 0);
  const all = [...(await listParts(call, bucket, key, uploadId)).entries()].filter(([n]) => n > marker).sort((a, b) => a[0] - b[0]);
  const shown = all.slice(0, maxParts);
  const truncated = all.length > maxParts;
  const next = shown.length > 0 ? (shown[shown.length - 1]?.[0] ?? 0) : 0;
  const fields: (XmlElement | null)[] = [
    el('Bucket', bucket),
    el('Key', encoding === 'url' ? uriEncode(key, true) : key),
    el('UploadId', uploadId),
    el('Initiator', [el('ID', call.owner), el('DisplayName', call.owner)]),
    el('Owner', [el('ID', call.owner), el('DisplayName', call.owner)]),
    el('StorageClass', 'STANDARD'),
    el('PartNumberMarker', marker),
    el('NextPartNumberMarker', next),
    el('MaxParts', maxParts),
    encoding !== undefined ? el('EncodingType', encoding) : null,
    el('IsTruncated', truncated ? 'true' : 'false'),
    ...shown.map(([n, e]) =>
      el('Part', [el('PartNumber', n), el('LastModified', listingTime(e.last_modified)), el('ETag', quoteEtag(e.hash ?? '')), el('Size', e.bytes ?? 0)]),
    ),
  ];
  return xmlResponse(toXml(el('ListPartsResult', fields)));
}

/** `DELETE /bucket/key?uploadId=U`: removes the parts and the upload. */
export async function abortMultipartUpload(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  const uploadId = call.params.get('uploadId') ?? '';
  await headBucket(call, bucket);
  const info = await uploadInfo(call, bucket, key, uploadId);
  if (!info.marker) throw noSuchUpload(uploadId);
  for (const n of (await listParts(call, bucket, key, uploadId)).keys()) {
    const resp = await swift(call, 'DELETE', segmentsOf(bucket), `${key}/${uploadId}/${n}`);
    discard(resp);
    if (resp.status >= 300 && resp.status !== 404) throw await swiftError(call, resp);
  }
  const resp = await swift(call, 'DELETE', segmentsOf(bucket), `${key}/${uploadId}`);
  discard(resp);
  if (resp.status >= 300 && resp.status !== 404) throw await swiftError(call, resp);
  return emptyResponse(204);
}

/** The parts a CompleteMultipartUpload document names, checked for order and ETag form. */
function requestedParts(root: XmlElement, uploadId: string): { number: number; etag: string }[] {
  if (root.name !== 'CompleteMultipartUpload') throw new S3Error('MalformedXML');
  const parts: { number: number; etag: string }[] = [];
  let previous = 0;
  for (const p of children(root, 'Part')) {
    const numberText = child(p, 'PartNumber')?.text.trim() ?? '';
    const etagNode = child(p, 'ETag');
    if (!/^\d+$/.test(numberText) || !etagNode) throw new S3Error('MalformedXML');
    const number = Number(numberText);
    if (number <= previous) throw new S3Error('InvalidPartOrder', undefined, { UploadId: uploadId });
    previous = number;
    const etag = etagNode.text.trim().replace(/^"|"$/g, '').toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(etag)) throw new S3Error('InvalidPart', undefined, { UploadId: uploadId, PartNumber: String(number), ETag: etagNode.text });
    parts.push({ number, etag });
  }
  if (parts.length === 0) throw new S3Error('MalformedXML');
  return parts;
}

function completeBody(call: S3Call, bucket: string, key: string, s3Etag: string): SwiftResponse {
  const host = call.req.headers.host ?? '';
  const location = `http://${host}/${uriEncode(bucket)}/${uriEncode(key, true)}`;
  return xmlResponse(toXml(el('CompleteMultipartUploadResult', [el('Location', location), el('Bucket', bucket), el('Key', key), el('ETag', quoteEtag(s3Etag))])));
}

/**
 * `POST /bucket/key?uploadId=U`: checks the named parts against those
 * uploaded (EntityTooSmall under 5 MiB but the last, InvalidPart on a
 * missing part or an ETag mismatch), writes the static large object with the
 * upload's content type and metadata, then removes the upload marker.
 * Completing again with the same parts answers the same.
 */
export async function completeMultipartUpload(call: S3Call, bucket: string, key: string): Promise<SwiftResponse> {
  const uploadId = call.params.get('uploadId') ?? '';
  const h = call.req.headers;
  if ((h['if-none-match'] !== undefined && h['if-none-match'] !== '*') || h['if-match'] !== undefined || h['if-modified-since'] !== undefined || h['if-unmodified-since'] !== undefined) {
    throw new S3Error('NotImplemented', 'Conditional uploads are not supported.');
  }
  await headBucket(call, bucket);
  const info = await uploadInfo(call, bucket, key, uploadId);
  const xml = await readXmlBody(call, MAX_COMPLETE_BODY);
  if (!xml) throw new S3Error('InvalidRequest', 'You must specify at least one part');
  const expectedMd5 = h['content-md5'];
  if (expectedMd5 !== undefined && createHash('md5').update(xml.raw).digest('base64') !== expectedMd5.trim()) {
    throw new S3Error('BadDigest', undefined, { ExpectedDigest: expectedMd5 });
  }
  const wanted = requestedParts(xml.root, uploadId);
  const md5s = createHash('md5');
  for (const p of wanted) md5s.update(Buffer.from(p.etag, 'hex'));
  const s3Etag = `${md5s.digest('hex')}-${wanted.length}`;
  if (!info.marker) {
    if (info.headers[S3_ETAG_SYSMETA] === s3Etag) return completeBody(call, bucket, key, s3Etag);
    throw noSuchUpload(uploadId);
  }

  const uploaded = await listParts(call, bucket, key, uploadId);
  const manifest: { path: string; etag: string; size_bytes: number }[] = [];
  wanted.forEach((p, i) => {
    const got = uploaded.get(p.number);
    if (!got || (got.hash ?? '').replace(/^"|"$/g, '') !== p.etag) {
      throw new S3Error('InvalidPart', undefined, { UploadId: uploadId, PartNumber: String(p.number), ETag: p.etag });
    }
    const size = got.bytes ?? 0;
    if (i < wanted.length - 1 && size < S3_LIMITS.min_segment_size) {
      throw new S3Error('EntityTooSmall', undefined, { ProposedSize: String(size), MinSizeAllowed: String(S3_LIMITS.min_segment_size), PartNumber: String(p.number), ETag: p.etag });
    }
    manifest.push({ path: `/${segmentsOf(bucket)}/${key}/${uploadId}/${p.number}`, etag: p.etag, size_bytes: size });
  });

  const headers: Record<string, string> = { accept: 'application/json' };
  for (const [name, value] of Object.entries(info.headers)) {
    if (name.startsWith('x-object-meta-') || (STORED_HEADERS.includes(name) && name !== 'content-type')) headers[name] = value;
  }
  headers['content-type'] = info.headers[UPLOAD_HAS_CONTENT_TYPE_SYSMETA] === 'yes' ? (info.headers[UPLOAD_CONTENT_TYPE_SYSMETA] ?? 'binary/octet-stream') : 'binary/octet-stream';
  headers[UPLOAD_ID_SYSMETA] = uploadId;
  headers[S3_ETAG_SYSMETA] = s3Etag;
  // SLO puts its own etag before the `;`; listings then carry the S3 ETag as a parameter.
  headers[CONTAINER_UPDATE_OVERRIDE_ETAG] = `; s3_etag=${s3Etag}`;
  const body = Buffer.from(JSON.stringify(manifest));
  const resp = await swift(call, 'PUT', bucket, key, { query: { 'multipart-manifest': 'put' }, headers, body });
  if (resp.status === 201 || resp.status === 202) {
    discard(resp);
  } else if (resp.status === 400) {
    const text = (await readBody(resp, 1024 * 1024).catch(() => Buffer.alloc(0))).toString('utf8');
    if (/too small|at least/i.test(text)) throw new S3Error('EntityTooSmall');
    if (/Etag Mismatch|404 Not Found/i.test(text)) throw new S3Error('InvalidPart', undefined, { UploadId: uploadId });
    throw new S3Error('InvalidRequest', text.replace(/<[^>]*>/g, '').trim() || undefined);
  } else {
    throw await swiftError(call, resp, { 404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucket }) });
  }
  const cleanup = await swift(call, 'DELETE', segmentsOf(bucket), `${key}/${uploadId}`);
  discard(cleanup);
  return completeBody(call, bucket, key, s3Etag);
}

/** `GET /bucket?uploads`: the uploads in progress, by key then upload id, with `prefix`, `delimiter`, markers, `max-uploads`. */
export async function listMultipartUploads(call: S3Call, bucket: string): Promise<SwiftResponse> {
  const p = (name: string): string | undefined => call.params.get(name);
  const encoding = p('encoding-type');
  if (encoding !== undefined && encoding !== 'url') throw invalidArgument('encoding-type', encoding, 'Invalid Encoding Method specified in Request');
  const enc = (s: string): string => (encoding === 'url' ? uriEncode(s, true) : s);
  const keyMarker = p('key-marker') ?? '';
  const uploadIdMarker = p('upload-id-marker') ?? '';
  const prefix = p('prefix') ?? '';
  const delimiter = p('delimiter');
  const maxUploads = intParam(call.params, 'max-uploads', 1000, 1000);
  await headBucket(call, bucket);
  let marker = '';
  if (keyMarker && uploadIdMarker) marker = `${keyMarker}/${uploadIdMarker}`;
  else if (keyMarker) marker = `${keyMarker}/~`;
  const uploads: { key: string; id: string; initiated: string }[] = [];
  const prefixes = new Set<string>();
  let truncated = false;
  try {
    outer: for await (const page of listContainer(call, segmentsOf(bucket), { marker: marker || undefined, prefix: prefix || undefined })) {
      for (const entry of page) {
        const name = entry.name ?? '';
        if (/\/\d+$/.test(name)) continue;
        const slash = name.lastIndexOf('/');
        if (slash < 0) continue;
        const key = name.slice(0, slash);
        if (delimiter) {
          const at = key.indexOf(delimiter, prefix.length);
          if (at >= 0) {
            prefixes.add(key.slice(0, at + delimiter.length));
            continue;
          }
        }
        if (uploads.length >= maxUploads) {
          truncated = true;
          break outer;
        }
        uploads.push({ key, id: name.slice(slash + 1), initiated: listingTime(entry.last_modified) });
      }
    }
  } catch (err) {
    if (!(err instanceof S3Error && err.code === 'NoSuchBucket')) throw err;
  }
  const last = uploads[uploads.length - 1];
  const fields: (XmlElement | null)[] = [
    el('Bucket', bucket),
    el('KeyMarker', keyMarker),
    el('UploadIdMarker', uploadIdMarker),
    el('NextKeyMarker', truncated && last ? last.key : ''),
    el('NextUploadIdMarker', truncated && last ? last.id : ''),
    delimiter !== undefined ? el('Delimiter', delimiter) : null,
    p('prefix') !== undefined ? el('Prefix', prefix) : null,
    el('MaxUploads', maxUploads),
    encoding !== undefined ? el('EncodingType', encoding) : null,
    el('IsTruncated', truncated ? 'true' : 'false'),
    ...uploads.map((u) =>
      el('Upload', [
        el('Key', enc(u.key)),
        el('UploadId', u.id),
        el('Initiator', [el('ID', call.owner), el('DisplayName', call.owner)]),
        el('Owner', [el('ID', call.owner), el('DisplayName', call.owner)]),
        el('StorageClass', 'STANDARD'),
        el('Initiated', u.initiated),
      ]),
    ),
    ...[...prefixes].sort().map((pre) => el('CommonPrefixes', [el('Prefix', enc(pre))])),
  ];
  return xmlResponse(toXml(el('ListMultipartUploadsResult', fields)));
}
