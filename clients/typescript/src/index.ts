/**
 * @xcron/client: a typed client for the xcron HTTP API, and the receiver side (signature
 * verification, fire-id dedupe, a node:http handler). The hono middleware is `@xcron/client/hono`.
 */
export * from './client.js';
export { parseRetryAfter, type ApiResult, type CallOptions, type ClientOptions, type HttpMethod, type RequestSpec, type RetryInfo, type RetryOptions } from './options.js';
export * from './errors.js';
export type * from './types.js';
export type * from './ops-types.js';
export type * from './executor-types.js';
export * from './receiver.js';
