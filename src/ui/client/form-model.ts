/**
 * The create/edit form's data, without the DOM: the createTask request built from the fields, and
 * for an edit the updateTask body of only what changed. Bad input throws an Error whose message
 * names the field.
 */
import { json } from './format.js';
import type { CallbackView, TaskView } from './types.js';

/** The raw values of the form's fields. */
export interface FormValues {
  type: string;
  format: string;
  name: string;
  timezone: string;
  url: string;
  method: string;
  headers: string;
  body: string;
  advanced: string;
  timeout: string;
  attempts: string;
  backoff: string;
  maxBackoff: string;
  misfire: string;
  overlap: string;
  completion: string;
  asyncTimeout: string;
  /** Comma-separated. */
  tags: string;
  /** A named queue target instead of a URL (optional; absent in older callers). */
  target?: string;
  /** The queue target's stream name or routing key override (optional). */
  key?: string;
}

export type Json = Record<string, unknown>;

export interface CallbackRequest extends Json {
  url?: string;
  target?: string;
  key?: string;
  urls?: string[];
  route?: string;
  method?: string;
  headers?: Json;
  body: unknown;
}

export interface TaskRequest extends Json {
  type: number;
  format: string;
  callback: CallbackRequest;
  name?: string;
  timezone?: string;
  timeout_ms?: number;
  retry?: Record<string, number>;
  misfire: string;
  overlap: string;
  paused?: boolean;
  completion?: string;
  async_timeout_ms?: number;
  tags?: string[];
}

export interface Built {
  req: TaskRequest;
  /** The "Advanced options" JSON as given ({} when empty). */
  advanced: Json;
}

/** The task fields edited as JSON in "Advanced options". */
export const ADV_KEYS = ['start_time', 'end_time', 'on_success', 'alert_url', 'max_consecutive_failures', 'jitter_ms', 'flow_key', 'flow', 'idempotency_key'] as const;

/** What "Advanced options" may hold; anything else is refused before it is sent. */
const ADV_ALLOWED: ReadonlySet<string> = new Set([...ADV_KEYS, 'callback']);
const ADV_CALLBACK_ALLOWED: ReadonlySet<string> = new Set(['urls', 'route']);

/** Throws on a key "Advanced options" does not take (as createTask refuses unknown fields). */
export function checkAdvancedKeys(adv: Json, edit: boolean): void {
  for (const k of Object.keys(adv)) {
    if (!ADV_ALLOWED.has(k)) throw new Error(`Advanced options: unknown key '${k}' (allowed: ${[...ADV_ALLOWED].filter((x) => !(edit && x === 'idempotency_key')).join(', ')}; the other fields have their own inputs)`);
  }
  const cb = adv.callback;
  if (cb !== undefined) {
    if (cb === null || typeof cb !== 'object' || Array.isArray(cb)) throw new Error('Advanced options: callback must be an object with urls and route');
    for (const k of Object.keys(cb)) if (!ADV_CALLBACK_ALLOWED.has(k)) throw new Error(`Advanced options: unknown key 'callback.${k}' (allowed: callback.urls, callback.route)`);
  }
}

/** The tags field: comma- or space-separated, duplicates dropped. */
export const parseTags = (v: string): string[] => [...new Set(v.split(/[,\s]+/).map((t) => t.trim()).filter(Boolean))];

/** Equal as JSON, with undefined as null. */
export const same = (a: unknown, b: unknown): boolean => JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b);

