import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ApiError, BadRequest, MethodNotAllowed, NotFound, PayloadTooLarge, UnsupportedMediaType } from '../errors.js';
import type { Logger } from '../logging.js';
import { httpDuration, httpErrors, httpRequests } from '../metrics.js';
import type { FaultFormatter } from './faults.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** `req-<uuid>`, returned in `x-openstack-request-id` and logged with every line. */
    requestId: string;
    /** The caller's `X-OpenStack-Request-ID`, when it sent one (a global request id). */
    globalRequestId?: string;
  }
}

export interface ApiServerOptions {
  /** Role name, for logs and metrics (`identity`, `compute-api`, ...). */
  role: string;
  logger: Logger;
  /** How this API writes errors. */
  fault: FaultFormatter;
  /** Largest request body accepted, in bytes (413 beyond). */
  bodyLimit?: number;
  /** Extra response headers that carry the request id (Nova: `x-compute-request-id`). */
  extraRequestIdHeaders?: string[];
  /** Rewrites each request's URL before routing (Block Storage's optional project id in paths). */
  rewriteUrl?: (url: string) => string;
}

/**
 * Builds the Fastify instance every API role uses: request ids, one access
 * log line per request, metrics, JSON bodies, and every error (ours,
 * Fastify's, or an unexpected one) written in the API's own fault format.
 * An unexpected error is a 500 that names the request id, never its details.
 */
export function createApiServer(options: ApiServerOptions): FastifyInstance {
  const { role, logger, fault } = options;
  const idHeaders = ['x-openstack-request-id', ...(options.extraRequestIdHeaders ?? [])];
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    ...(options.rewriteUrl ? { rewriteUrl: (req: { url?: string }) => options.rewriteUrl!(req.url ?? '/') } : {}),
    genReqId: () => `req-${randomUUID()}`,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1024 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false } },
  });

  // OpenStack APIs accept an empty body with a JSON content type (PUT of a
  // role grant, say); and keys that could poison prototypes are dropped.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      const risky = text.includes('__proto__') || text.includes('constructor');
      done(null, risky ? JSON.parse(text, (key, value: unknown) => (key === '__proto__' || key === 'constructor' ? undefined : value)) : JSON.parse(text));
    } catch {
      done(new BadRequest('Malformed request body: the body is not valid JSON.'), undefined);
    }
  });

  app.decorateRequest('requestId', '');
  app.decorateRequest('globalRequestId', undefined);
  app.addHook('onRequest', async (req, reply) => {
    req.requestId = req.id;
    const global = req.headers['x-openstack-request-id'];
    if (typeof global === 'string' && /^req-[0-9a-f-]{36}$/.test(global)) req.globalRequestId = global;
    for (const header of idHeaders) reply.header(header, req.requestId);
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    const status = reply.statusCode;
    httpRequests.inc({ role, method: req.method, route, status: String(status) });
    httpDuration.observe({ role, method: req.method, route }, seconds);
    if (status >= 500) httpErrors.inc({ role, route });
    req.log.info(
      { method: req.method, url: req.url, status, ms: Math.round(reply.elapsedTime * 10) / 10, global_request_id: req.globalRequestId },
      'request',
    );
  });

  const send = (reply: FastifyReply, error: ApiError): FastifyReply => {
    const { body, headers, contentType } = fault(error, reply.request);
    reply.code(error.status).headers({ ...error.headers, ...headers });
    return reply.type(contentType ?? 'application/json').send(body);
  };

  app.setNotFoundHandler((req, reply) => send(reply, new NotFound(`The resource could not be found.`)));

  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const mapped = toApiError(err);
    if (mapped) return send(reply, mapped);
    req.log.error({ err }, 'unexpected error');
    const internal = new ApiError(500, 'Internal Server Error', `An unexpected error prevented the server from fulfilling your request. (request id ${req.requestId})`);
    return send(reply, internal);
  });

  return app;
}

/** Maps our errors and Fastify's own request errors to API errors; null for bugs. */
function toApiError(err: FastifyError): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err.validation) return new BadRequest(validationMessage(err));
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLarge('Request Entity Too Large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaType(`Unsupported Content-Type: ${err.message.replace(/^Unsupported Media Type: /, '')}`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new BadRequest('Malformed request body: the body is not valid JSON.');
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BadRequest(err.message);
    case 'FST_ERR_NOT_FOUND':
      return new NotFound();
    case 'FST_ERR_METHOD_NOT_ALLOWED':
      return new MethodNotAllowed();
    default:
      break;
  }
  if (err instanceof SyntaxError || (typeof err.statusCode === 'number' && err.statusCode === 400)) {
    return new BadRequest(`Malformed request body: ${err.message}`);
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(err.statusCode, 'Bad Request', err.message);
  }
  return null;
}

function validationMessage(err: FastifyError): string {
  const first = err.validation?.[0];
  if (!first) return err.message;
  const field = first.instancePath ? first.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
  const params = first.params as Record<string, unknown>;
  const named = typeof params.missingProperty === 'string' ? params.missingProperty : typeof params.additionalProperty === 'string' ? params.additionalProperty : '';
  const where = [field, named].filter(Boolean).join('.');
  return `Invalid input for field '${where || 'body'}': ${first.message ?? 'is not valid'}`;
}

/** Starts listening; resolves with the bound port (useful with port 0). */
export async function listen(app: FastifyInstance, host: string, port: number): Promise<number> {
  await app.listen({ host, port, listenTextResolver: () => '' });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : port;
}
