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

/** JSON text placed into a response as is (a callback body kept exactly as given). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** `raw`: the data holds RawJson values, spliced in verbatim (slower; only then). */
export function ok<T>(c: Context, data: T | null, message = 'ok', raw = false): Response {
  const body: Envelope<T> = { uuid: requestUuid(c), code: Codes.OK, message, data };
  if (!raw) return c.json(body, 200);
  const texts: string[] = [];
  const marker = `\u0000raw:${body.uuid}:`;
  let out = JSON.stringify(body, (_k, v: unknown) => {
    if (!(v instanceof RawJson)) return v;
    texts.push(v.text);
    return `${marker}${texts.length - 1}`;
  });
  texts.forEach((t, i) => {
    out = out.replace(JSON.stringify(`${marker}${i}`), () => t);
  });
  return c.body(out, 200, { 'Content-Type': 'application/json' });
}

export function fail(c: Context, err: XcronError, extraHeaders: Record<string, string> = {}): Response {
  const body: Envelope<null> = { uuid: requestUuid(c), code: err.code, message: err.message, data: null };
  for (const [k, v] of Object.entries(extraHeaders)) c.header(k, v);
  return c.json(body, err.status);
}
