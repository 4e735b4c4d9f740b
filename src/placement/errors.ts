import type { FastifyRequest } from 'fastify';
import { ApiError } from '../core/errors.js';
import type { Fault } from '../core/http/faults.js';
import { MAX_VERSION, MIN_VERSION, versionOf } from './microversion.js';

/** Placement's error codes (`code` in error bodies from 1.23). */
export const ErrorCode = {
  DEFAULT: 'placement.undefined_code',
  INVENTORY_INUSE: 'placement.inventory.inuse',
  CONCURRENT_UPDATE: 'placement.concurrent_update',
  DUPLICATE_NAME: 'placement.duplicate_name',
  PROVIDER_IN_USE: 'placement.resource_provider.inuse',
  PROVIDER_CANNOT_DELETE_PARENT: 'placement.resource_provider.cannot_delete_parent',
  RESOURCE_PROVIDER_NOT_FOUND: 'placement.resource_provider.not_found',
  ILLEGAL_DUPLICATE_QUERYPARAM: 'placement.query.duplicate_key',
  QUERYPARAM_BAD_VALUE: 'placement.query.bad_value',
  QUERYPARAM_MISSING_VALUE: 'placement.query.missing_value',
} as const;

/** One of placement's error codes. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** What webob puts before the detail of each status (placement's errors are webob's). */
const EXPLANATIONS: Record<number, string> = {
  400: 'The server could not comply with the request since it is either malformed or otherwise incorrect.',
  403: 'Access was denied to this resource.',
  404: 'The resource could not be found.',
  405: 'The method specified is not allowed for this resource.',
  406: 'The resource could not be generated that was acceptable to your browser.',
  409: 'There was a conflict when trying to complete your request.',
  413: 'The request is larger than the server is willing or able to process.',
  415: 'The request media type is not supported by this server.',
  500: 'The server has either erred or is incapable of performing the requested operation.',
  503: 'The server is currently unavailable. Please try again at a later time.',
};

/**
 * An error of the placement API: the status, the detail message and
 * placement's `code` (written from microversion 1.23).
 */
export class PlacementError extends ApiError {
  constructor(
    status: number,
    detail: string,
    readonly code: ErrorCodeValue = ErrorCode.DEFAULT,
  ) {
    super(status, TITLES[status] ?? 'Error', detail);
  }
}

/** 400 with the detail. */
export function badRequest(detail: string, code: ErrorCodeValue = ErrorCode.DEFAULT): PlacementError {
  return new PlacementError(400, detail, code);
}

/** 404 with the detail. */
export function notFound(detail: string): PlacementError {
  return new PlacementError(404, detail);
}

/** 409 with the detail and code. */
export function conflict(detail: string, code: ErrorCodeValue = ErrorCode.DEFAULT): PlacementError {
  return new PlacementError(409, detail, code);
}

/** 409 `placement.concurrent_update`. */
export function concurrentUpdate(detail: string): PlacementError {
  return new PlacementError(409, detail, ErrorCode.CONCURRENT_UPDATE);
}

/**
 * Placement's fault body: `{"errors": [{"status", "title", "detail",
 * "request_id", "code"}]}` (the code from 1.23; a 406 from version
 * negotiation adds the supported range). A 401 is keystonemiddleware's
 * `{"error": {...}}`, as a real deployment answers before placement sees the
 * request.
 */
export function placementFault(error: ApiError, req?: FastifyRequest): Fault {
  if (error.status === 401) return { body: { error: { code: 401, title: 'Unauthorized', message: error.message } } };
  const version = req ? versionOf(req) : null;
  const explanation = EXPLANATIONS[error.status] ?? '';
  const entry: Record<string, unknown> = {
    status: error.status,
    title: TITLES[error.status] ?? error.title,
    detail: explanation ? `${explanation}\n\n ${error.message}  ` : error.message,
  };
  if (req?.requestId) entry.request_id = req.requestId;
  if (version && version.minor >= 23) entry.code = error instanceof PlacementError ? error.code : ErrorCode.DEFAULT;
  if (error.status === 406 && !version) {
    entry.max_version = MAX_VERSION;
    entry.min_version = MIN_VERSION;
  }
  return { body: { errors: [entry] } };
}
