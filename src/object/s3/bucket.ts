import type { SwiftResponse } from '../proxy/pipeline.js';
import { S3Error, invalidArgument } from './errors.js';
import { intParam, quoteEtag, validBucketName } from './headers.js';
import {
  discard,
  emptyResponse,
  headBucket,
  listingTime,
  readJson,
  readXmlBody,
  S3_LIMITS,
  SEGMENTS_SUFFIX,
  swift,
  swiftError,
  xmlResponse,
  type S3Call,
} from './request.js';
import { uriEncode } from './signature.js';
import { child, el, toXml, type XmlElement } from './xml.js';

/** An entry of a Swift JSON container listing. */
export interface ListingEntry {
  name?: string;
  subdir?: string;
  hash?: string;
  bytes?: number;
  content_type?: string;
  last_modified?: string;
  s3_etag?: string;
  slo_etag?: string;
}

const MAX_CREATE_BUCKET_BODY = 10240;
const MAX_ACL_BODY = 200 * 1024;
const XSI = 'http://www.w3.org/2001/XMLSchema-instance';
/** Creation time shown for buckets whose listing has none (what Swift's s3api shows). */
const UNKNOWN_CREATION = '2009-02-03T16:45:09.000Z';

/** The S3 ETag of a listing entry: a multipart upload's own, an SLO's with `-N`, else the MD5. */
export function listingEtag(entry: ListingEntry): string {
  const [base = '', ...params] = (entry.hash ?? '').split(';').map((p) => p.trim());
  const param = (name: string): string | undefined => params.find((p) => p.startsWith(`${name}=`))?.slice(name.length + 1);
  const s3 = entry.s3_etag ?? param('s3_etag');
  if (s3) return quoteEtag(s3);
  const slo = entry.slo_etag ?? param('slo_etag');
  if (slo) return quoteEtag(`${slo.replace(/^"|"$/g, '')}-N`);
  return quoteEtag(base);
}

function owner(call: S3Call, name = 'Owner'): XmlElement {
  return el(name, [el('ID', call.owner), el('DisplayName', call.owner)]);
}

/** `GET /`: the caller's buckets (Swift containers whose names are valid bucket names). */
export async function listBuckets(call: S3Call): Promise<SwiftResponse> {
  const buckets: XmlElement[] = [];
  let marker = '';
  for (;;) {
    const resp = await swift(call, 'GET', null, null, { query: { format: 'json', marker: marker || undefined }, headers: { accept: 'application/json' } });
    if (resp.status === 204) {
      discard(resp);
      break;
    }
    if (resp.status !== 200) throw await swiftError(call, resp);
    const page = await readJson<{ name: string; last_modified?: string }[] | null>(resp);
    if (!page || page.length === 0) break;
    for (const c of page) {
      if (!validBucketName(c.name)) continue;
      buckets.push(el('Bucket', [el('Name', c.name), el('CreationDate', c.last_modified ? listingTime(c.last_modified) : UNKNOWN_CREATION)]));
    }
    marker = page[page.length - 1]?.name ?? '';
    if (page.length < 10000) break;
  }
  return xmlResponse(toXml(el('ListAllMyBucketsResult', [owner(call), el('Buckets', buckets)])));
}

/** `HEAD /bucket`. */
export async function headBucketOp(call: S3Call, bucket: string): Promise<SwiftResponse> {
  await headBucket(call, bucket);
  return emptyResponse(200, { 'x-amz-bucket-region': call.config.s3.region });
}

/** The Swift ACL headers of a canned S3 ACL (Swift has no per-object ACLs; `private` clears the bucket's). */
export function cannedAcl(value: string): Record<string, string> {
  switch (value) {
    case 'private':
    case 'bucket-owner-full-control':
    case 'bucket-owner-read':
      return { 'x-container-read': '', 'x-container-write': '' };
    case 'public-read':
      return { 'x-container-read': '.r:*,.rlistings', 'x-container-write': '' };
    case 'public-read-write':
      return { 'x-container-read': '.r:*,.rlistings', 'x-container-write': '.r:*' };
    case 'authenticated-read':
    case 'log-delivery-write':
      throw new S3Error('NotImplemented');
    default:
      throw invalidArgument('x-amz-acl', value);
  }
}

/** `PUT /bucket`: creates the container; the location constraint, when given, must be this region. */
export async function createBucket(call: S3Call, bucket: string): Promise<SwiftResponse> {
  const xml = await readXmlBody(call, MAX_CREATE_BUCKET_BODY);
  if (xml) {
    if (xml.root.name !== 'CreateBucketConfiguration') throw new S3Error('MalformedXML');
    const location = child(xml.root, 'LocationConstraint')?.text.trim() ?? '';
    const region = call.config.s3.region;
    if (location !== region && location !== region.toLowerCase()) throw new S3Error('InvalidLocationConstraint', undefined, { LocationConstraint: location });
  }
  const acl = call.req.headers['x-amz-acl'];
  const headers = acl === undefined ? {} : cannedAcl(acl);
  const resp = await swift(call, 'PUT', bucket, null, { headers });
  if (resp.status === 201) {
    discard(resp);
    return emptyResponse(200, { location: `/${bucket}` });
  }
  throw await swiftError(call, resp, { 202: () => new S3Error('BucketAlreadyOwnedByYou', undefined, { BucketName: bucket }) });
}

