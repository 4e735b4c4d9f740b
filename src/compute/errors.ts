import { ApiError } from '../core/errors.js';

/**
 * A compute API error, written by core's `novaFault` as
 * `{"itemNotFound": {"code": 404, "message": "..."}}` (the key follows the status).
 */
export class ComputeError extends ApiError {
  constructor(status: number, message: string) {
    super(status, TITLES[status] ?? 'Error', message);
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
};

export const badRequest = (message: string): ComputeError => new ComputeError(400, message);
export const forbidden = (message: string): ComputeError => new ComputeError(403, message);
export const notFound = (message: string): ComputeError => new ComputeError(404, message);
export const conflict = (message: string): ComputeError => new ComputeError(409, message);

/** Nova's 403 when a project would pass a quota (`QuotaError`). */
export function quotaExceeded(resource: string, requested: number, used: number, allowed: number): ComputeError {
  return new ComputeError(403, `Quota exceeded for ${resource}: Requested ${requested}, but already used ${used} of ${allowed} ${resource}`);
}

/** Nova's 409 for an action the server's state does not allow (`InstanceInvalidState`). */
export function invalidState(attribute: string, state: string | null, action: string, uuid: string): ComputeError {
  return new ComputeError(409, `Cannot '${action}' instance ${uuid} while it is in ${attribute} ${state ?? 'None'}`);
}

/** Nova's 404 for a server that does not exist or that the caller may not see. */
export function serverNotFound(uuid: string): ComputeError {
  return new ComputeError(404, `Instance ${uuid} could not be found.`);
}
