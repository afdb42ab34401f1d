/**
 * Fuzzing (fast-check): at least 10,000 generated and mutated requests to EVERY endpoint through
 * the real app (app.request, real SQLite, SSRF guard and metrics on), then a few hundred over real
 * HTTP to the built server. Never a 500 (nor code 1099), always the envelope, the process stays up,
 * and afterwards every stored task passes validation again: its spec re-validates to itself, its
 * schedule parses and its next fire time lies on the schedule, its URLs pass the SSRF policy.
 *
 * Every refusal carries the specific code of its HTTP status (a 404 is 1007 or 1012, never 1099 or
 * 1000), and a healthy store never answers 503. The store must agree with the answers: after each
 * endpoint, its tasks are exactly the ones created with code 0 and not deleted, the per-state counts
 * (/xcron/stats) match the tasks, and the runs match the tasks' run counts, with no run left without
 * its task; a refused request on a known task or run leaves that task or run exactly as it was. The
 * async-completion routes are served, and their bodies carry real run ids and report tokens.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/api/app.js';
import { CODE_INFO } from '../../src/api/contract/errors.js';
import { Codes } from '../../src/errors.js';
import { slotOf } from '../../src/cluster/index.js';
import { DestinationPolicy } from '../../src/delivery/ssrf.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { ONE_SHOT, PERIODIC, nextFire, parseOneShot, reportToken, validateCreate, type Task, type TaskSpec, type ValidationLimits } from '../../src/task/index.js';
import { cleanupTempDirs, stopAllServers, XcronServer } from '../helpers/server.js';
import { LIMITS, REPORT_SECRET, T0, createOpsApp, type OpsApp } from './helpers.js';

const RUNS_PER_ENDPOINT = Number(process.env.FUZZ_RUNS ?? 10_000);
const HTTP_RUNS = 400;
const SEED = Number(process.env.FUZZ_SEED ?? 20301);
const T0S = Math.floor(T0 / 1000);

// ---------------------------------------------------------------- generators

const nasty: unknown[] = [
  null, true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, '', ' ', '\u0000', '\uffff', '\ud800', '𝕏', 'null', '[]', '{}',
  'a'.repeat(5000), [], [[[[[]]]]], {}, { a: { b: { c: { d: {} } } } }, '__proto__', 'constructor', '../../etc/passwd', '%00', '${jndi:ldap://x}',
  "'; DROP TABLE tasks; --", '<script>alert(1)</script>', 'NaN', 'Infinity', '-0', '1e3', '0x10',
];
const VALID_CRONS = ['* * * * *', '*/5 * * * *', '0 0 1 1 *', '0 0 29 2 *', '@every 1s', '@every 90m', '@every 1h30m', '@daily', '0 0 12 ? * MON-FRI', '0 0 L * *', '0 15 10 ? * 6#3', '*/10 * * * * *', '0 0 0 1 1 * 2031', '  */2   *  * * *  ', '@EVERY 5S'];
const BAD_CRONS = ['0 0 30 2 *', '@every 0s', '@every 400d', '@reboot', '0 0 LW * ?', '0 0 0 1 1 * 2020', '61 * * * *', '* * * *', '* * * * * * * *', '1-60/0 * * * *', '0 0 * * 8', 'a b c d e', '0 0 31 4 *'];
const VALID_URLS = ['http://127.0.0.1:9/hook', 'https://localhost/x?y=1', 'http://[::1]:8080/', 'http://10.0.0.5/a', 'HTTP://127.0.0.1/UPPER', 'http://127.0.0.1/ü?q=✓'];
// (No hostnames but localhost: a DNS server's answer time is not what this suite measures.)
const BAD_URLS = [
  'http://169.254.169.254/latest/meta-data/', 'http://0xa9fea9fe/', 'http://[::ffff:169.254.169.254]/', 'http://[fe80::1]/', 'http://[fd00:ec2::254]/', 'ftp://127.0.0.1/',
  'http://user:pw@127.0.0.1/', 'http://', 'not a url', 'http://127.0.0.1:99999/', 'javascript:alert(1)', `http://127.0.0.1/${'a'.repeat(3000)}`,
];
const VALID_TZ = ['UTC', 'Asia/Shanghai', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Etc/GMT+14'];
const BAD_TZ = ['Mars/Olympus', '', 'utc', '../UTC'];

const weird = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...nasty) },
  { weight: 2, arbitrary: fc.constantFrom(...BAD_CRONS, ...BAD_URLS, ...BAD_TZ, ...VALID_CRONS, ...VALID_URLS) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
);

/** A task id: one of the tasks that exist at request time (by index), or a literal value. */
type IdPick = { known: number } | { literal: unknown };
const idPick: fc.Arbitrary<IdPick> = fc.oneof(
  { weight: 8, arbitrary: fc.nat().map((known) => ({ known })) },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 70 }), weird, fc.constantFrom('nope', 'a'.repeat(65), 'x-y_z')).map((literal) => ({ literal })) },
);

