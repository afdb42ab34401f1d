/** The response envelope of every /xcron/* (and health) response. */
import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import { Codes, type XcronError } from '../errors.js';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export interface Envelope<T> {
  uuid: string;
  code: number;
  message: string;
  data: T | null;
}

/** The request's uuid (generated once per request, stored on the context). */
export function requestUuid(c: Context): string {
  let id = c.get('uuid' as never) as string | undefined;
  if (!id) {
    id = randomUUID();
    c.set('uuid' as never, id as never);
    const given = c.req.header('x-request-id');
    c.header('X-Request-Id', given && SANE_REQUEST_ID.test(given) ? given : id);
  }
  return id;
}

export function ok<T>(c: Context, data: T | null, message = 'ok'): Response {
  const body: Envelope<T> = { uuid: requestUuid(c), code: Codes.OK, message, data };
  return c.json(body, 200);
}

export function fail(c: Context, err: XcronError, extraHeaders: Record<string, string> = {}): Response {
  const body: Envelope<null> = { uuid: requestUuid(c), code: err.code, message: err.message, data: null };
  for (const [k, v] of Object.entries(extraHeaders)) c.header(k, v);
  return c.json(body, err.status);
}
