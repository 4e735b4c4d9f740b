import { pipeline, type Readable } from 'node:stream';
import type { Handler, Middleware, ProxyContext, SwiftRequest, SwiftResponse } from '../proxy/pipeline.js';
import { readS3Signature, S3Authenticator, STREAMING_PAYLOADS, type S3Principal, type S3Signature } from './auth.js';
import { S3BodyStream, type S3BodyOptions } from './body.js';
import { createBucket, deleteBucket, getAcl, getBucketLocation, getLogging, getTagging, getVersioning, headBucketOp, listBuckets, listObjects, putAcl } from './bucket.js';
import { CHECKSUM_HEADERS, validChecksumValue } from './checksums.js';
import { errorBody, invalidArgument, S3Error } from './errors.js';
import { validBucketName } from './headers.js';
import { deleteObjects } from './multi-delete.js';
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, listMultipartUploads, listUploadParts, uploadPart } from './multipart.js';
import { deleteObject, getObject, putObject } from './object.js';
import { S3_LIMITS, type S3Call } from './request.js';
import { parseQuery, signingKey } from './signature.js';

/** Sub-resources of S3 this API does not do: 501 NotImplemented, as Swift's s3api answers. */
const UNSUPPORTED = [
  'notification', 'policy', 'policyStatus', 'publicAccessBlock', 'requestPayment', 'torrent', 'website', 'cors', 'restore', 'lifecycle', 'replication',
  'encryption', 'object-lock', 'ownershipControls', 'analytics', 'metrics', 'inventory', 'intelligent-tiering', 'accelerate', 'legal-hold', 'retention',
  'attributes', 'select',
];
/** Headers that would let an S3 client reach Swift features behind S3's back. */
const AUTH_HEADERS = ['x-auth-token', 'x-storage-token', 'x-service-token'];

