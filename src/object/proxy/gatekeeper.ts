import { checkClientContentType, splitSwiftPath } from './constraints.js';
import type { Middleware } from './pipeline.js';

/**
 * Swift's `gatekeeper`: clients may neither send nor see system metadata,
 * `X-Backend-*` headers or the storage servers' update headers; a client's
 * `X-Timestamp` is kept aside as `X-Backend-Inbound-X-Timestamp` (only the
 * proxy gives timestamps). Middlewares below it may use all of these.
 * It also refuses a client's object PUT with `swift_*` Content-Type
 * parameters (Swift's `check_content_type`), which middlewares below may set.
 */
const EXCLUDED = /^(x-(account|container|object)-sysmeta-|x-object-transient-sysmeta-|x-backend|x-account-(host|device|partition)$|x-container-(host|device|partition|root-db-state)$|x-delete-at-(host|device|partition|container)$)/i;

/** Whether a header must not cross the gatekeeper in either direction. */
export function isGatekept(name: string): boolean {
  return EXCLUDED.test(name);
}

/** The gatekeeper middleware (see the module comment). */
export const gatekeeper: Middleware = {
  name: 'gatekeeper',
  wrap(next) {
    return async (req) => {
      for (const name of Object.keys(req.headers)) if (EXCLUDED.test(name)) delete req.headers[name];
      const timestamp = req.headers['x-timestamp'];
      if (timestamp !== undefined) {
        delete req.headers['x-timestamp'];
        req.headers['x-backend-inbound-x-timestamp'] = timestamp;
      }
      if (req.method === 'PUT' && splitSwiftPath(req.path)?.object) {
        const invalid = checkClientContentType(req.headers['content-type']);
        if (invalid) return invalid;
      }
      const response = await next(req);
      for (const name of Object.keys(response.headers)) if (EXCLUDED.test(name)) delete response.headers[name];
      return response;
    };
  },
};
