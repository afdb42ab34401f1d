/** Request parsing shared by the routes: JSON bodies, task ids, limits and cursors. */
import type { Context } from 'hono';
import { Codes, RequestAbortedError, XcronError, describe } from '../errors.js';
import { depthWithin, isObject } from '../task/index.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const MAX_JSON_DEPTH = 64;
const TASK_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** The raw text of the request body read by readJson (undefined before it, or without a body). */
export function requestText(c: Context): string | undefined {
  return c.get('jsonText' as never) as string | undefined;
}

/** Reads a JSON body: content type must be JSON (or absent); the text must parse. */
export function readJson(c: Context): Promise<unknown> {
  // Parsed once per request (the SSRF check and the route share it); errors are re-thrown to each.
  const cached = c.get('jsonBody' as never) as Promise<unknown> | undefined;
  if (cached) return cached;
  const p = parseJsonBody(c);
  p.catch(() => undefined); // a caller that only peeks must not leave an unhandled rejection
  c.set('jsonBody' as never, p as never);
  return p;
}

/**
 * What a failed read of the request body means: the client closing the connection before its
 * body arrived (a RequestAbortedError, not a fault), else the error itself.
 */
export function bodyReadError(c: Context, e: unknown): unknown {
  if (e instanceof XcronError) return e; // the body limit
  const incoming = (c.env as { incoming?: { complete?: boolean } } | undefined)?.incoming;
  if (incoming && incoming.complete !== true) return new RequestAbortedError(`the client closed the connection before the request body arrived (${(e as Error).message})`);
  return e;
}

async function parseJsonBody(c: Context): Promise<unknown> {
  const ct = c.req.header('content-type');
  if (ct !== undefined && ct !== '' && !JSON_TYPE.test(ct)) {
    // Refused, not parsed: a browser sends form and text/plain bodies to any origin without asking
    // first (a "simple request"), so accepting them would let any web page create tasks here.
    throw new XcronError(
      Codes.BAD_JSON,
      415,
      `request body must be JSON, got Content-Type ${JSON.stringify(ct.slice(0, 60))}: send the header Content-Type: application/json (curl: add -H 'Content-Type: application/json'; curl -d alone sends application/x-www-form-urlencoded)`,
    );
  }
  let text: string;
  try {
    text = await c.req.text();
  } catch (e) {
    throw bodyReadError(c, e);
  }
  c.set('jsonText' as never, text as never);
  if (text.trim() === '') throw new XcronError(Codes.BAD_JSON, 400, 'request body is empty; expected a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (e) {
    throw new XcronError(Codes.BAD_JSON, 400, `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (!depthWithin(value, MAX_JSON_DEPTH)) {
    throw new XcronError(Codes.BAD_JSON, 400, `request body nests objects/arrays deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return value;
}

/** Reads and checks a task_id value. */
export function taskIdOf(v: unknown, where = 'task_id'): string {
  if (v === undefined || v === null || v === '') throw new XcronError(Codes.BAD_JSON, 400, `'${where}' is required`);
  if (typeof v !== 'string') throw new XcronError(Codes.BAD_JSON, 400, `'${where}' must be a string, got ${describe(v)}`);
  if (!TASK_ID_RE.test(v)) throw new XcronError(Codes.TASK_NOT_FOUND, 404, `task ${JSON.stringify(v.slice(0, 80))} not found`);
  return v;
}

export const encodeCursor = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
export function decodeCursor(v: string | undefined, field = 'cursor'): string | null {
  if (v === undefined || v === '') return null;
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(v)) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid '${field}': not a cursor returned by this API`);
  return Buffer.from(v, 'base64url').toString('utf8');
}

export function parseLimit(v: string | undefined, dflt: number, max: number): number {
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) {
    throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'limit': must be an integer from 1 to ${max}, got ${JSON.stringify(v.slice(0, 20))}`);
  }
  return Number(v);
}

/** A JSON object body with a task_id. */
export async function bodyWithTaskId(c: Context): Promise<{ body: Record<string, unknown>; id: string }> {
  const body = await readJson(c);
  if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object with 'task_id', got ${describe(body)}`);
  return { body, id: taskIdOf(body.task_id) };
}

/** The request's JSON object body; a field not in `known` is refused (400, 1000, naming it). */
export async function objectBody(c: Context, known: readonly string[]): Promise<Record<string, unknown>> {
  const body = await readJson(c);
  if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object, got ${describe(body)}`);
  for (const k of Object.keys(body)) {
    if (!known.includes(k)) throw new XcronError(Codes.BAD_JSON, 400, `unknown field '${k}' (known fields: ${known.join(', ')})`);
  }
  return body;
}