/**
 * Run ids made by triggerTask in this run of the suite (the app suite fills it); run bodies name one
 * of them by index, or a literal. A token is the run's real report token, or a literal.
 */
const knownRuns: string[] = [];
type RunPick = { knownRun: number } | { literal: unknown };
const runPick: fc.Arbitrary<RunPick> = fc.oneof(
  { weight: 8, arbitrary: fc.nat().map((knownRun) => ({ knownRun })) },
  { weight: 1, arbitrary: fc.oneof(weird, fc.constantFrom('nope:1893456030000', 'x-y_z:1', `${'a'.repeat(65)}:1`, 'a:b:1', ':1')).map((literal) => ({ literal })) },
);
const tokenPick = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ validToken: true as const }) },
  { weight: 1, arbitrary: fc.oneof(weird, fc.constantFrom('0'.repeat(64), 'deadbeef')).map((literal) => ({ literal })) },
);

// Valid values: the base of every body. Invalid ones come from the mutations below.
const cron = fc.constantFrom(...VALID_CRONS);
const oneShot = fc.oneof(fc.integer({ min: T0S + 2, max: T0S + 20 * 365 * 86_400 }).map(String), fc.integer({ min: T0 + 2000, max: T0 + 86_400_000 }).map(String));
const url = fc.constantFrom(...VALID_URLS);
const headers = fc.dictionary(fc.constantFrom('X-Token', 'X-A', 'Authorization', 'X-Trace-Id'), fc.string({ maxLength: 20 }).filter((v) => !/[\r\n\0]/.test(v)), { maxKeys: 3 });
const callbackBody = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }).filter((b) => JSON.stringify(b).length < 900);
const callback = fc.oneof(
  fc.record({ url, body: callbackBody, method: fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE', 'GET'), headers }, { requiredKeys: ['url'] }),
  fc.record({ urls: fc.array(url, { minLength: 1, maxLength: 3 }), route: fc.constantFrom('failover', 'round_robin', 'random', 'consistent_hash', 'broadcast'), body: callbackBody }, { requiredKeys: ['urls'] }),
);
const retry = fc
  .record({ max_attempts: fc.integer({ min: 1, max: 100 }), backoff_ms: fc.integer({ min: 0, max: 60_000 }), extra: fc.integer({ min: 0, max: 1_000_000 }) })
  .map(({ max_attempts, backoff_ms, extra }) => ({ max_attempts, backoff_ms, max_backoff_ms: backoff_ms + extra }));
const window = fc
  .record({ start: fc.integer({ min: T0 - 86_400_000, max: T0 + 30 * 86_400_000 }), len: fc.integer({ min: 86_400_000, max: 400 * 86_400_000 }), seconds: fc.boolean() })
  .map(({ start, len, seconds }) => (seconds ? { start_time: String(Math.floor(start / 1000)), end_time: String(Math.floor((start + len) / 1000)) } : { start_time: start, end_time: start + len }));

const options = {
  name: fc.string({ minLength: 1, maxLength: 30 }),
  timezone: fc.constantFrom(...VALID_TZ),
  timeout_ms: fc.integer({ min: 1, max: 300_000 }),
  retry,
  misfire: fc.constantFrom('fire_once', 'skip'),
  overlap: fc.constantFrom('allow', 'skip', 'queue'),
  paused: fc.boolean(),
  on_success: fc.array(idPick, { maxLength: 3 }),
  alert_url: url,
  max_consecutive_failures: fc.integer({ min: 0, max: 10_000 }),
};
/**
 * Only a run that awaits a report takes one (an async task's; no callback answers 202 here), so
 * about half the tasks complete async. Derived from the body (a map draws nothing), so the
 * generated sequence is otherwise what it was.
 */
const withCompletion = <T extends object,>(b: T): T & { completion?: string } => (JSON.stringify(b).length % 2 === 0 ? { ...b, completion: 'async' } : b);
const createBody = fc
  .oneof(
    fc.tuple(fc.record({ type: fc.constant(1), format: cron, callback, ...options, idempotency_key: fc.constantFrom('k1', 'k2', 'k3') }, { requiredKeys: ['type', 'format', 'callback'] }), fc.option(window, { nil: undefined })).map(([b, w]) => ({ ...b, ...w })),
    fc.record({ type: fc.constant(2), format: oneShot, callback, ...options }, { requiredKeys: ['type', 'format', 'callback'] }),
  )
  .map(withCompletion);
/** undefined 7 times in 8. */
const rarely = <T,>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.oneof({ weight: 7, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
/** updateTask: a task id and a few changed fields (a new format or window now and then). */
const updateBody = fc
  .tuple(
    idPick,
    fc.record({ callback, ...options }),
    fc.subarray(['callback', ...Object.keys(options)], { maxLength: 3 }),
    rarely(fc.oneof(cron, oneShot)),
    rarely(window),
  )
  .map(([task_id, all, keys, format, w]) => ({ task_id, ...Object.fromEntries(keys.map((k) => [k, (all as Record<string, unknown>)[k]])), ...(format !== undefined ? { format } : {}), ...w }));
const idBody = fc.record({ task_id: idPick, extra: weird }, { requiredKeys: ['task_id'] });
const reportBody = fc.record(
  {
    run_id: runPick,
    token: tokenPick,
    status: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('SUCCESS', 'FAIL') }, { weight: 1, arbitrary: weird }),
    message: fc.oneof(fc.string({ maxLength: 50 }), weird),
    output: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant('x'.repeat(70_000))),
  },
  { requiredKeys: ['run_id', 'token', 'status'] },
);
const appendBody = fc.record(
  { run_id: runPick, token: tokenPick, lines: fc.oneof({ weight: 6, arbitrary: fc.array(fc.string({ maxLength: 60 }), { maxLength: 8 }) }, { weight: 1, arbitrary: weird }) },
  { requiredKeys: ['run_id', 'token', 'lines'] },
);

const PATHS = ['type', 'format', 'callback', 'callback.url', 'callback.urls', 'callback.body', 'callback.method', 'callback.headers', 'callback.route', 'name', 'timezone', 'timeout_ms', 'retry', 'retry.max_attempts', 'misfire', 'overlap', 'paused', 'idempotency_key', 'start_time', 'end_time', 'on_success', 'alert_url', 'max_consecutive_failures', 'task_id', 'run_id', 'token', 'status', 'lines', 'output', '__proto__', 'constructor', 'unknown_field'];
/** Structural mutations: set a path to a weird value, or delete it. */
const mutations = fc.oneof(fc.constant<[string, unknown, boolean][]>([]), fc.array(fc.tuple(fc.constantFrom(...PATHS), weird, fc.boolean()), { minLength: 1, maxLength: 3 }));
/** Text mutations of the serialized body. */
const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 1, arbitrary: fc.nat().map((at) => ({ kind: 'truncate' as const, at })) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.string({ unit: 'binary', maxLength: 4 })).map(([at, s]) => ({ kind: 'insert' as const, at, s })) },
  { weight: 1, arbitrary: fc.constantFrom('\ufeff', ' \n\t', '[', '{"a":1}').map((s) => ({ kind: 'prefix' as const, s })) },
  { weight: 1, arbitrary: fc.constantFrom('}', ',', '\u0000', ' garbage').map((s) => ({ kind: 'suffix' as const, s })) },
);
const rawBody = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)), fc.constantFrom('', 'null', '{"task_id":', '{"task_id": null}', '{"type":1e400}', `{"a":${'['.repeat(5000)}`));
const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom<string | undefined>('application/json', 'application/json; charset=utf-8', 'application/merge-patch+json') },
  { weight: 1, arbitrary: fc.constantFrom<string | undefined>(undefined, '', 'text/plain', 'multipart/form-data', 'application/x-www-form-urlencoded', 'json') },
);

