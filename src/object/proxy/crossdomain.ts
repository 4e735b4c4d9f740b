import type { Middleware } from './pipeline.js';

/** The default policy of Swift's `crossdomain`: every domain may use the API from Flash/Silverlight clients. */
const POLICY = '<allow-access-from domain="*" secure="false" />';

/** Swift's `crossdomain`: `GET /crossdomain.xml` answers the cross-domain policy document. */
export const crossdomain: Middleware = {
  name: 'crossdomain',
  wrap(next, ctx) {
    ctx.registerInfo('crossdomain', {});
    const body =
      '<?xml version="1.0"?>\n' +
      '<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd" >\n' +
      '<cross-domain-policy>\n' +
      `${POLICY}\n` +
      '</cross-domain-policy>';
    return async (req) => {
      if (req.path !== '/crossdomain.xml' || req.method !== 'GET') return next(req);
      return { status: 200, headers: { 'content-type': 'application/xml' }, body };
    };
  },
};
