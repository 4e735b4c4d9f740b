import type { Middleware } from './pipeline.js';
import { plainError, SwiftHttpError } from './responses.js';

/**
 * Swift's `catch_errors`, first in the pipeline: every response carries the
 * transaction id (`X-Trans-Id`, `X-Openstack-Request-Id`), and an error
 * nothing below handled becomes a logged 500 `An error occurred`.
 */
export const catchErrors: Middleware = {
  name: 'catch_errors',
  wrap(next, ctx) {
    return async (req) => {
      let response;
      try {
        response = await next(req);
      } catch (err) {
        if (err instanceof SwiftHttpError) {
          response = err.response;
        } else {
          ctx.log.error({ request_id: req.env.requestId, err }, 'Error: An error occurred');
          response = plainError(500, 'An error occurred');
        }
      }
      response.headers['x-trans-id'] = req.env.requestId;
      response.headers['x-openstack-request-id'] = req.env.requestId;
      return response;
    };
  },
};