type TextMutation = { kind: 'none' } | { kind: 'truncate'; at: number } | { kind: 'insert'; at: number; s: string } | { kind: 'prefix'; s: string } | { kind: 'suffix'; s: string };
type BodyReq =
  | { kind: 'object'; value: unknown; muts: [string, unknown, boolean][]; text: TextMutation; ct: string | undefined; method: string }
  | { kind: 'raw'; value: string; ct: string | undefined; method: string };

function bodyArb(base: fc.Arbitrary<unknown>, methods: string[]): fc.Arbitrary<BodyReq> {
  const method = fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...methods) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') });
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('object' as const), value: base, muts: mutations, text: textMutation, ct: contentType, method }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), value: rawBody, ct: contentType, method }) },
  );
}

/** Query strings for GET endpoints. */
const queryArb = fc.record({
  task_id: fc.option(idPick, { nil: undefined, freq: 8 }),
  state: fc.option(fc.oneof({ weight: 6, arbitrary: fc.constantFrom('active', 'paused', 'completed') }, { weight: 1, arbitrary: fc.constantFrom('deleted', '', 'ACTIVE') }), { nil: undefined }),
  limit: fc.option(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 1000 }).map(String) }, { weight: 1, arbitrary: fc.oneof(fc.integer({ min: -5, max: 1500 }).map(String), fc.constantFrom('abc', '1.5', '', '1e3')) }), { nil: undefined }),
  cursor: rarely(fc.oneof(fc.base64String({ maxLength: 40 }), fc.string({ maxLength: 20 }), fc.constantFrom('MTg5MzQ1NjAzMDAwMDpub3Bl', '%%%'))),
  name: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
  junk: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
  run_id: fc.option(runPick, { nil: undefined, freq: 3 }),
  since: rarely(fc.oneof(fc.nat({ max: 60 }).map(String), fc.constantFrom('-1', 'x', '1e3', '9999999999'))),
  rawSuffix: fc.constantFrom('', '', '', '&%zz', '&task_id', '&=', '&a=%E0%A4%A'),
  method: fc.oneof({ weight: 30, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.constantFrom('POST', 'HEAD', 'DELETE') }),
});

