/**
 * The API under test through Hono's `app.request`: the node createXcron (src/xcron.ts) builds over a
 * real SQLite file in a temp dir, started without its scheduler (LocalOwnership takes the slots, so
 * the API answers and reports ready, but nothing fires), with a recording notifier in place of the
 * scheduler's, a manual clock and a silent logger.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { pino } from 'pino';
import type { ApiLimits, Notifier } from '../../src/api/app.js';
import { ManualClock } from '../../src/clock/index.js';
import { VERSION } from '../../src/config/index.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import type { Task } from '../../src/task/index.js';
import { createXcron, type Xcron } from '../../src/xcron.js';
import { checkExchange } from './contract.js';
import type { Envelope } from './http.js';
import { testConfig } from './xcron.js';

export { countRows } from './db.js';

/** The version the API reports (the server's own: createXcron does not take another). */
export const TEST_VERSION = VERSION;
/** 2030-01-01T00:00:30.000Z: half a minute past a round time, so next fire times are easy to state. */
export const T0 = Date.UTC(2030, 0, 1, 0, 0, 30);

export const TEST_LIMITS: ApiLimits = {
  requestBodyLimit: 64 * 1024,
  callbackBodyLimit: 1024,
  defaultTimezone: 'UTC',
  pastGraceMs: 1000,
};

export type NotifierEvent =
  | { kind: 'changed'; task: Task }
  | { kind: 'removed'; id: string; slot: number }
  | { kind: 'runQueued'; runId: string; slot: number };

export interface TestApi {
  app: Hono;
  store: SqliteTaskStore;
  clock: ManualClock;
  events: NotifierEvent[];
  dir: string;
  dbFile: string;
  slots: number;
  node: Xcron;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The config keys behind the API's limits. */
export function limitsConfig(l: ApiLimits): Record<string, unknown> {
  if (l.pastGraceMs !== 1000) throw new Error('pastGraceMs is fixed at 1000 ms in the server');
  return { request_body_limit: l.requestBodyLimit, default_timezone: l.defaultTimezone, callback: { body_limit: l.callbackBodyLimit } };
}

export async function createTestApi(opts: { now?: number; limits?: Partial<ApiLimits>; slots?: number } = {}): Promise<TestApi> {
  const dir = mkdtempSync(join(tmpdir(), 'xcron-api-'));
  const slots = opts.slots ?? 16;
  const clock = new ManualClock(opts.now ?? T0);
  const events: NotifierEvent[] = [];
  const recording: Notifier = {
    taskChanged: (task) => events.push({ kind: 'changed', task }),
    taskRemoved: (id, slot) => events.push({ kind: 'removed', id, slot }),
    runQueued: (runId, slot) => events.push({ kind: 'runQueued', runId, slot }),
  };
  const cfg = testConfig(dir, { node_id: 'api-test', cluster: { slots }, ...limitsConfig({ ...TEST_LIMITS, ...opts.limits }) });
  const node = await createXcron(cfg, { clock, log: pino({ level: 'silent' }), notifier: () => recording, processMetrics: false });
  await node.start({ scheduler: false });
  if (!(node.store instanceof SqliteTaskStore)) throw new Error('expected the store on the test thread');
  const close = async (): Promise<void> => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    app: node.app,
    store: node.store,
    clock,
    events,
    dir,
    dbFile: join(dir, 'xcron.db'),
    slots,
    node,
    close,
    [Symbol.asyncDispose]: close,
  };
}

export interface AppResponse<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  body: Envelope<T>;
}

export interface AppRequest {
  method?: string;
  /** Sent as JSON with Content-Type application/json. */
  json?: unknown;
  /** Sent as is. */
  body?: string;
  headers?: Record<string, string>;
  /** Skip the check of the exchange against the OpenAPI document (only for answers outside the contract). */
  unchecked?: boolean;
}

/** One request through app.request; parses the envelope (fails loudly when the body is not JSON). */
export async function send<T = unknown>(app: Hono, path: string, req: AppRequest = {}): Promise<AppResponse<T>> {
  const headers: Record<string, string> = { ...req.headers };
  let body: string | undefined = req.body;
  if (req.json !== undefined) {
    body = JSON.stringify(req.json);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  const method = req.method ?? (body === undefined ? 'GET' : 'POST');
  const res = await app.request(path, { method, headers, body });
  const text = await res.text();
  if (req.unchecked !== true) {
    const requestType = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
    checkExchange({ method, url: path, requestBody: body, requestType, status: res.status, contentType: res.headers.get('content-type'), text });
  }
  let parsed: Envelope<T>;
  try {
    parsed = JSON.parse(text) as Envelope<T>;
  } catch {
    throw new Error(`${req.method ?? 'GET'} ${path}: HTTP ${res.status} response is not JSON: ${text.slice(0, 300)}`);
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