/** Where the bucket and key of a path-style request are: `/bucket/key`. */
function splitPath(path: string): { bucket: string | null; key: string | null } {
  const rest = path.replace(/^\//, '');
  if (rest === '') return { bucket: null, key: null };
  const slash = rest.indexOf('/');
  if (slash < 0) return { bucket: rest, key: null };
  const key = rest.slice(slash + 1);
  return { bucket: rest.slice(0, slash), key: key === '' ? null : key };
}

/** Refuses what S3 requests may carry but this store cannot honour (before anything is read or written). */
function checkHeaders(req: SwiftRequest): void {
  const h = req.headers;
  const length = h['content-length'];
  if (length !== undefined && !/^\d+$/.test(length.trim())) throw invalidArgument('Content-Length', length);
  if (req.method === 'PUT' && (h['if-match'] !== undefined || h['if-modified-since'] !== undefined || h['if-unmodified-since'] !== undefined || (h['if-none-match'] !== undefined && h['if-none-match'] !== '*'))) {
    throw new S3Error('NotImplemented', 'Conditional object PUTs are not supported.');
  }
  const directive = h['x-amz-metadata-directive'];
  if (directive !== undefined && directive !== 'COPY' && directive !== 'REPLACE') throw invalidArgument('x-amz-metadata-directive', directive, 'Unknown metadata directive.');
  const storageClass = h['x-amz-storage-class'];
  if (storageClass !== undefined && storageClass !== 'STANDARD') throw new S3Error('InvalidStorageClass', undefined, { StorageClassRequested: storageClass });
  if (h['x-amz-mfa'] !== undefined) throw new S3Error('NotImplemented', 'MFA Delete is not supported.');
  const sse = h['x-amz-server-side-encryption'];
  if (sse !== undefined) {
    if (sse !== 'aws:kms' && sse !== 'AES256') throw invalidArgument('x-amz-server-side-encryption', sse, 'The encryption method specified is not supported');
    throw new S3Error('NotImplemented', 'Server-side encryption is not supported.');
  }
  if (h['x-amz-website-redirect-location'] !== undefined) throw new S3Error('NotImplemented', 'Website redirection is not supported.');
  if (h['x-amz-tagging'] !== undefined) throw new S3Error('NotImplemented', 'Object tagging is not supported.');
}

/** The checksum a request declares (header or trailer), checked for form; null when none. */
function declaredChecksum(req: SwiftRequest): { algorithm: string; value?: string; trailer?: string } | null {
  const h = req.headers;
  const inHeaders = Object.keys(h).filter((k) => k.startsWith('x-amz-checksum-') && k !== 'x-amz-checksum-algorithm' && k !== 'x-amz-checksum-type');
  if (inHeaders.some((k) => !Object.values(CHECKSUM_HEADERS).includes(k))) throw new S3Error('InvalidRequest', 'The algorithm type you specified in x-amz-checksum- header is invalid.');
  const trailerText = (h['x-amz-trailer'] ?? '').trim();
  const trailers = trailerText ? trailerText.replace(/,$/, '').split(',').map((t) => t.trim().toLowerCase()) : [];
  if (trailers.some((t) => !Object.values(CHECKSUM_HEADERS).includes(t))) throw new S3Error('InvalidRequest', 'The value specified in the x-amz-trailer header is not supported');
  if (inHeaders.length > 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  if (inHeaders.length + trailers.length > 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header');
  const name = inHeaders[0] ?? trailers[0];
  const sdk = h['x-amz-sdk-checksum-algorithm'];
  if (!name) {
    if (sdk) throw new S3Error('InvalidRequest', 'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.');
    return null;
  }
  const algorithm = name.slice('x-amz-checksum-'.length);
  if (sdk && sdk.toLowerCase().replace(/-/g, '') !== algorithm) throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
  if (inHeaders[0]) {
    const value = h[name] ?? '';
    if (!validChecksumValue(algorithm, value)) throw new S3Error('InvalidRequest', `Value for ${name} header is invalid.`);
    return { algorithm, value };
  }
  return { algorithm, trailer: name };
}

/**
 * Wraps the request body in the stream that checks it (and decodes
 * `aws-chunked`), and rewrites the headers that described the encoded body.
 * Returns the payload stream and its length.
 */
function prepareBody(req: SwiftRequest, sig: S3Signature, principal: S3Principal, verifyChecksum: boolean): { stream: S3BodyStream | null; length: number | null } {
  const h = req.headers;
  const checksum = declaredChecksum(req);
  if (!req.body) return { stream: null, length: null };
  const payload = sig.payloadHash ?? h['x-amz-content-sha256'] ?? null;
  const streaming = payload !== null && STREAMING_PAYLOADS.has(payload);
  if (checksum?.trailer && !streaming) throw new S3Error('MalformedTrailerError');
  let options: S3BodyOptions;
  let length: number | null;
  if (streaming) {
    const decoded = h['x-amz-decoded-content-length'];
    if (decoded === undefined || !/^\d+$/.test(decoded.trim())) throw new S3Error('MissingContentLength');
    if (payload.includes('ECDSA')) throw new S3Error('NotImplemented', `Don't know how to validate ${payload} streams`);
    const signed = payload !== 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
    if (signed && (sig.version !== 4 || sig.presigned || !sig.scope || !sig.amzDate)) throw new S3Error('XAmzContentSHA256Mismatch');
    if (signed && principal.secret === null) throw new S3Error('NotImplemented', 'Transferring payloads in multiple chunks using aws-chunked is not supported.');
    length = Number(decoded);
    const trailers = [...(checksum?.trailer ? [checksum.trailer] : []), ...(payload.endsWith('-TRAILER') && signed ? ['x-amz-trailer-signature'] : [])];
    options = {
      encoding: 'chunked',
      length,
      signing: signed && sig.scope && sig.amzDate && principal.secret !== null ? { key: signingKey(principal.secret, sig.scope), amzDate: sig.amzDate, scope: sig.scope, seedSignature: sig.signature } : null,
      trailers,
      checksum: verifyChecksum ? checksum : null,
    };
    // What described the encoded body no longer applies to the payload passed on.
    const encodings = (h['content-encoding'] ?? '').split(',').map((e) => e.trim()).filter((e) => e && e !== 'aws-chunked');
    if (encodings.length > 0) h['content-encoding'] = encodings.join(', ');
    else delete h['content-encoding'];
  } else {
    const contentLength = h['content-length'];
    length = contentLength === undefined ? null : Number(contentLength);
    options = {
      encoding: 'plain',
      length,
      ...(payload && /^[0-9a-fA-F]{64}$/.test(payload) ? { sha256: payload } : {}),
      checksum: verifyChecksum ? checksum : null,
    };
  }
  const stream = new S3BodyStream(options);
  pipeline(req.body, stream, () => undefined);
  return { stream, length };
}

function methodNotAllowed(method: string, resource: string): S3Error {
  return new S3Error('MethodNotAllowed', undefined, { Method: method, ResourceType: resource });
}

function needKey(key: string | null): string {
  if (key === null) throw new S3Error('InvalidRequest', 'A key must be specified');
  return key;
}

/** The operation of a request naming a sub-resource (`?acl`, `?uploads`, ...), or null when it names none. */
function subresourceOperation(call: S3Call, bucket: string): Promise<SwiftResponse> | null {
  const { method, key, params } = call;
  if (params.has('acl')) {
    if (method === 'GET') return getAcl(call, bucket, key);
    if (method === 'PUT') return putAcl(call, bucket, key);
    throw methodNotAllowed(method, 'ACL');
  }
  if (params.has('delete') && method === 'POST') return deleteObjects(call, bucket);
  if (params.has('location')) {
    if (method === 'GET') return getBucketLocation(call, bucket);
    throw methodNotAllowed(method, 'LOCATION');
  }
  if (params.has('logging')) {
    if (method === 'GET') return getLogging(call, bucket);
    if (method === 'PUT') throw new S3Error('NotImplemented', 'The requested resource is not implemented');
    throw methodNotAllowed(method, 'LOGGING_STATUS');
  }
  if (params.has('partNumber') && method === 'PUT') return uploadPart(call, bucket, needKey(key));
  if (params.has('uploadId') && !params.has('partNumber')) {
    const k = needKey(key);
    if (method === 'GET') return listUploadParts(call, bucket, k);
    if (method === 'DELETE') return abortMultipartUpload(call, bucket, k);
    if (method === 'POST') return completeMultipartUpload(call, bucket, k);
    throw methodNotAllowed(method, 'UPLOAD');
  }
  if (params.has('uploads')) {
    if (method === 'GET') {
      if (key !== null) throw new S3Error('InvalidRequest', 'Key is not expected for the GET method ?uploads subresource');
      return listMultipartUploads(call, bucket);
    }
    if (method === 'POST') return createMultipartUpload(call, bucket, needKey(key));
    throw methodNotAllowed(method, 'UPLOADS');
  }
  if (params.has('versioning')) {
    if (method === 'GET') return getVersioning(call, bucket);
    if (method === 'PUT') throw new S3Error('NotImplemented', 'Object versioning is not supported.');
    throw methodNotAllowed(method, 'VERSIONING');
  }
  if (params.has('tagging')) {
    if (method === 'GET') return getTagging(call, bucket, key);
    throw new S3Error('NotImplemented', 'The requested resource is not implemented');
  }
  return null;
}

/** Picks the S3 operation of a request (Swift s3api's controller choice) and runs it. */
function dispatch(call: S3Call): Promise<SwiftResponse> {
  const { method, bucket, key, params } = call;
  if (UNSUPPORTED.some((p) => params.has(p))) throw new S3Error('NotImplemented', 'The requested resource is not implemented');
  if (bucket === null) {
    if (method === 'GET') return listBuckets(call);
    throw methodNotAllowed(method, 'SERVICE');
  }
  const sub = subresourceOperation(call, bucket);
  if (sub) return sub;
  if (key !== null) {
    switch (method) {
      case 'GET':
      case 'HEAD':
        return getObject(call, bucket, key);
      case 'PUT':
        return putObject(call, bucket, key);
      case 'DELETE':
        return deleteObject(call, bucket, key);
      case 'POST':
        throw new S3Error('NotImplemented', 'The requested resource is not implemented');
      default:
        throw methodNotAllowed(method, 'OBJECT');
    }
  }
  switch (method) {
    case 'HEAD':
      return headBucketOp(call, bucket);
    case 'GET':
      return listObjects(call, bucket);
    case 'PUT':
      return createBucket(call, bucket);
    case 'DELETE':
      return deleteBucket(call, bucket);
    case 'POST':
      throw new S3Error('NotImplemented', 'The requested resource is not implemented');
    default:
      throw methodNotAllowed(method, 'BUCKET');
  }
}

/** The S3 answer of an error: its XML body (none for HEAD) and S3's request id headers. */
function errorResponse(err: S3Error, req: SwiftRequest): SwiftResponse {
  const head = req.method === 'HEAD';
  const xml = head ? '' : errorBody(err, req.path, req.env.requestId);
  return {
    status: err.status,
    headers: { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(xml)), ...err.headers },
    body: head ? null : xml,
  };
}

/** The S3 middleware's handler over the rest of the pipeline. */
function s3Handler(next: Handler, ctx: ProxyContext): Handler {
  const authenticator = new S3Authenticator(ctx);
  return async (req) => {
    let sig: S3Signature | null;
    let resp: SwiftResponse;
    try {
      sig = readS3Signature(req, ctx.config.s3.region);
      if (sig === null) return await next(req);
      resp = await handle(req, sig);
    } catch (err) {
      if (!(err instanceof S3Error)) {
        ctx.log.error({ err, request_id: req.env.requestId, method: req.method, path: req.path }, 'S3: request failed');
      }
      resp = errorResponse(err instanceof S3Error ? err : new S3Error('InternalError'), req);
    }
    resp.headers['x-amz-request-id'] = req.env.requestId;
    resp.headers['x-amz-id-2'] = req.env.requestId;
    return resp;
  };

  async function handle(req: SwiftRequest, sig: S3Signature): Promise<SwiftResponse> {
    const { bucket, key } = splitPath(req.path);
    if (bucket !== null && !validBucketName(bucket)) throw new S3Error('InvalidBucketName', undefined, { BucketName: bucket });
    checkHeaders(req);
    const principal = await authenticator.authenticate(sig, req.env.requestId);
    const identity = principal.identity;
    if (!identity.projectId) throw new S3Error('AccessDenied');
    req.env.identity = identity;
    for (const name of AUTH_HEADERS) delete req.headers[name];
    const params = new Map<string, string>();
    for (const [k, v] of parseQuery(req.query)) if (!params.has(k)) params.set(k, v);
    const verifyChecksum = req.method === 'PUT' || (req.method === 'POST' && params.has('delete'));
    const withBody = req.method === 'PUT' || req.method === 'POST';
    const body = withBody ? prepareBody(req, sig, principal, verifyChecksum) : { stream: null, length: null };
    if (!withBody && req.body) (req.body as Readable).resume();
    const call: S3Call = {
      req,
      ctx,
      config: ctx.config,
      next,
      method: req.method,
      bucket,
      key,
      params,
      body: body.stream,
      bodyStream: body.stream,
      contentLength: body.length,
      account: `${ctx.config.reseller_prefix}${identity.projectId}`,
      owner: `${identity.projectName ?? identity.projectId}:${identity.userName}`,
      requestId: req.env.requestId,
      resource: req.path,
    };
    return dispatch(call);
  }
}

/**
 * Swift's s3api and s3token in one middleware, before auth in the pipeline:
 * a request signed the AWS way (SigV4 or SigV2, in `Authorization` or a
 * presigned query) is checked against identity's EC2 credentials, becomes
 * the credential's user on its project (`env.identity`), and is carried out
 * as Swift requests on `AUTH_<project_id>` through the rest of the pipeline
 * (ACLs, quotas and SLO apply); the answers are S3's (XML, S3 error codes,
 * `x-amz-*` headers). Any other request passes through untouched.
 */
export const s3api: Middleware = {
  name: 's3api',
  wrap(next, ctx) {
    if (!ctx.config.s3.enabled) return next;
    ctx.registerInfo('s3api', { ...S3_LIMITS });
    return s3Handler(next, ctx);
  },
};