/** GET /ui/api/next-fires (the dashboard's schedule preview): valid and invalid schedules, windows and counts. */
const msText = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: T0 - 86_400_000, max: T0 + 400 * 86_400_000 }).map(String) }, { weight: 1, arbitrary: fc.constantFrom('', 'x', '-1', '1e20', '99999999999999999') });
const previewArb = fc.record({
  type: fc.option(fc.oneof({ weight: 6, arbitrary: fc.constantFrom('1', '2') }, { weight: 1, arbitrary: fc.constantFrom('0', '3', 'x', '') }), { nil: undefined, freq: 4 }),
  format: fc.option(fc.oneof({ weight: 4, arbitrary: cron }, { weight: 2, arbitrary: oneShot }, { weight: 1, arbitrary: fc.constantFrom(...BAD_CRONS.filter((c) => !/^0 0 3[01] [24] \*$/.test(c))) }, { weight: 1, arbitrary: fc.string({ maxLength: 300 }) }), { nil: undefined, freq: 8 }),
  timezone: fc.option(fc.constantFrom(...VALID_TZ, ...BAD_TZ, 'x'.repeat(120)), { nil: undefined }),
  count: fc.option(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 20 }).map(String) }, { weight: 1, arbitrary: fc.constantFrom('0', '21', '-1', 'abc', '1000', '') }), { nil: undefined }),
  from: fc.option(msText, { nil: undefined }),
  start: rarely(msText),
  end: rarely(msText),
  method: fc.oneof({ weight: 30, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.constantFrom('POST', 'HEAD', 'DELETE') }),
});

// ---------------------------------------------------------------- request building

interface Built {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

function resolveIds(v: unknown, ids: readonly string[]): unknown {
  if (Array.isArray(v)) return v.map((x) => resolveIds(x, ids));
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Object.keys(o).length === 1 && typeof o.known === 'number') return ids.length ? ids[o.known % ids.length] : 'none-yet';
    if (Object.keys(o).length === 1 && typeof o.knownRun === 'number') return knownRuns.length ? knownRuns[o.knownRun % knownRuns.length] : 'none-yet:1893456030000';
    if (Object.keys(o).length === 1 && 'literal' in o) return o.literal;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = resolveIds(x, ids);
    // A report token marker: the real token of the run this body names.
    const t = out.token as { validToken?: unknown } | undefined;
    if (t && typeof t === 'object' && t.validToken === true) out.token = reportToken(REPORT_SECRET, typeof out.run_id === 'string' ? out.run_id : '');
    return out;
  }
  return v;
}

