/**
 * Typed API errors shared by every service. Each carries the HTTP status and a
 * human message; each API's fault formatter (core/http/faults.ts) decides how
 * the body looks (Keystone `{"error": ...}`, Nova `{"itemNotFound": ...}`, ...).
 */
export class ApiError extends Error {
  /** Extra response headers (e.g. `WWW-Authenticate`, `Retry-After`). */
  headers: Record<string, string> = {};
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequest extends ApiError {
  constructor(message = 'The request you have made is malformed.') {
    super(400, 'Bad Request', message);
  }
}

export class Unauthorized extends ApiError {
  constructor(message = 'The request you have made requires authentication.') {
    super(401, 'Unauthorized', message);
  }
}

export class Forbidden extends ApiError {
  constructor(message = 'You are not authorized to perform the requested action.') {
    super(403, 'Forbidden', message);
  }
}

export class NotFound extends ApiError {
  constructor(message = 'Could not find the requested resource.') {
    super(404, 'Not Found', message);
  }
}

export class MethodNotAllowed extends ApiError {
  constructor(message = 'The method is not allowed for the requested URL.') {
    super(405, 'Method Not Allowed', message);
  }
}

export class NotAcceptable extends ApiError {
  constructor(message = 'The requested version is not supported.') {
    super(406, 'Not Acceptable', message);
  }
}

export class Conflict extends ApiError {
  constructor(message = 'Conflict occurred attempting to store the resource.') {
    super(409, 'Conflict', message);
  }
}

export class PayloadTooLarge extends ApiError {
  constructor(message = 'Request Entity Too Large') {
    super(413, 'Request Entity Too Large', message);
  }
}

/** Quota or rate limits (OpenStack uses 403 or 413 per API; the formatter maps it). */
export class OverLimit extends ApiError {
  constructor(message = 'Quota exceeded.', status = 413) {
    super(status, 'Over Limit', message);
  }
}

export class UnsupportedMediaType extends ApiError {
  constructor(message = 'The media type of the request is not supported.') {
    super(415, 'Unsupported Media Type', message);
  }
}

export class NotImplemented extends ApiError {
  constructor(message = 'The action you have requested has not been implemented.') {
    super(501, 'Not Implemented', message);
  }
}

export class ServiceUnavailable extends ApiError {
  constructor(message = 'The service is unavailable.') {
    super(503, 'Service Unavailable', message);
  }
}