/** A JSON object field; null when empty. */
export function parseJsonObject(text: string, what: string): Json | null {
  if (text.trim() === '') return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what} must be a JSON object`);
  return v as Json;
}

/** A whole-number field; null when empty. */
export function intField(v: string, what: string): number | null {
  if (v.trim() === '') return null;
  if (!/^\d+$/.test(v.trim())) throw new Error(`${what} must be a whole number`);
  return Number(v.trim());
}

/** The "Advanced options" text for an existing task (empty for a new one). */
export function advancedText(t: TaskView | null, edit: boolean): string {
  const adv: Json = {};
  if (t) {
    for (const k of ADV_KEYS) if (t[k] !== undefined && !(edit && k === 'idempotency_key')) adv[k] = t[k];
    if (t.callback.urls) adv.callback = { urls: t.callback.urls, route: t.callback.route };
  }
  return Object.keys(adv).length ? json(adv) : '';
}

/**
 * A queue target callback `{target, key?, body}` (the server refuses HTTP fields with it), or null
 * when the form names no target.
 */
function targetCallback(f: FormValues, headers: Json | null, advanced: Json, body: Json): CallbackRequest | null {
  const target = (f.target ?? '').trim();
  const key = (f.key ?? '').trim();
  if (!target) {
    if (key) throw new Error('Queue key needs a queue target');
    return null;
  }
  if (f.url.trim()) throw new Error('Give either a callback URL or a queue target, not both');
  if (f.method !== 'POST' || (headers && Object.keys(headers).length) || advanced.callback !== undefined) {
    throw new Error('A queue target takes no method, headers or callback.urls (only target, key and body)');
  }
  return key ? { target, key, body } : { target, body };
}

export function buildRequest(f: FormValues): Built {
  const headers = parseJsonObject(f.headers, 'Headers');
  const body = parseJsonObject(f.body, 'Body') || {};
  const advanced = parseJsonObject(f.advanced, 'Advanced options') || {};
  checkAdvancedKeys(advanced, false);
  const queued = targetCallback(f, headers, advanced, body);
  const callback: CallbackRequest = queued ?? { url: f.url.trim(), body };
  if (!queued && f.method !== 'POST') callback.method = f.method;
  if (!queued && headers && Object.keys(headers).length) callback.headers = headers;
  if (!queued && advanced.callback && typeof advanced.callback === 'object') Object.assign(callback, advanced.callback);
  const req: TaskRequest = { type: Number(f.type), format: f.format.trim(), callback, misfire: f.misfire, overlap: f.overlap };
  if (f.name.trim()) req.name = f.name.trim();
  if (f.timezone.trim()) req.timezone = f.timezone.trim();
  const timeout = intField(f.timeout, 'Timeout');
  if (timeout !== null) req.timeout_ms = timeout;
  const retry: Record<string, number> = {};
  const ma = intField(f.attempts, 'Max attempts');
  const bo = intField(f.backoff, 'Backoff');
  const mb = intField(f.maxBackoff, 'Max backoff');
  if (ma !== null) retry.max_attempts = ma;
  if (bo !== null) retry.backoff_ms = bo;
  if (mb !== null) retry.max_backoff_ms = mb;
  if (Object.keys(retry).length) req.retry = retry;
  if (f.completion === 'async') req.completion = 'async';
  const asyncTimeout = intField(f.asyncTimeout, 'Async report deadline');
  if (asyncTimeout !== null) req.async_timeout_ms = asyncTimeout;
  const tags = parseTags(f.tags);
  if (tags.length) req.tags = tags;
  for (const [k, v] of Object.entries(advanced)) if (k !== 'callback') req[k] = v;
  if (callback.urls && callback.url === '') delete callback.url;
  return { req, advanced };
}

/** The callback as compared for "changed": defaults filled in. */
const normCallback = (c: CallbackRequest | CallbackView): Json => ({
  target: c.target ?? null,
  key: c.key ?? null,
  url: c.urls ? c.urls[0] : (c.url ?? null),
  urls: c.urls || null,
  route: c.urls ? c.route || 'failover' : null,
  method: c.method || 'POST',
  headers: c.headers || null,
  body: c.body || {},
});

/**
 * The updateTask body: only what changed (a callback that changed is sent whole). A field the user
 * cleared goes back to the default: null for the optional ones, the server's default zone for the
 * timezone (`defaultTz`), and a retry policy without the cleared values.
 */
export function buildUpdate(built: Built, t: TaskView, defaultTz: string): Json {
  const req = built.req;
  const out: Json = { task_id: t.task_id };
  if (req.format !== t.format) out.format = req.format;
  const tz = req.timezone || defaultTz;
  if (tz !== t.timezone) out.timezone = tz;
  if ((req.name || null) !== (t.name || null)) out.name = req.name || null;
  if (!same(normCallback(req.callback), normCallback(t.callback))) {
    const c2: CallbackRequest = { ...req.callback };
    if (c2.urls) delete c2.url;
    out.callback = c2;
  }
  if (!same(req.timeout_ms ?? null, t.timeout_ms ?? null)) out.timeout_ms = req.timeout_ms ?? null;
  const r0 = t.retry || null;
  const r1: Json | null = req.retry || null;
  if (!same(r1, r0)) out.retry = r1;
  if (req.misfire !== t.misfire) out.misfire = req.misfire;
  if (req.overlap !== t.overlap) out.overlap = req.overlap;
  if ((req.completion || 'sync') !== (t.completion || 'sync')) out.completion = req.completion || 'sync';
  if (!same(req.async_timeout_ms ?? null, t.async_timeout_ms ?? null)) out.async_timeout_ms = req.async_timeout_ms ?? null;
  if (!same(req.tags ?? [], t.tags ?? [])) out.tags = req.tags ?? [];
  for (const k of ADV_KEYS) {
    if (k === 'idempotency_key') continue;
    const v = built.advanced[k];
    if (!same(v, t[k])) out[k] = v === undefined ? null : v;
  }
  if (built.advanced.idempotency_key !== undefined) throw new Error('idempotency_key cannot be changed on an existing task');
  return out;
}