function applyMutations(value: unknown, muts: [string, unknown, boolean][]): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  const root = structuredClone(value) as Record<string, unknown>;
  for (const [path, v, del] of muts) {
    const keys = path.split('.');
    let cur: Record<string, unknown> = root;
    for (const k of keys.slice(0, -1)) {
      const next = cur[k];
      if (!next || typeof next !== 'object' || Array.isArray(next)) {
        cur = {};
        break;
      }
      cur = next as Record<string, unknown>;
    }
    const last = keys[keys.length - 1]!;
    if (del) delete cur[last];
    else Object.defineProperty(cur, last, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

function serialize(r: BodyReq, ids: readonly string[]): string {
  if (r.kind === 'raw') return r.value;
  const v = applyMutations(resolveIds(r.value, ids), r.muts);
  let text = JSON.stringify(v) ?? 'null';
  const t = r.text;
  if (t.kind === 'truncate') text = text.slice(0, t.at % (text.length + 1));
  else if (t.kind === 'insert') {
    const at = t.at % (text.length + 1);
    text = text.slice(0, at) + t.s + text.slice(at);
  } else if (t.kind === 'prefix') text = t.s + text;
  else if (t.kind === 'suffix') text += t.s;
  return text;
}

function buildBodyRequest(path: string, r: BodyReq, ids: readonly string[]): Built {
  const headers: Record<string, string> = {};
  if (r.ct !== undefined) headers['content-type'] = r.ct;
  const withBody = r.method !== 'GET' && r.method !== 'HEAD';
  return { method: r.method, path, headers, body: withBody ? serialize(r, ids) : undefined };
}

/** encodeURIComponent, with lone surrogates replaced (they cannot be encoded). */
const encodeQuery = (v: string): string => encodeURIComponent(v.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));

function buildQueryRequest(path: string, q: Record<string, unknown>, ids: readonly string[]): Built {
  const parts: string[] = [];
  for (const k of ['task_id', 'run_id', 'state', 'limit', 'cursor', 'name', 'junk', 'since']) {
    const v = q[k];
    if (v === undefined) continue;
    const val = k === 'task_id' || k === 'run_id' ? resolveIds(v, ids) : v;
    parts.push(`${k}=${encodeQuery(typeof val === 'string' ? val : (JSON.stringify(val) ?? ''))}`);
  }
  const qs = parts.join('&') + String(q.rawSuffix);
  return { method: String(q.method), path: qs ? `${path}?${qs}` : path, headers: {}, body: undefined };
}

// ---------------------------------------------------------------- checks

interface Answer {
  status: number;
  text: string;
  contentType: string | null;
}

/** The per-response invariant. Returns a problem, or null. */
function checkAnswer(b: Built, a: Answer): string | null {
  const what = `${b.method} ${b.path.slice(0, 120)} body=${JSON.stringify((b.body ?? '').slice(0, 200))} -> ${a.status} ${a.text.slice(0, 300)}`;
  if (a.status >= 500) return `server error (the store is healthy): ${what}`;
  if (b.method === 'HEAD') return null;
  if (b.path.startsWith('/metrics') && b.method === 'GET' && a.status === 200) return a.text.includes('# TYPE xcron_fires_total counter') ? null : `metrics text missing: ${what}`;
  let env: { uuid?: unknown; code?: unknown; message?: unknown };
  try {
    env = JSON.parse(a.text) as typeof env;
  } catch {
    return `not JSON: ${what}`;
  }
  if (typeof env.uuid !== 'string' || typeof env.code !== 'number' || typeof env.message !== 'string') return `no envelope: ${what}`;
  if (env.code === 1099) return `internal error code: ${what}`;
  if ((a.status === 200) !== (env.code === 0)) return `status/code mismatch: ${what}`;
  if (a.status !== 200 && !(CODES_OF_STATUS[a.status] ?? []).includes(env.code)) return `code ${env.code} is not a specific code for HTTP ${a.status}: ${what}`;
  return null;
}

/** The error codes each refusal status may carry (the contract's code table, as docs/api.md lists it); anything else is not specific. */
const CODES_OF_STATUS: Record<number, number[]> = {};
for (const [code, info] of Object.entries(CODE_INFO)) {
  if (Number(code) === Codes.INTERNAL) continue;
  for (const st of info.statuses) (CODES_OF_STATUS[st] ??= []).push(Number(code));
}

const RUNTIME_FIELDS = new Set(['id', 'slot', 'state', 'create_time', 'update_time', 'next_fire_time', 'last_fire_time', 'last_status', 'run_count', 'pause']);

/** Re-validates a stored task. Returns its problems (empty when valid). */
export async function revalidate(t: Task, opts: { now: number; limits: ValidationLimits; slots: number; policy: DestinationPolicy }): Promise<string[]> {
  const problems: string[] = [];
  const p = (s: string): void => {
    problems.push(`${t.id}: ${s}`);
  };
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(t.id)) p('bad id');
  if (t.slot !== slotOf(t.id, opts.slots)) p(`slot ${t.slot} != slotOf(id)`);
  if (!['active', 'paused', 'completed'].includes(t.state)) p(`bad state ${String(t.state)}`);
  if (!Number.isInteger(t.run_count) || t.run_count < 0) p('bad run_count');
  if (t.state === 'active' && (typeof t.next_fire_time !== 'number' || !Number.isFinite(t.next_fire_time))) p('active without a next fire time');
  // The create body of this task: every stored field but the runtime ones (so spec fields added
  // later are covered without touching this test).
  const body = Object.fromEntries(Object.entries(t).filter(([k]) => !RUNTIME_FIELDS.has(k)));
  try {
    const req = validateCreate(JSON.parse(JSON.stringify(body)), opts.now, opts.limits);
    const again: TaskSpec = req.spec;
    for (const k of Object.keys(again) as (keyof TaskSpec)[]) {
      if (!(k in t)) continue;
      if (JSON.stringify(again[k]) !== JSON.stringify(t[k])) p(`field ${k} does not re-validate to itself: ${JSON.stringify(t[k])?.slice(0, 100)} vs ${JSON.stringify(again[k])?.slice(0, 100)}`);
    }
  } catch (e) {
    p(`does not validate: ${(e as Error).message}`);
  }
  if (t.next_fire_time !== null && t.state !== 'completed') {
    try {
      if (t.type === ONE_SHOT && t.next_fire_time !== parseOneShot(t.format)) p('one-shot next fire time is not its timestamp');
      if (t.type === PERIODIC && nextFire(t, t.next_fire_time - 1) !== t.next_fire_time) p(`next fire time ${t.next_fire_time} is not on the schedule`);
    } catch (e) {
      p(`schedule does not parse: ${(e as Error).message}`);
    }
  }
  for (const u of [t.callback.url, ...(t.callback.urls ?? []), ...(t.alert_url ? [t.alert_url] : [])]) {
    const why = await opts.policy.urlRefusal(u);
    if (why) p(`url refused by the SSRF policy: ${why}`);
  }
  for (const c of t.on_success ?? []) if (c === t.id) p('its own child');
  return problems;
}

