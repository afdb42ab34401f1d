/**
 * Request validation for createTask: turns an untrusted JSON value into a TaskSpec, or throws an
 * XcronError whose code and message name the field and what was expected. Pure: `now` is passed in.
 */
import { Codes, XcronError, badInput, describe, invalidOption, typeError } from '../errors.js';
import { checkTimezone, parseOneShot, parseSchedule } from './schedule.js';
import { CallbackInput, CreateTaskInput, RetryInput, UpdateTaskInput, fieldsOf } from './schema.js';
import { applyPacingFields } from './flow.js';
import { parseTags } from './tags.js';
import {
  ONE_SHOT,
  PERIODIC,
  type CallbackSpec,
  type HttpMethod,
  type MisfirePolicy,
  type OverlapPolicy,
  type RetryPolicy,
  type RouteStrategy,
  type CompletionMode,
  ROUTES,
  URL_ROUTES,
  type TaskSpec,
  type TaskType,
} from './types.js';
import { TARGET_KEY_RE, TARGET_NAME_RE, targetUrl } from './target-ref.js';
import { checkExecutorGroup, executorUrl } from './executor-ref.js';

export interface ValidationLimits {
  defaultTimezone: string;
  /** Max bytes of the serialized callback body. */
  callbackBodyLimit: number;
  /** One-shot timestamps this far in the past are still accepted (they fire at once). */
  pastGraceMs: number;
  /** The names of the configured queue targets (`[targets.<name>]`). Absent: none. */
  targets?: ReadonlySet<string>;
  /** The names of the configured flow limits (`[flow.<key>]`). Absent: none. */
  flowKeys?: ReadonlySet<string>;
}

export interface CreateRequest {
  spec: TaskSpec;
  paused: boolean;
  /** First fire time, computed from `now`. */
  next_fire_time: number;
}

export const MAX_ASYNC_TIMEOUT_MS = 7 * 86_400_000;
/** The accepted fields: the request schemas' (./schema.ts), which the OpenAPI document shows too. */
const CREATE_FIELDS = fieldsOf(CreateTaskInput);
const CALLBACK_FIELDS = fieldsOf(CallbackInput);
const RETRY_FIELDS = fieldsOf(RetryInput);
const MAX_TARGETS = 32;
const MAX_CHILDREN = 32;
const METHODS: readonly HttpMethod[] = ['POST', 'PUT', 'PATCH', 'DELETE', 'GET'];
/** Headers a task may not set: the transport's and our own. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'user-agent', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect']);
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_URL = 2048;
export const MAX_TIMEOUT_MS = 300_000;

/** True when the JSON value nests no deeper than `max` arrays/objects (checked without recursion). */
export function depthWithin(v: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    if (d >= max) return false;
    for (const y of Array.isArray(x) ? x : Object.values(x)) if (typeof y === 'object' && y !== null) stack.push([y, d + 1]);
  }
  return true;
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function requireObject(v: unknown, what: string): Record<string, unknown> {
  if (!isObject(v)) throw new XcronError(Codes.BAD_JSON, 400, `${what} must be a JSON object, got ${describe(v)}`);
  return v;
}

function rejectUnknown(obj: Record<string, unknown>, known: Set<string>, where: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) {
      throw new XcronError(Codes.BAD_JSON, 400, `unknown field '${where}${k}' (known fields: ${[...known].join(', ')})`);
    }
  }
}

function intField(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number') throw typeError(field, 'an integer', v);
  if (!Number.isInteger(v) || v < min || v > max) throw invalidOption(field, `must be an integer from ${min} to ${max}, got ${v}`);
  return v;
}

function optString(v: unknown, field: string, maxLen: number): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw typeError(field, 'a string', v);
  if (v.length === 0 || v.length > maxLen) throw invalidOption(field, `must be 1 to ${maxLen} characters, got ${v.length}`);
  return v;
}

function enumField<T extends string>(v: unknown, field: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'string') throw typeError(field, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`, v);
  if (!(allowed as readonly string[]).includes(v)) {
    throw invalidOption(field, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${JSON.stringify(v.slice(0, 40))}`);
  }
  return v as T;
}

/**
 * URLs checkUrl accepted (a pure check of the string; callbacks mostly name a few URLs, and parsing
 * one costs more than the rest of a task's validation). Forgotten all at once when full.
 */
