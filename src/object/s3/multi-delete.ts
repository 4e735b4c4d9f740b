import { createHash } from 'node:crypto';
import { CONSTRAINTS } from '../common.js';
import type { SwiftResponse } from '../proxy/pipeline.js';
import { S3Error } from './errors.js';
import { deleteKey } from './object.js';
import { headBucket, readXmlBody, S3_LIMITS, xmlResponse, type S3Call } from './request.js';
import { child, children, el, toXml, type XmlElement } from './xml.js';

/** How many keys are deleted at once. */
const CONCURRENCY = 4;

/**
 * `POST /bucket?delete` (DeleteObjects): up to 1000 keys from a `Delete`
 * document whose Content-MD5 (or `x-amz-checksum-*`, checked as the body
 * streamed) is required; each key is deleted as DeleteObject would, and the
 * answer lists what was deleted (unless `Quiet`) and what failed.
 */
export async function deleteObjects(call: S3Call, bucket: string): Promise<SwiftResponse> {
  const h = call.req.headers;
  const hasChecksum = Object.keys(h).some((k) => k.startsWith('x-amz-checksum-') && k !== 'x-amz-checksum-algorithm' && k !== 'x-amz-checksum-type') || h['x-amz-trailer'] !== undefined;
  if (h['content-md5'] === undefined && !hasChecksum) throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-MD5 OR x-amz-checksum-*');
  const max = Math.min(2 * S3_LIMITS.max_multi_delete_objects * CONSTRAINTS.max_object_name_length, 10 * 1024 * 1024);
  const xml = await readXmlBody(call, max);
  if (!xml) throw new S3Error('MissingRequestBodyError');
  if (h['content-md5'] !== undefined && createHash('md5').update(xml.raw).digest('base64') !== h['content-md5'].trim()) {
    throw new S3Error('BadDigest', undefined, { ExpectedDigest: h['content-md5'] });
  }
  if (xml.root.name !== 'Delete') throw new S3Error('MalformedXML');
  const quiet = (child(xml.root, 'Quiet')?.text.trim().toLowerCase() ?? '') === 'true';
  const keys: { key: string; version: string | undefined }[] = [];
  for (const o of children(xml.root, 'Object')) {
    const key = child(o, 'Key');
    if (!key) throw new S3Error('MalformedXML');
    if (key.text === '') throw new S3Error('UserKeyMustBeSpecified');
    keys.push({ key: key.text, version: child(o, 'VersionId')?.text });
  }
  if (keys.length === 0 || keys.length > S3_LIMITS.max_multi_delete_objects) throw new S3Error('MalformedXML');

  try {
    await headBucket(call, bucket);
  } catch (err) {
    if (err instanceof S3Error && err.code === 'AccessDenied') {
      return xmlResponse(toXml(el('DeleteResult', keys.map((k) => el('Error', [el('Key', k.key), el('Code', 'AccessDenied'), el('Message', err.message)])))));
    }
    throw err;
  }

  const results: XmlElement[] = new Array<XmlElement>(keys.length);
  let index = 0;
  const worker = async (): Promise<void> => {
    for (let i = index++; i < keys.length; i = index++) {
      const { key, version } = keys[i] ?? { key: '', version: undefined };
      try {
        if (version !== undefined && version !== 'null') throw new S3Error('NotImplemented', 'Object versions are not supported.');
        await deleteKey(call, bucket, key);
        results[i] = el('Deleted', [el('Key', key)]);
      } catch (err) {
        const e = err instanceof S3Error ? err : new S3Error('InternalError');
        if (!(err instanceof S3Error)) call.ctx.log.error({ err, request_id: call.requestId, bucket, key }, 'S3: deleting a key of a DeleteObjects failed');
        results[i] = el('Error', [el('Key', key), el('Code', e.code), el('Message', e.message)]);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, keys.length) }, worker));
  return xmlResponse(toXml(el('DeleteResult', results.filter((r) => !(quiet && r.name === 'Deleted')))));
}