async function allTasks(store: SqliteTaskStore): Promise<Task[]> {
  const out: Task[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await store.listTasks({ state: null, namePrefix: null, after, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    after = page[page.length - 1]!.id;
  }
}

// ---------------------------------------------------------------- the suites

const POST_BODIES: Record<string, fc.Arbitrary<unknown>> = {
  '/xcron/createTask': createBody,
  '/xcron/updateTask': updateBody,
  '/xcron/pauseTask': idBody,
  '/xcron/resumeTask': idBody,
  '/xcron/triggerTask': idBody,
  '/xcron/deleteTask': idBody,
  '/xcron/reportRun': reportBody,
  '/xcron/appendRunLog': appendBody,
};
/** Every route, deletes last so the other endpoints meet many real tasks. */
const ENDPOINTS = Object.keys(ROUTES).sort((a, b) => Number(a === '/xcron/deleteTask') - Number(b === '/xcron/deleteTask'));

/** Generic bodies for POST endpoints without their own generator (e.g. added after this suite). */
const anyBody = fc.oneof(createBody, updateBody, idBody, fc.jsonValue({ maxDepth: 3 }), fc.record({ run_id: fc.string({ maxLength: 30 }), token: fc.string({ maxLength: 30 }), status: fc.constantFrom('SUCCESS', 'FAIL', 'x'), lines: fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }) }, { requiredKeys: [] }));

function requestArb(path: string): fc.Arbitrary<(ids: readonly string[]) => Built> {
  const post = POST_BODIES[path];
  if (post || ROUTES[path]?.includes('POST')) {
    return bodyArb(post ? fc.oneof({ weight: 4, arbitrary: post }, { weight: 1, arbitrary: anyBody }) : anyBody, ['POST']).map((r) => (ids: readonly string[]) => buildBodyRequest(path, r, ids));
  }
  return queryArb.map((q) => (ids: readonly string[]) => buildQueryRequest(path, q as unknown as Record<string, unknown>, ids));
}
/** Endpoints the generators know well enough that some requests must succeed. */
const COVERED = new Set([...Object.keys(POST_BODIES), '/xcron/queryTask', '/xcron/listTasks', '/xcron/taskRuns', '/xcron/runLog', '/xcron/stats', '/xcron/cluster', '/healthz', '/readyz', '/metrics']);

