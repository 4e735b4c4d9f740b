import type { Middleware } from './pipeline.js';

/** Swift's `healthcheck`: `/healthcheck` answers `200 OK` (text/plain) without touching storage or auth. */
export const healthcheck: Middleware = {
  name: 'healthcheck',
  wrap(next) {
    return async (req) => {
      if (req.path !== '/healthcheck') return next(req);
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'OK' };
    };
  },
};