/** Lists a container page by page, as JSON. */
export async function* listContainer(call: S3Call, container: string, query: Record<string, string | undefined>): AsyncGenerator<ListingEntry[]> {
  let marker = query.marker;
  for (;;) {
    const resp = await swift(call, 'GET', container, null, { query: { ...query, format: 'json', marker }, headers: { accept: 'application/json' } });
    if (resp.status === 404) {
      discard(resp);
      throw new S3Error('NoSuchBucket', undefined, { BucketName: container });
    }
    if (resp.status === 204) {
      discard(resp);
      return;
    }
    if (resp.status !== 200) throw await swiftError(call, resp);
    const page = (await readJson<ListingEntry[] | null>(resp)) ?? [];
    if (page.length === 0) return;
    yield page;
    const last = page[page.length - 1];
    marker = last?.name ?? last?.subdir;
  }
}

/** `DELETE /bucket`: refuses a non-empty bucket, removes the bucket's unfinished upload parts, then the container. */
export async function deleteBucket(call: S3Call, bucket: string): Promise<SwiftResponse> {
  const head = await headBucket(call, bucket);
  if (Number(head.headers['x-container-object-count'] ?? '0') > 0) throw new S3Error('BucketNotEmpty', undefined, { BucketName: bucket });
  const segments = `${bucket}${SEGMENTS_SUFFIX}`;
  try {
    for await (const page of listContainer(call, segments, {})) {
      for (const entry of page) {
        if (!entry.name) continue;
        const resp = await swift(call, 'DELETE', segments, entry.name);
        discard(resp);
        if (resp.status >= 300 && resp.status !== 404) throw new S3Error('ServiceUnavailable');
      }
    }
    const resp = await swift(call, 'DELETE', segments, null);
    discard(resp);
    if (resp.status >= 300 && resp.status !== 404) throw new S3Error('ServiceUnavailable');
  } catch (err) {
    if (!(err instanceof S3Error && err.code === 'NoSuchBucket')) throw err;
  }
  const resp = await swift(call, 'DELETE', bucket, null);
  if (resp.status === 204) {
    discard(resp);
    return emptyResponse(204);
  }
  throw await swiftError(call, resp, {
    404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucket }),
    409: () => new S3Error('BucketNotEmpty', undefined, { BucketName: bucket }),
  });
}

function textParam(call: S3Call, name: string): string | undefined {
  return call.params.get(name);
}

/** What a ListObjects request asks for. */
interface ListingRequest {
  kind: 'v1' | 'v2' | 'versions';
  /** `max-keys` as asked (echoed), and as applied (at most 1000). */
  maxKeysAsked: number;
  maxKeys: number;
  url: boolean;
  prefix: string | undefined;
  delimiter: string | undefined;
  /** Where the Swift listing starts (marker, start-after, continuation token or key-marker). */
  marker: string | undefined;
}

function listingRequest(call: S3Call): ListingRequest {
  const maxKeysAsked = intParam(call.params, 'max-keys', S3_LIMITS.max_bucket_listing);
  const encoding = textParam(call, 'encoding-type');
  if (encoding !== undefined && encoding !== 'url') throw invalidArgument('encoding-type', encoding, 'Invalid Encoding Method specified in Request');
  const listType = textParam(call, 'list-type') ?? '1';
  const versions = call.params.has('versions');
  if (!versions && !/^\d+$/.test(listType)) throw invalidArgument('list-type', listType, 'Argument list-type must be an integer');
  const kind = versions ? 'versions' : Number(listType) === 2 ? 'v2' : 'v1';
  let marker: string | undefined;
  if (kind === 'versions') {
    marker = textParam(call, 'key-marker');
    const versionMarker = textParam(call, 'version-id-marker');
    if (versionMarker !== undefined && marker === undefined) throw invalidArgument('version-id-marker', versionMarker, 'A version-id marker cannot be specified without a key marker.');
  } else if (kind === 'v2') {
    marker = textParam(call, 'start-after');
    const token = textParam(call, 'continuation-token');
    if (token !== undefined) {
      const decoded = Buffer.from(token, 'base64');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(token) || decoded.toString('base64').replace(/=+$/, '') !== token.replace(/=+$/, '')) {
        throw invalidArgument('continuation-token', token, 'The continuation token provided is incorrect');
      }
      marker = decoded.toString('utf8');
    }
  } else {
    marker = textParam(call, 'marker');
  }
  return {
    kind,
    maxKeysAsked,
    maxKeys: Math.min(maxKeysAsked, S3_LIMITS.max_bucket_listing),
    url: encoding === 'url',
    prefix: textParam(call, 'prefix'),
    delimiter: textParam(call, 'delimiter'),
    marker,
  };
}