describe('fuzz through the app (app.request)', () => {
  let api: OpsApp;
  const ids: string[] = [];
  const policy = new DestinationPolicy();
  const counts = new Map<string, number>();
  const statuses = new Map<string, Map<number, number>>();

  beforeAll(async () => {
    api = await createOpsApp({ logLevel: 'warn', runs: true });
  });
  afterAll(async () => {
    await api.close();
  });

  const validateStore = async (): Promise<Task[]> => {
    const errors = api.logs.parsed().filter((l) => l.msg === 'unhandled error in request');
    expect(errors).toEqual([]);
    const tasks = await allTasks(api.store);
    const problems: string[] = [];
    // One-shots are judged at their creation (their time may have passed since: a resumed one-shot
    // keeps its time and fires late); periodic tasks now.
    for (const t of tasks) problems.push(...(await revalidate(t, { now: t.type === ONE_SHOT ? t.create_time : api.clock.now(), limits: LIMITS, slots: 16, policy })));
    expect(problems.slice(0, 20)).toEqual([]);
    return tasks;
  };

  /** The store agrees with the answers: its tasks, its per-state counts, its runs. */
  const checkConsistent = async (): Promise<void> => {
    const tasks = await allTasks(api.store);
    expect(tasks.map((t) => t.id).sort()).toEqual([...ids].sort()); // created with code 0 and not deleted, nothing else
    const st = await api.store.stats();
    const byState: Record<string, number> = { active: 0, paused: 0, completed: 0 };
    for (const t of tasks) byState[t.state] = (byState[t.state] ?? 0) + 1;
    expect(st.tasks).toEqual(byState);
    const runs = Object.values(st.runs).reduce((a, b) => a + b, 0);
    expect(runs).toBe(tasks.reduce((a, t) => a + t.run_count, 0));
    const db = new Database(join(api.dir, 'xcron.db'), { readonly: true, fileMustExist: true });
    try {
      expect(db.prepare('SELECT COUNT(*) AS n FROM runs WHERE task_id NOT IN (SELECT id FROM tasks)').get()).toEqual({ n: 0 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM run_logs WHERE run_id NOT IN (SELECT run_id FROM runs)').get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  };

  /** What a request on a known task or run may change: that task's row, that run's row and log. */
  const snapshotOf = async (b: Built): Promise<string | null> => {
    if (b.method !== 'POST' || b.body === undefined) return null;
    let body: unknown;
    try {
      body = JSON.parse(b.body);
    } catch {
      return null;
    }
    if (!body || typeof body !== 'object') return null;
    const { task_id, run_id } = body as { task_id?: unknown; run_id?: unknown };
    const parts: unknown[] = [];
    if (typeof task_id === 'string' && ids.includes(task_id)) parts.push(await api.store.get(task_id));
    if (typeof run_id === 'string' && knownRuns.includes(run_id)) parts.push(await api.store.getRun(run_id), await api.store.readRunLog(run_id, 0, 10_000));
    return parts.length ? JSON.stringify(parts) : null;
  };

  for (const path of ENDPOINTS) {
    if (path === '/xcron/deleteTask') {
      it('before the deletes: every stored task (many, created and changed by the fuzz) is still valid', async () => {
        const tasks = await validateStore();
        expect(tasks.length).toBeGreaterThan(Math.min(500, RUNS_PER_ENDPOINT / 20));
        expect(new Set(tasks.map((t) => t.state))).toEqual(new Set(['active', 'paused']));
        expect(tasks.some((t) => t.run_count > 0)).toBe(true); // triggerTask recorded runs
        expect(tasks.some((t) => t.update_time !== t.create_time || t.name !== null)).toBe(true);
      }, 120_000);
    }
    it(`${path}: ${RUNS_PER_ENDPOINT} generated requests, never a 500`, async () => {
      const seen = new Map<number, number>();
      statuses.set(path, seen);
      await fc.assert(
        fc.asyncProperty(requestArb(path), async (make) => {
          const b = make(ids);
          api.clock.advance(1); // time moves on (each manual trigger gets its own fire id)
          const before = await snapshotOf(b);
          const res = await api.app.request(b.path, { method: b.method, headers: b.headers, ...(b.body !== undefined ? { body: b.body } : {}) });
          const a: Answer = { status: res.status, text: b.method === 'HEAD' ? '' : await res.text(), contentType: res.headers.get('content-type') };
          counts.set(path, (counts.get(path) ?? 0) + 1);
          seen.set(a.status, (seen.get(a.status) ?? 0) + 1);
          const problem = checkAnswer(b, a);
          if (problem) throw new Error(problem);
          if (before !== null && a.status !== 200) {
            const after = await snapshotOf(b);
            if (after !== before) throw new Error(`a refused request changed the store: ${b.method} ${b.path} ${b.body?.slice(0, 200)} -> ${a.status} ${a.text.slice(0, 200)}\nbefore ${before.slice(0, 400)}\nafter  ${after?.slice(0, 400)}`);
          }
          if (path === '/xcron/triggerTask' && a.status === 200) knownRuns.push((JSON.parse(a.text) as { data: { run_id: string } }).data.run_id);
          if (path === '/xcron/createTask' && a.status === 200) {
            const id = (JSON.parse(a.text) as { data: { task_id: string } }).data.task_id;
            if (!ids.includes(id)) ids.push(id);
          }
          if (path === '/xcron/deleteTask' && a.status === 200) {
            // The deleted id is the body's task_id (the server decodes the body without a BOM). The
            // body may name other known ids too (a generic body's on_success), so it is parsed.
            const named = (JSON.parse(b.body!.replace(/^\ufeff/, '')) as { task_id: string }).task_id;
            const i = ids.indexOf(named);
            if (i < 0) throw new Error(`deleteTask answered 200 for ${JSON.stringify(named)}, which is not a known task: ${b.body}`);
            ids.splice(i, 1);
          }
        }),
        { numRuns: RUNS_PER_ENDPOINT, seed: SEED + ENDPOINTS.indexOf(path) },
      );
      expect(counts.get(path)).toBeGreaterThanOrEqual(RUNS_PER_ENDPOINT);
      await checkConsistent();
      // the generator reaches both success and rejection on every endpoint it knows
      if (path.startsWith('/xcron/') && COVERED.has(path)) {
        expect(seen.get(200) ?? 0, `${path} statuses ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
        expect([...seen.keys()].some((s) => s >= 400), `${path} statuses ${JSON.stringify([...seen])}`).toBe(true);
      }
    }, 600_000);
  }

  it('after the deletes: no request ended in an unhandled error, every remaining task is valid', async () => {
    const tasks = await validateStore();
    expect(tasks.length).toBe(ids.length); // the deletes that answered code 0 removed exactly those tasks
    console.log('fuzz status counts:', JSON.stringify(Object.fromEntries([...statuses].map(([p, m]) => [p, Object.fromEntries(m)]))));
  }, 120_000);

  it('/ui/api/next-fires: generated previews, never a 500, always the envelope with a specific code', async () => {
    // Fewer runs than the API routes: a preview is a schedule search (its cost is bounded by the
    // preview's own limits, tested with the dashboard), and schedules that never match are left out.
    const numRuns = Math.min(RUNS_PER_ENDPOINT, 1500);
    const seen = new Map<number, number>();
    let client = 0;
    await fc.assert(
      fc.asyncProperty(previewArb, async (q) => {
        const parts: string[] = [];
        for (const k of ['type', 'format', 'timezone', 'count', 'from', 'start', 'end'] as const) if (q[k] !== undefined) parts.push(`${k}=${encodeQuery(q[k])}`);
        const b: Built = { method: q.method, path: `/ui/api/next-fires?${parts.join('&')}`, headers: {}, body: undefined };
        // Each generated preview comes from its own client address: the preview's per-client rate
        // limit (10/s) would otherwise answer nearly every request 429 and leave the search untested.
        client += 1;
        const env = { incoming: { socket: { remoteAddress: `10.9.${client >> 8}.${client & 255}` } } };
        const res = await api.app.request(b.path, { method: b.method }, env);
        const a: Answer = { status: res.status, text: b.method === 'HEAD' ? '' : await res.text(), contentType: res.headers.get('content-type') };
        seen.set(a.status, (seen.get(a.status) ?? 0) + 1);
        const problem = checkAnswer(b, a);
        if (problem) throw new Error(problem);
      }),
      { numRuns, seed: SEED + 500 },
    );
    expect(seen.get(200) ?? 0, JSON.stringify([...seen])).toBeGreaterThan(numRuns / 10);
    expect(seen.get(400) ?? 0, JSON.stringify([...seen])).toBeGreaterThan(numRuns / 20);
  }, 300_000);

  it('the re-validation detects a corrupted task (control)', async () => {
    const made = await api.app.request('/xcron/createTask', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 1, format: '*/5 * * * *', callback: { url: 'http://127.0.0.1:9/control' } }) });
    const id = ((await made.json()) as { data: { task_id: string } }).data.task_id;
    const good = await api.store.get(id);
    expect(good).not.toBeNull();
    const opts = { now: api.clock.now(), limits: LIMITS, slots: 16, policy };
    expect(await revalidate(good!, opts)).toEqual([]);
    expect(await revalidate({ ...good!, format: '61 * * * *', type: 1 }, opts)).not.toEqual([]);
    expect(await revalidate({ ...good!, callback: { ...good!.callback, url: 'http://169.254.169.254/' } }, opts)).not.toEqual([]);
    expect(await revalidate({ ...good!, slot: (good!.slot + 1) % 16 }, opts)).not.toEqual([]);
    expect(await revalidate({ ...good!, retry: { max_attempts: 0, backoff_ms: 1, max_backoff_ms: 1 } }, opts)).not.toEqual([]);
    expect(await revalidate({ ...good!, next_fire_time: good!.type === 1 ? good!.next_fire_time! + 1 : 1 }, opts)).not.toEqual([]);
  });
});

describe('fuzz over HTTP against the built server', () => {
  afterAll(async () => {
    await stopAllServers();
    cleanupTempDirs();
  });

  it(`${HTTP_RUNS} generated requests spread over every endpoint: no 500, the server stays up, the store stays valid`, async () => {
    const server = await XcronServer.start({ env: { XCRON_REQUEST_BODY_LIMIT: '65536', XCRON_CALLBACK_BODY_LIMIT: '1024' } });
    const ids: string[] = [];
    const seed = await server.client.mustCreate({ type: 1, format: '0 0 1 1 *', callback: { url: 'http://127.0.0.1:9/seed' } });
    ids.push(seed.task_id);
    let sent = 0;
    const perEndpoint = Math.ceil(HTTP_RUNS / ENDPOINTS.length);
    for (const path of ENDPOINTS) {
      await fc.assert(
        fc.asyncProperty(requestArb(path), async (make) => {
          const b = make(ids);
          if (b.method === 'OPTIONS' || b.method === 'HEAD') b.method = 'GET';
          const res = await fetch(server.baseUrl + b.path, { method: b.method, headers: b.headers, ...(b.body !== undefined && b.method !== 'GET' ? { body: b.body } : {}) });
          const a: Answer = { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
          sent++;
          const problem = checkAnswer({ ...b, body: b.method === 'GET' ? undefined : b.body }, a);
          if (problem) throw new Error(`${problem}\n${server.tail(10)}`);
          if (path === '/xcron/createTask' && a.status === 200) ids.push((JSON.parse(a.text) as { data: { task_id: string } }).data.task_id);
        }),
        { numRuns: perEndpoint, seed: SEED + 100 + ENDPOINTS.indexOf(path), endOnFailure: true },
      );
    }
    expect(sent).toBeGreaterThanOrEqual(HTTP_RUNS);
    expect(ids.length).toBeGreaterThan(1); // some generated creates were valid and stored
    expect(server.running).toBe(true);
    expect((await server.client.healthz()).status).toBe(200);
    expect(server.logs().filter((l) => l.msg === 'unhandled error in request' || l.level === 60)).toEqual([]);
    // A clean stop (exit code 0), then the stored tasks are re-validated from the SQLite file.
    server.kill('SIGTERM');
    const exit = await server.waitExit(30_000);
    expect(exit.code).toBe(0);
    const store = new SqliteTaskStore({ file: server.dbFile, synchronous: 'normal' });
    try {
      const tasks = await allTasks(store);
      expect(tasks.length).toBeGreaterThanOrEqual(1);
      const policy = new DestinationPolicy();
      const problems: string[] = [];
      // the server's clock moved on: one-shots are re-validated against their own creation time
      for (const t of tasks) problems.push(...(await revalidate(t, { now: t.type === ONE_SHOT ? t.create_time : Date.now(), limits: { ...LIMITS, callbackBodyLimit: 1024 }, slots: 256, policy })));
      expect(problems.slice(0, 20)).toEqual([]);
    } finally {
      await store.close();
    }
  }, 300_000);
});
