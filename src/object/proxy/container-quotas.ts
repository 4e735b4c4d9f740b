import { isSuccess, splitSwiftPath, swiftError } from './feature-util.js';
import type { Middleware, SwiftRequest, SwiftResponse } from './pipeline.js';
import { clearContainerInfo } from './info-cache.js';
import { containerInfo } from './resource-info.js';

/**
 * Swift's `container_quotas`: `X-Container-Meta-Quota-Bytes` and
 * `X-Container-Meta-Quota-Count` (set by whoever may write the container's
 * metadata) cap what object PUTs may add; a PUT over either is a 413
 * `Upload exceeds quota.`. The check uses the declared Content-Length, so a
 * chunked upload is only refused once the container is already full.
 */

const DIGITS = /^\d+$/;

/** 413, or what authorization says first: a caller who may not write the container learns nothing of its quota. */
async function overQuota(req: SwiftRequest, writeAcl: string): Promise<SwiftResponse> {
  const authorize = req.env.authorize;
  // A temp URL or form post was authorized above (by its signature).
  if (authorize && !req.env.authorizeOverride) {
    const denied = await authorize(req, { write: writeAcl });
    if (denied) return denied;
  }
  return swiftError(413, req.method, 'Upload exceeds quota.');
}

/** Swift's `container_quotas` middleware. */
export const containerQuotas: Middleware = {
  name: 'container_quotas',
  wrap(next, ctx) {
    ctx.registerInfo('container_quotas', {});
    return async (req) => {
      const parts = splitSwiftPath(req.path);
      if (!parts || parts.container === undefined) return next(req);
      if (!parts.object && (req.method === 'PUT' || req.method === 'POST')) {
        const bytes = req.headers['x-container-meta-quota-bytes'];
        if (bytes && !DIGITS.test(bytes)) return swiftError(400, req.method, 'Invalid bytes quota.');
        const count = req.headers['x-container-meta-quota-count'];
        if (count && !DIGITS.test(count)) return swiftError(400, req.method, 'Invalid count quota.');
      } else if (parts.object && req.method === 'PUT') {
        let info = await containerInfo(ctx, req, parts.account, parts.container);
        if (!isSuccess(info.status)) return next(req); // the PUT will answer 404 itself
        if (info.meta['quota-bytes'] !== undefined || info.meta['quota-count'] !== undefined) {
          // Swift checks against info up to a minute old; a container with a quota is asked afresh, so the quota holds.
          clearContainerInfo(ctx, parts.account, parts.container);
          info = await containerInfo(ctx, req, parts.account, parts.container);
          if (!isSuccess(info.status)) return next(req);
        }
        const quotaBytes = info.meta['quota-bytes'];
        if (quotaBytes !== undefined && DIGITS.test(quotaBytes)) {
          const length = Number(req.headers['content-length'] ?? '0') || 0;
          if (Number(quotaBytes) < info.bytes + length) return overQuota(req, info.writeAcl ?? '');
        }
        const quotaCount = info.meta['quota-count'];
        if (quotaCount !== undefined && DIGITS.test(quotaCount)) {
          if (Number(quotaCount) < info.objectCount + 1) return overQuota(req, info.writeAcl ?? '');
        }
      }
      return next(req);
    };
  },
};