/** The header elements of a listing result, before its entries. */
function listingHead(call: S3Call, bucket: string, r: ListingRequest, count: number, truncated: boolean, lastName: string): XmlElement[] {
  const enc = (s: string): string => (r.url ? uriEncode(s, true) : s);
  const head: XmlElement[] = [el('Name', bucket), el('Prefix', r.prefix ? enc(r.prefix) : '')];
  if (r.kind === 'versions') {
    head.push(el('KeyMarker', r.marker ? enc(r.marker) : ''), el('VersionIdMarker', textParam(call, 'version-id-marker') ?? ''));
    if (truncated) head.push(el('NextKeyMarker', enc(lastName)), el('NextVersionIdMarker', 'null'));
  } else if (r.kind === 'v2') {
    if (truncated) head.push(el('NextContinuationToken', Buffer.from(lastName, 'utf8').toString('base64')));
    const token = textParam(call, 'continuation-token');
    if (token !== undefined) head.push(el('ContinuationToken', token));
    const startAfter = textParam(call, 'start-after');
    if (startAfter !== undefined) head.push(el('StartAfter', enc(startAfter)));
    head.push(el('KeyCount', count));
  } else {
    head.push(el('Marker', r.marker ? enc(r.marker) : ''));
    if (truncated && r.delimiter) head.push(el('NextMarker', enc(lastName)));
  }
  head.push(el('MaxKeys', r.maxKeysAsked));
  if (r.delimiter) head.push(el('Delimiter', enc(r.delimiter)));
  if (r.url) head.push(el('EncodingType', 'url'));
  head.push(el('IsTruncated', truncated ? 'true' : 'false'));
  return head;
}

/** `GET /bucket` (ListObjects v1, v2 with `list-type=2`, and ListObjectVersions with `versions`: every object is its only version). */
export async function listObjects(call: S3Call, bucket: string): Promise<SwiftResponse> {
  const r = listingRequest(call);
  const resp = await swift(call, 'GET', bucket, null, {
    query: { format: 'json', limit: r.maxKeys + 1, prefix: r.prefix, delimiter: r.delimiter, marker: r.marker || undefined },
    headers: { accept: 'application/json' },
  });
  if (resp.status === 204) discard(resp);
  else if (resp.status !== 200) throw await swiftError(call, resp, { 404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucket }) });
  let entries = resp.status === 204 ? [] : ((await readJson<ListingEntry[] | null>(resp)) ?? []);
  const truncated = r.maxKeys > 0 && entries.length > r.maxKeys;
  entries = entries.slice(0, r.maxKeys);
  const last = entries[entries.length - 1];
  const head = listingHead(call, bucket, r, entries.length, truncated, last?.name ?? last?.subdir ?? '');

  const enc = (s: string): string => (r.url ? uriEncode(s, true) : s);
  const withOwner = r.kind !== 'v2' || ['true', '1', 'yes', 'on'].includes((textParam(call, 'fetch-owner') ?? '').toLowerCase());
  const items = entries.map((entry) => {
    if (entry.subdir !== undefined) return el('CommonPrefixes', [el('Prefix', enc(entry.subdir))]);
    const fields: XmlElement[] = [el('Key', enc(entry.name ?? ''))];
    if (r.kind === 'versions') fields.push(el('VersionId', 'null'), el('IsLatest', 'true'));
    fields.push(el('LastModified', listingTime(entry.last_modified)), el('ETag', listingEtag(entry)), el('Size', entry.bytes ?? 0));
    if (withOwner) fields.push(owner(call));
    fields.push(el('StorageClass', 'STANDARD'));
    return el(r.kind === 'versions' ? 'Version' : 'Contents', fields);
  });
  return xmlResponse(toXml(el(r.kind === 'versions' ? 'ListVersionsResult' : 'ListBucketResult', [...head, ...items])));
}

/** `GET /bucket?location`: empty for us-east-1, as S3 answers. */
export async function getBucketLocation(call: S3Call, bucket: string): Promise<SwiftResponse> {
  await headBucket(call, bucket);
  const region = call.config.s3.region;
  return xmlResponse(toXml(el('LocationConstraint', region === 'us-east-1' ? '' : region)));
}

function grant(type: 'CanonicalUser' | 'Group', who: string, permission: string): XmlElement {
  const grantee = type === 'CanonicalUser' ? [el('ID', who), el('DisplayName', who)] : [el('URI', who)];
  return el('Grant', [el('Grantee', grantee, { 'xmlns:xsi': XSI, 'xsi:type': type }), el('Permission', permission)]);
}

