import { ServiceUnavailable } from '../errors.js';
import type { EndpointInterface } from './service-client.js';

/**
 * A call to another service that could not be completed: connection failures
 * or 502/503/504 answers persisted through every retry, or a failure that must
 * not be retried. A 503 (with a message that names only the service type) if
 * it reaches an API error handler uncaught; the details are in its fields.
 */
export class UpstreamUnavailable extends ServiceUnavailable {
  constructor(
    readonly serviceType: string,
    readonly method: string,
    readonly url: string,
    readonly attempts: number,
    /** The last HTTP status, or null when no response came. */
    readonly lastStatus: number | null,
    cause?: unknown,
  ) {
    super(`The ${serviceType} service is unavailable.`);
    if (cause !== undefined) this.cause = cause;
  }
}

/** The catalog of the service token has no endpoint of that type, interface and region (a 503 if uncaught). */
export class EndpointNotFound extends ServiceUnavailable {
  constructor(
    readonly serviceType: string,
    readonly endpointInterface: EndpointInterface,
    readonly region: string | null,
  ) {
    super(`No ${endpointInterface} endpoint for the ${serviceType} service${region ? ` in region ${region}` : ''}.`);
  }
}

/** Identity refused the service user's own credentials or token (a deployment error; a 503 if uncaught). */
export class ServiceAuthFailed extends ServiceUnavailable {
  constructor(
    /** What identity answered (401, 403, ...). */
    readonly identityStatus: number,
  ) {
    super('The service could not authenticate to the identity service.');
  }
}
