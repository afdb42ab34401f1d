/**
 * Calls to the JSON API (/xcron/*) and to /ui/api/next-fires, with `Authorization: Bearer <token>`
 * when there is a token. A 401 sends the page to the sign-in screen.
 */
import { S, authChanged, storeToken } from './state.js';

/** A call that did not answer code 0: `status` 0 when the server could not be reached. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The HTTP status of a failed call (0: unreachable), null for any other error. */
export const statusOf = (e: unknown): number | null => (e instanceof ApiError ? e.status : null);

export const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** An error for a message: the API's code and status when it came from the API. */
export function errText(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (code ${e.code}, HTTP ${e.status})`;
  return messageOf(e);
}

export type QueryValue = string | number | null | undefined;

/** A query string of the non-empty values ('' when there are none). */
export function qs(params: Record<string, QueryValue>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

export interface CallOptions {
  /** Use this token instead of the stored one (the sign-in check). */
  token?: string;
  /** Do not go to the sign-in screen on a 401. */
  noLogin?: boolean;
}

interface Envelope {
  code?: unknown;
  message?: unknown;
  data?: unknown;
}

/** The envelope's data; an ApiError for anything but HTTP 2xx with code 0. */
export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = opts.token !== undefined ? opts.token : S.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  const init: RequestInit = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, -1, `cannot reach the xcron server (${messageOf(e)})`);
  }
  let env: Envelope | null = null;
  try {
    env = (await res.json()) as Envelope | null;
  } catch {
    // Not JSON: reported below.
  }
  if (!env || typeof env !== 'object') throw new ApiError(res.status, -1, `unexpected response from the server (HTTP ${res.status})`);
  if (res.status === 401 && !opts.noLogin) {
    S.auth = 'needed';
    if (token && opts.token === undefined) storeToken('', false); // rejected (revoked or mistyped)
    authChanged();
    if (!location.hash.startsWith('#/login')) {
      S.afterLogin = location.hash || '#/';
      location.hash = '#/login';
    }
  }
  if (!res.ok || env.code !== 0) {
    const message = typeof env.message === 'string' && env.message ? env.message : `HTTP ${res.status}`;
    throw new ApiError(res.status, typeof env.code === 'number' ? env.code : -1, message);
  }
  if (path.startsWith('/xcron/') && S.auth !== 'token' && S.auth !== 'open') {
    S.auth = token ? 'token' : 'open';
    authChanged();
  }
  return env.data as T;
}