/** `GET ?acl` of a bucket or object: the owner's FULL_CONTROL, and the public grants the bucket's Swift ACLs make. */
export async function getAcl(call: S3Call, bucket: string, key: string | null): Promise<SwiftResponse> {
  const head = await headBucket(call, bucket);
  if (key !== null) {
    const obj = await swift(call, 'HEAD', bucket, key);
    discard(obj);
    if (obj.status === 404) throw new S3Error('NoSuchKey', undefined, { Key: key });
    if (obj.status >= 300) throw await swiftError(call, obj);
  }
  const grants = [grant('CanonicalUser', call.owner, 'FULL_CONTROL')];
  const everyone = 'http://acs.amazonaws.com/groups/global/AllUsers';
  if ((head.headers['x-container-read'] ?? '').split(',').some((g) => g.trim() === '.r:*')) grants.push(grant('Group', everyone, 'READ'));
  if ((head.headers['x-container-write'] ?? '').split(',').some((g) => g.trim() === '.r:*')) grants.push(grant('Group', everyone, 'WRITE'));
  return xmlResponse(toXml(el('AccessControlPolicy', [owner(call), el('AccessControlList', grants)])));
}

/** The canned ACL an AccessControlPolicy document amounts to (the only ACLs a Swift bucket can have). */
function aclFromXml(root: XmlElement): string {
  if (root.name !== 'AccessControlPolicy') throw new S3Error('MalformedACLError');
  let acl = 'unknown';
  for (const g of child(root, 'AccessControlList')?.children.filter((c) => c.name === 'Grant') ?? []) {
    const permission = child(g, 'Permission')?.text.trim();
    const grantee = child(g, 'Grantee');
    const type = grantee?.attrs['xsi:type'] ?? Object.entries(grantee?.attrs ?? {}).find(([k]) => k.endsWith(':type'))?.[1];
    if (permission === 'FULL_CONTROL' && type === 'CanonicalUser' && acl !== 'public-read' && acl !== 'public-read-write') acl = 'private';
    else if (permission === 'READ' && type === 'Group' && acl !== 'public-read-write') acl = 'public-read';
    else if (permission === 'WRITE' && type === 'Group') acl = 'public-read-write';
    else throw new S3Error('NotImplemented');
  }
  if (acl === 'unknown') throw new S3Error('MalformedACLError');
  return acl;
}

/** `PUT /bucket?acl`: a canned `x-amz-acl` or an AccessControlPolicy, as Swift container ACLs. Objects have no ACLs of their own (501). */
export async function putAcl(call: S3Call, bucket: string, key: string | null): Promise<SwiftResponse> {
  if (key !== null) throw new S3Error('NotImplemented', 'Object ACLs are not supported: access is granted per bucket.');
  const xml = await readXmlBody(call, MAX_ACL_BODY);
  const canned = call.req.headers['x-amz-acl'];
  if (xml && canned !== undefined) throw new S3Error('UnexpectedContent');
  if (!xml && canned === undefined) throw new S3Error('MissingSecurityHeader', undefined, { MissingHeaderName: 'x-amz-acl' });
  const headers = cannedAcl(canned ?? aclFromXml(xml?.root ?? el('none')));
  const resp = await swift(call, 'POST', bucket, null, { headers });
  if (resp.status === 204 || resp.status === 200) {
    discard(resp);
    return emptyResponse(200);
  }
  throw await swiftError(call, resp, { 404: () => new S3Error('NoSuchBucket', undefined, { BucketName: bucket }) });
}

/** `GET /bucket?versioning`: never enabled here (an empty configuration, as S3 shows for a bucket that never had it). */
export async function getVersioning(call: S3Call, bucket: string): Promise<SwiftResponse> {
  await headBucket(call, bucket);
  return xmlResponse(toXml(el('VersioningConfiguration')));
}

/** `GET ?tagging`: no tags are kept, so the set is empty. */
export async function getTagging(call: S3Call, bucket: string, key: string | null): Promise<SwiftResponse> {
  await headBucket(call, bucket);
  if (key !== null) {
    const obj = await swift(call, 'HEAD', bucket, key);
    discard(obj);
    if (obj.status === 404) throw new S3Error('NoSuchKey', undefined, { Key: key });
    if (obj.status >= 300) throw await swiftError(call, obj);
  }
  return xmlResponse(toXml(el('Tagging', [el('TagSet')])));
}

/** `GET /bucket?logging`: logging is never on. */
export async function getLogging(call: S3Call, bucket: string): Promise<SwiftResponse> {
  await headBucket(call, bucket);
  return xmlResponse(toXml(el('BucketLoggingStatus')));
}