const goodUrls = new Set<string>();
const MAX_GOOD_URLS = 1024;

/** Checks an absolute http(s) URL; throws 1003. */
export function checkUrl(v: unknown, field = 'callback.url'): string {
  if (typeof v === 'string' && goodUrls.has(v)) return v;
  const url = parseUrl(v, field);
  if (goodUrls.size >= MAX_GOOD_URLS) goodUrls.clear();
  goodUrls.add(url);
  return url;
}

function parseUrl(v: unknown, field: string): string {
  if (v === undefined || v === null || v === '') throw badInput(Codes.CALLBACK_URL, `'${field}' is required: an absolute http:// or https:// URL`);
  if (typeof v !== 'string') throw badInput(Codes.CALLBACK_URL, `'${field}' must be a string URL, got ${describe(v)}`);
  if (v.length > MAX_URL) throw badInput(Codes.CALLBACK_URL, `'${field}' is longer than ${MAX_URL} characters`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw badInput(Codes.CALLBACK_URL, `'${field}' is not a valid absolute URL: ${JSON.stringify(v.slice(0, 80))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw badInput(Codes.CALLBACK_URL, `'${field}' must use http or https, got ${JSON.stringify(u.protocol.replace(':', ''))}`);
  }
  if (u.hostname === '' || !/^https?:\/\/[^/\\]/i.test(v)) throw badInput(Codes.CALLBACK_URL, `'${field}' has no host`);
  // One trailing dot is a fully qualified name (resolved as the name without it); an empty label is no name.
  if (u.hostname.startsWith('.') || u.hostname.includes('..')) throw badInput(Codes.CALLBACK_URL, `'${field}' host ${JSON.stringify(u.hostname.slice(0, 80))} has an empty label`);
  if (u.username || u.password) throw badInput(Codes.CALLBACK_URL, `'${field}' must not carry credentials; use callback.headers`);
  return v;
}

export function parseRetry(v: unknown, field = 'retry'): RetryPolicy | null {
  if (v === undefined || v === null) return null;
  const o = isObject(v) ? v : (() => { throw typeError(field, 'an object {max_attempts, backoff_ms, max_backoff_ms}', v); })();
  rejectUnknown(o, RETRY_FIELDS, `${field}.`);
  const max_attempts = o.max_attempts === undefined ? 3 : intField(o.max_attempts, `${field}.max_attempts`, 1, 100);
  const backoff_ms = o.backoff_ms === undefined ? 1000 : intField(o.backoff_ms, `${field}.backoff_ms`, 0, 3_600_000);
  const max_backoff_ms = o.max_backoff_ms === undefined ? Math.max(60_000, backoff_ms) : intField(o.max_backoff_ms, `${field}.max_backoff_ms`, 0, 86_400_000);
  if (max_backoff_ms < backoff_ms) throw invalidOption(`${field}.max_backoff_ms`, `must be >= backoff_ms (${backoff_ms}), got ${max_backoff_ms}`);
  return { max_attempts, backoff_ms, max_backoff_ms };
}

const MAX_HEADER_VALUE = 8192;
/** A field-value as RFC 9110 writes it, restricted to ASCII: visible characters, with spaces and tabs inside. */
const FIELD_VALUE_RE = /^(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?$/;

function codePoint(ch: string): string {
  const names: Record<number, string> = { 0: 'NUL', 9: 'tab', 10: 'LF', 11: 'vertical tab', 12: 'form feed', 13: 'CR', 0x7f: 'DEL', 0x85: 'NEL', 0xa0: 'no-break space', 0x2028: 'line separator', 0x2029: 'paragraph separator', 0xfeff: 'BOM' };
  const cp = ch.codePointAt(0)!;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return names[cp] !== undefined ? `${hex} (${names[cp]})` : cp >= 0x20 && cp !== 0x7f ? `${hex} ${JSON.stringify(ch)}` : hex;
}

/**
 * Why a callback header value could never be sent, or null. Checked when a task is created or
 * updated, so a value the HTTP client would refuse at every fire is refused once, up front: only
 * visible ASCII, with spaces and tabs inside (RFC 9110 field-value without obs-text: a non-ASCII
 * character has no agreed encoding in a header, and undici refuses most of them).
 */
export function headerValueProblem(value: string): string | null {
  if (value.length > MAX_HEADER_VALUE) return `must be at most ${MAX_HEADER_VALUE} characters, got ${value.length}`;
  if (FIELD_VALUE_RE.test(value)) return null;
  const bad = /[^\t\x20-\x7e]/u.exec(value);
  if (bad) {
    const what = codePoint(bad[0]);
    const prefix = /[\r\n\0]/.test(bad[0]) ? 'must not contain CR, LF or NUL: ' : '';
    return `${prefix}found ${what} at position ${bad.index}; a header value may hold only visible ASCII characters, spaces and tabs (encode other text, e.g. percent- or base64-encoded)`;
  }
  return 'must not start or end with a space or tab (receivers strip it, so the value would not arrive as given)';
}

/** Callback headers (a task's `callback.headers`, or a run's one-off `headers` with `field`). */
export function parseHeaders(v: unknown, field = 'callback.headers'): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) throw typeError(field, 'an object of string values', v);
  const out: Record<string, string> = {};
  const entries = Object.entries(v);
  if (entries.length > 50) throw invalidOption(field, `at most 50 headers, got ${entries.length}`);
  for (const [name, value] of entries) {
    if (!TOKEN_RE.test(name) || name.length > 100) throw invalidOption(field, `${JSON.stringify(name.slice(0, 40))} is not a valid header name (an HTTP token of 1 to 100 characters: letters, digits and !#$%&'*+-.^_\`|~)`);
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || lower.startsWith('x-xcron-')) throw invalidOption(field, `header '${name}' is set by xcron and cannot be overridden`);
    if (typeof value !== 'string') throw typeError(`${field}.${name}`, 'a string', value);
    const why = headerValueProblem(value);
    if (why !== null) throw invalidOption(`${field}.${name}`, why);
    out[name] = value;
  }
  return out;
}

/**
 * A queue target callback (`target`, optional `key`): its internal `target:` URL, or null when the
 * callback has no `target`. The name must be configured; HTTP-only fields are refused with it.
 */
function parseTarget(v: Record<string, unknown>, limits: ValidationLimits): string | null {
  if (v.target === undefined || v.target === null) {
    if (v.key !== undefined && v.key !== null) throw invalidOption('callback.key', "needs 'callback.target' (a configured queue target)");
    return null;
  }
  if (typeof v.target !== 'string') throw typeError('callback.target', 'the name of a configured target (a string)', v.target);
  const known = limits.targets ?? new Set<string>();
  if (!TARGET_NAME_RE.test(v.target) || !known.has(v.target)) {
    const list = [...known].sort().join(', ');
    throw badInput(Codes.UNKNOWN_TARGET, `unknown target ${JSON.stringify(v.target.slice(0, 64))} in 'callback.target': ${list === '' ? 'no queue targets are configured ([targets.<name>] in the configuration)' : `configured targets are ${list}`}`);
  }
  for (const f of ['url', 'urls', 'route', 'method', 'headers']) {
    if (v[f] !== undefined && v[f] !== null) throw invalidOption(`callback.${f}`, "does not apply to a queue target ('callback.target'); give 'target', 'key' and 'body' only");
  }
  let key: string | null = null;
  if (v.key !== undefined && v.key !== null) {
    if (typeof v.key !== 'string') throw typeError('callback.key', 'a string (the stream name, routing key or subject to use)', v.key);
    if (!TARGET_KEY_RE.test(v.key)) throw invalidOption('callback.key', `must be 1 to 255 visible ASCII characters (no spaces), got ${describe(v.key)}`);
    key = v.key;
  }
  return targetUrl(v.target, key);
}

/**
 * An executor group callback (`executor`, optional `route`): its internal `executor:` URL, or null
 * without `executor`. The group need not exist yet (executors come and go); its name must be valid.
 */
function parseExecutor(v: Record<string, unknown>): string | null {
  if (v.executor === undefined || v.executor === null) return null;
  const group = checkExecutorGroup(v.executor, 'callback.executor');
  for (const f of ['url', 'urls']) {
    if (v[f] !== undefined && v[f] !== null) throw invalidOption(`callback.${f}`, "give one of 'url', 'urls', 'target' or 'executor': the executor group's live instances are the targets");
  }
  return executorUrl(group);
}

export function parseCallback(v: unknown, limits: ValidationLimits): CallbackSpec {
  if (v === undefined || v === null) throw badInput(Codes.CALLBACK_URL, "'callback' is required: an object with 'url' (absolute http/https URL) and optional 'body'");
  if (!isObject(v)) throw typeError('callback', 'an object {url, body}', v);
  rejectUnknown(v, CALLBACK_FIELDS, 'callback.');
  const target = parseTarget(v, limits);
  const executor = parseExecutor(v);
  if (target !== null && executor !== null) throw invalidOption('callback.executor', "give one of 'url', 'urls', 'target' or 'executor'");
  let urls: string[] | null = null;
  let route: RouteStrategy | null = null;
  if (executor !== null) {
    route = enumField<RouteStrategy>(v.route, 'callback.route', ROUTES, 'round_robin');
  } else if (v.urls !== undefined && v.urls !== null) {
    if (!Array.isArray(v.urls)) throw typeError('callback.urls', 'an array of URLs', v.urls);
    if (v.urls.length === 0 || v.urls.length > MAX_TARGETS) throw badInput(Codes.CALLBACK_URL, `'callback.urls' must hold 1 to ${MAX_TARGETS} URLs, got ${v.urls.length}`);
    urls = v.urls.map((u, i) => checkUrl(u, `callback.urls[${i}]`));
    route = enumField<RouteStrategy>(v.route, 'callback.route', URL_ROUTES, 'failover');
    if (v.url !== undefined && v.url !== null && v.url !== urls[0]) throw invalidOption('callback.url', "give either 'url' or 'urls' (with 'route'), not both");
  } else if (v.route !== undefined && v.route !== null) {
    throw invalidOption('callback.route', "needs 'callback.urls' (several targets) or 'callback.executor' (an executor group)");
  }
  const url = target ?? executor ?? (urls ? urls[0]! : checkUrl(v.url));
  let body: Record<string, unknown> = {};
  if (v.body !== undefined && v.body !== null) {
    if (!isObject(v.body)) throw typeError('callback.body', 'a JSON object', v.body);
    body = v.body;
  }
  const size = Buffer.byteLength(JSON.stringify(body));
  if (size > limits.callbackBodyLimit) {
    throw new XcronError(Codes.TOO_LARGE, 413, `'callback.body' is ${size} bytes, over the limit of ${limits.callbackBodyLimit} bytes`);
  }
  const method = enumField(v.method, 'callback.method', METHODS, 'POST');
  return { url, urls, route, body, method, headers: parseHeaders(v.headers) };
}

function parseType(v: unknown): TaskType {
  if (v === undefined || v === null) throw new XcronError(Codes.BAD_JSON, 400, "'type' is required: 1 (periodic, cron) or 2 (one-shot, unix timestamp)");
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError('type', 'an integer (1 periodic, 2 one-shot)', v);
  if (v !== PERIODIC && v !== ONE_SHOT) throw badInput(Codes.UNSUPPORTED_TYPE, `unsupported task 'type' ${v}: expected 1 (periodic, cron) or 2 (one-shot, unix timestamp)`);
  return v;
}

/** Validates a createTask body. `now` decides "in the past" and the first fire time. */
export function validateCreate(body: unknown, now: number, limits: ValidationLimits): CreateRequest {
  const o = requireObject(body, 'request body');
  rejectUnknown(o, CREATE_FIELDS, '');
  const type = parseType(o.type);
  if (o.format === undefined || o.format === null) throw new XcronError(Codes.BAD_JSON, 400, `'format' is required: ${type === 1 ? 'a cron expression' : 'a unix timestamp in seconds'}`);
  if (typeof o.format !== 'string') throw typeError('format', type === 1 ? 'a string cron expression' : 'a string unix timestamp', o.format);
  const format = o.format;
  if (format.length > 256) throw badInput(type === 1 ? Codes.CRON_INVALID : Codes.ONESHOT_FORMAT, `'format' is longer than 256 characters`);

  let timezone = limits.defaultTimezone;
  if (o.timezone !== undefined && o.timezone !== null) {
    if (typeof o.timezone !== 'string') throw typeError('timezone', 'an IANA timezone name string', o.timezone);
    timezone = checkTimezone(o.timezone);
  }
  const callback = parseCallback(o.callback, limits);
  const spec: TaskSpec = {
    type,
    format,
    name: optString(o.name, 'name', 200),
    timezone,
    callback,
    timeout_ms: o.timeout_ms === undefined || o.timeout_ms === null ? null : intField(o.timeout_ms, 'timeout_ms', 1, MAX_TIMEOUT_MS),
    retry: parseRetry(o.retry),
    misfire: enumField<MisfirePolicy>(o.misfire, 'misfire', ['fire_once', 'skip'], 'fire_once'),
    overlap: enumField<OverlapPolicy>(o.overlap, 'overlap', ['allow', 'skip', 'queue'], 'allow'),
    idempotency_key: optString(o.idempotency_key, 'idempotency_key', 200),
    start_time: null,
    end_time: null,
    on_success: null,
    alert_url: null,
    max_consecutive_failures: null,
    completion: 'sync',
    async_timeout_ms: null,
    tags: null,
  };
  applyPolicyFields(o, spec);
  applyPacingFields(o, spec, limits.flowKeys);
  let paused = false;
  if (o.paused !== undefined && o.paused !== null) {
    if (typeof o.paused !== 'boolean') throw typeError('paused', 'true or false', o.paused);
    paused = o.paused;
  }
  const next_fire_time = firstFire(spec, now, limits.pastGraceMs);
  return { spec, paused, next_fire_time };
}

/** The first fire time of a new (or rescheduled) task. Throws 1002 for a one-shot in the past. */
export function firstFire(
  spec: Pick<TaskSpec, 'type' | 'format' | 'timezone'> & Partial<Pick<TaskSpec, 'start_time' | 'end_time'>>,
  now: number,
  pastGraceMs: number,
): number {
  if (spec.type === ONE_SHOT) {
    const at = parseOneShot(spec.format);
    if (at < now - pastGraceMs) {
      throw badInput(Codes.ONESHOT_TIME, `one-shot time ${new Date(at).toISOString()} (format ${JSON.stringify(spec.format)}) is in the past; now is ${new Date(now).toISOString()}`);
    }
    return at;
  }
  const sched = parseSchedule(spec.type, spec.format, spec.timezone, now);
  const start = spec.start_time ?? null;
  const end = spec.end_time ?? null;
  const next = sched.next(start !== null ? Math.max(now, start - 1) : now);
  if (next === null) throw badInput(Codes.CRON_INVALID, `cron expression ${JSON.stringify(spec.format)} never fires after now`);
  if (end !== null && next > end) throw invalidOption('end_time', `the schedule has no fire time before end_time ${new Date(end).toISOString()}`);
  return next;
}

const UPDATE_FIELDS = fieldsOf(UpdateTaskInput);

/** A time option: integer ms epoch (13 digits) or unix seconds (10 digits), as number or string. */
function timeField(v: unknown, field: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' && typeof v !== 'string') throw typeError(field, 'a unix timestamp (seconds or milliseconds)', v);
  const s = String(v);
  if (!/^\d{10}$|^\d{13}$/.test(s)) throw invalidOption(field, `must be a unix timestamp in seconds (10 digits) or milliseconds (13 digits), got ${JSON.stringify(s.slice(0, 40))}`);
  return s.length === 10 ? Number(s) * 1000 : Number(s);
}

/** start_time, end_time, on_success, alert_url, max_consecutive_failures: given fields replace the spec's. */
function applyPolicyFields(o: Record<string, unknown>, spec: TaskSpec): void {
  if (o.start_time !== undefined) spec.start_time = timeField(o.start_time, 'start_time');
  if (o.end_time !== undefined) spec.end_time = timeField(o.end_time, 'end_time');
  if ((spec.start_time !== null || spec.end_time !== null) && spec.type !== PERIODIC) {
    throw invalidOption(spec.start_time !== null ? 'start_time' : 'end_time', 'applies to periodic tasks (type 1) only');
  }
  if (spec.start_time !== null && spec.end_time !== null && spec.end_time <= spec.start_time) {
    throw invalidOption('end_time', `must be after start_time (${spec.start_time}), got ${spec.end_time}`);
  }
  if (o.on_success !== undefined) {
    if (o.on_success === null) spec.on_success = null;
    else {
      if (!Array.isArray(o.on_success)) throw typeError('on_success', 'an array of task ids', o.on_success);
      if (o.on_success.length > MAX_CHILDREN) throw invalidOption('on_success', `at most ${MAX_CHILDREN} child tasks, got ${o.on_success.length}`);
      const ids = o.on_success.map((x, i) => {
        if (typeof x !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(x)) throw invalidOption(`on_success[${i}]`, `must be a task id string, got ${describe(x)}`);
        return x;
      });
      spec.on_success = ids.length ? [...new Set(ids)] : null;
    }
  }
  if (o.alert_url !== undefined) spec.alert_url = o.alert_url === null ? null : checkUrl(o.alert_url, 'alert_url');
  if (o.completion !== undefined) spec.completion = enumField<CompletionMode>(o.completion, 'completion', ['sync', 'async'], 'sync');
  if (o.async_timeout_ms !== undefined) {
    spec.async_timeout_ms = o.async_timeout_ms === null ? null : intField(o.async_timeout_ms, 'async_timeout_ms', 1000, MAX_ASYNC_TIMEOUT_MS);
  }
  if (o.tags !== undefined) spec.tags = parseTags(o.tags);
  if (o.max_consecutive_failures !== undefined) {
    spec.max_consecutive_failures = o.max_consecutive_failures === null ? null : intField(o.max_consecutive_failures, 'max_consecutive_failures', 0, 10_000);
  }
}

export interface UpdateRequest {
  /** The task's spec with the requested changes applied. */
  spec: TaskSpec;
  /** true/false when the request sets `paused`, null when it leaves it. */
  paused: boolean | null;
  /** True when format or timezone changed (the next fire must be recomputed). */
  rescheduled: boolean;
}

/**
 * Validates an updateTask body against the current spec. Fields not given are kept; `callback`
 * given is replaced whole. Type cannot change (create a new task instead).
 */
export function validateUpdate(body: Record<string, unknown>, current: TaskSpec, limits: ValidationLimits): UpdateRequest {
  if ('type' in body) throw invalidOption('type', 'cannot be changed; create a new task');
  rejectUnknown(body, UPDATE_FIELDS, '');
  const spec: TaskSpec = { ...current };
  let rescheduled = false;
  if (body.format !== undefined) {
    if (typeof body.format !== 'string') throw typeError('format', 'a string', body.format);
    if (body.format.length > 256) throw badInput(current.type === 1 ? Codes.CRON_INVALID : Codes.ONESHOT_FORMAT, `'format' is longer than 256 characters`);
    spec.format = body.format;
    rescheduled = true;
  }
  if (body.timezone !== undefined && body.timezone !== null) {
    if (typeof body.timezone !== 'string') throw typeError('timezone', 'an IANA timezone name string', body.timezone);
    spec.timezone = checkTimezone(body.timezone);
    rescheduled = true;
  }
  if (body.callback !== undefined) spec.callback = parseCallback(body.callback, limits);
  if (body.start_time !== undefined || body.end_time !== undefined) rescheduled = true;
  applyPolicyFields(body, spec);
  applyPacingFields(body, spec, limits.flowKeys);
  if (body.name !== undefined) spec.name = optString(body.name, 'name', 200);
  if (body.timeout_ms !== undefined) spec.timeout_ms = body.timeout_ms === null ? null : intField(body.timeout_ms, 'timeout_ms', 1, MAX_TIMEOUT_MS);
  if (body.retry !== undefined) spec.retry = parseRetry(body.retry);
  if (body.misfire !== undefined) spec.misfire = enumField<MisfirePolicy>(body.misfire, 'misfire', ['fire_once', 'skip'], current.misfire);
  if (body.overlap !== undefined) spec.overlap = enumField<OverlapPolicy>(body.overlap, 'overlap', ['allow', 'skip', 'queue'], current.overlap);
  let paused: boolean | null = null;
  if (body.paused !== undefined && body.paused !== null) {
    if (typeof body.paused !== 'boolean') throw typeError('paused', 'true or false', body.paused);
    paused = body.paused;
  }
  return { spec, paused, rescheduled };
}
