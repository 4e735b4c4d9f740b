/**
 * Authentication shared by every service: who the caller is (RequestContext),
 * the token middleware that establishes it, and the client a service uses to
 * call the others with its own token.
 */
export { contextFromToken, policyCredentials } from './context.js';
export type { CatalogEntry, NamedRef, RequestContext, TokenBody } from './context.js';
export { ServiceClient } from './service-client.js';
export { EndpointNotFound, ServiceAuthFailed, UpstreamUnavailable } from './service-errors.js';
export type { EndpointInterface, ServiceClientOptions, ServiceCredentials, ServiceRequestOptions, ServiceResponse } from './service-client.js';
export { authenticate, identityTokenValidator, installAuth, tokenHash } from './token-middleware.js';
export type { AuthenticateOptions, TokenValidator, TokenValidatorOptions } from './token-middleware.js';
