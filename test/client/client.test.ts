/**
 * The TypeScript client (clients/typescript) against the real built server: every method, typed
 * errors with their codes and request ids, pagination over several pages, the async worker
 * endpoints with a real callback, auth tokens, and retries on 503 through a small proxy that answers
 * 503 before forwarding to the real server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  XcronApiError,
  XcronAuthError,
  XcronClient,
  XcronConflictError,
  XcronNotFoundError,
  XcronTransportError,
  XcronUnavailableError,
  XcronValidationError,
  parseRetryAfter,
  type RetryInfo,
  type TaskView,
} from '../../clients/typescript/src/index.js';
import { header } from '../helpers/receiver.js';
import { XcronServer } from '../helpers/server.js';
import { sharedServer } from '../helpers/suites.js';
import { waitUntil } from '../helpers/wait.js';

const closers: (() => Promise<void>)[] = [];
const fx = sharedServer({
  beforeStop: async () => {
    for (const c of closers) await c();
  },
});

/** Rejects with the error `p` throws (fails when it resolves). */
async function thrown(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to throw');
}

describe('every endpoint through the client, against the real server', () => {
  it('health, readiness, cluster, stats and metrics', async () => {
    expect(await fx.client.healthz()).toMatchObject({ status: 'ok', version: expect.any(String) });
    expect(await fx.client.readyz()).toEqual({ ready: true, store: true, member: true });
    const cl = await fx.client.cluster();
    expect(cl.node).toBe(`e2e-${new URL(fx.server.baseUrl).port}`);
    expect(cl.members).toEqual([cl.node]);
    expect(cl.slots.length).toBeGreaterThan(0);
    expect(cl.slots[0]).toMatchObject({ slot: 0, owner: cl.node, epoch: expect.any(Number) });
    const st = await fx.client.stats();
    expect(st.node).toBe(cl.node);
    expect(st.tasks).toMatchObject({ active: expect.any(Number), paused: expect.any(Number), completed: expect.any(Number) });
    expect(st.live).toMatchObject({ fired: expect.any(Number), lateness_ms: { count: expect.any(Number) } });
    const text = await fx.client.metrics();
    expect(text).toMatch(/^# (HELP|TYPE) xcron_/m);
  });

  it('create, query, update, pause, resume, trigger, runs, delete; then 1007 as XcronNotFoundError', async () => {
    const created = await fx.client.createTask({
      type: 1,
      format: '0 0 1 1 *',
      name: 'client-crud',
      timezone: 'Asia/Shanghai',
      retry: { max_attempts: 2, backoff_ms: 100 },
      callback: { url: fx.recv.url('/crud'), body: { job: 'crud' }, headers: { 'X-Env': 'test' } },
    });
    expect(created.task_id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(created.next_fire_time).toBeGreaterThan(Date.now());

    const q = await fx.client.queryTask(created.task_id);
    expect(q).toMatchObject({
      task_id: created.task_id,
      type: 1,
      format: '0 0 1 1 *',
      state: 'active',
      name: 'client-crud',
      timezone: 'Asia/Shanghai',
      run_count: 0,
      callback: { url: fx.recv.url('/crud'), body: { job: 'crud' }, headers: { 'X-Env': 'test' } },
      retry: { max_attempts: 2, backoff_ms: 100 },
      stats: { window_runs: 0 },
    });
    expect(q.create_time).toMatch(/^\d{10}$/);

    const up = await fx.client.updateTask({ task_id: created.task_id, format: '0 0 2 1 *', name: 'client-crud-2' });
    expect(up).toMatchObject({ task_id: created.task_id, state: 'active' });
    expect(up.next_fire_time).not.toBe(created.next_fire_time);
    expect((await fx.client.queryTask(created.task_id)).name).toBe('client-crud-2');

    expect(await fx.client.pauseTask(created.task_id)).toEqual({ task_id: created.task_id, state: 'paused' });
    expect((await fx.client.resumeTask(created.task_id)).state).toBe('active');

    const trig = await fx.client.triggerTask(created.task_id);
    expect(trig.run_id).toBe(`${created.task_id}:${trig.scheduled_time}`);
    const cb = await fx.recv.waitForRequest((r) => header(r, 'x-xcron-fire-id') === trig.run_id, 20_000, 'the triggered callback');
    expect(JSON.parse(cb.body)).toEqual({ job: 'crud' });
    const runs = await waitUntil(() => fx.client.taskRuns(created.task_id), (p) => p.runs[0]?.status === 'SUCCESS', 20_000, 'the manual run recorded SUCCESS');
    expect(runs.runs[0]).toMatchObject({ run_id: trig.run_id, task_id: created.task_id, http_status: 200, attempts: 1 });
    expect(runs.next_cursor).toBeNull();

    await fx.client.deleteTask(created.task_id);
    const err = await thrown(fx.client.queryTask(created.task_id));
    expect(err).toBeInstanceOf(XcronNotFoundError);
    expect(err).toBeInstanceOf(XcronApiError);
    const e = err as XcronNotFoundError;
    expect(e.code).toBe(ErrorCodes.TASK_NOT_FOUND);
    expect(e.code).toBe(1007);
    expect(e.httpStatus).toBe(404);
    expect(e.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.serverMessage).toContain(created.task_id);
    expect(e.attempts).toBe(1);
    const del = (await thrown(fx.client.deleteTask(created.task_id))) as XcronApiError;
    expect(del).toBeInstanceOf(XcronNotFoundError);
    expect(del.code).toBe(1007);
  });

  it('validation failures are XcronValidationError with the code of the field; X-Request-Id is echoed', async () => {
    const bad = (await thrown(fx.client.createTask({ type: 1, format: 'not a cron', callback: { url: fx.recv.url('/x') } }, { requestId: 'client-req-42' }))) as XcronApiError;
    expect(bad).toBeInstanceOf(XcronValidationError);
    expect(bad.code).toBe(ErrorCodes.CRON_INVALID);
    expect(bad.httpStatus).toBe(400);
    expect(bad.method).toBe('POST');
    expect(bad.path).toBe('/xcron/createTask');
    const tz = (await thrown(fx.client.createTask({ type: 1, format: '* * * * *', timezone: 'Mars/Olympus', callback: { url: fx.recv.url('/x') } }))) as XcronApiError;
    expect(tz.code).toBe(ErrorCodes.TIMEZONE);
    const lim = (await thrown(fx.client.listTasks({ limit: 5000 }))) as XcronApiError;
    expect(lim).toBeInstanceOf(XcronValidationError);
    expect(lim.code).toBe(ErrorCodes.INVALID_OPTION);
    // the request id the client sent is what the server logged
    await fx.server.waitForLog((l) => l.msg === 'request' && l.client_req_id === 'client-req-42', 10_000, 'the access line with the client request id');
  });

  it('pagination: iterateTasks and taskPages follow next_cursor over several pages; iterateTaskRuns too', async () => {
    const prefix = `page-${Date.now()}-`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await fx.client.createTask({ type: 1, format: '0 0 1 1 *', name: `${prefix}${i}`, paused: true, callback: { url: fx.recv.url('/page') } })).task_id);
    const pages = [];
    for await (const p of fx.client.taskPages({ name: prefix, limit: 2 })) pages.push(p);
    expect(pages.map((p) => p.tasks.length)).toEqual([2, 2, 1]);
    expect(pages[2]!.next_cursor).toBeNull();
    const all: TaskView[] = [];
    for await (const t of fx.client.iterateTasks({ name: prefix, limit: 2, state: 'paused' })) all.push(t);
    expect(all.map((t) => t.task_id)).toEqual([...ids].sort());
    expect(all.every((t) => t.state === 'paused')).toBe(true);
    const none: TaskView[] = [];
    for await (const t of fx.client.iterateTasks({ name: prefix, state: 'active' })) none.push(t);
    expect(none).toEqual([]);

    // three manual runs of one task, read two per page
    const id = ids[0]!;
    const runIds: string[] = [];
    for (let i = 0; i < 3; i++) runIds.push((await fx.client.triggerTask(id)).run_id);
    const runPages = [];
    for await (const p of fx.client.runPages(id, { limit: 2 })) runPages.push(p);
    expect(runPages.map((p) => p.runs.length)).toEqual([2, 1]);
    const seen: string[] = [];
    for await (const r of fx.client.iterateTaskRuns(id, { limit: 2 })) seen.push(r.run_id);
    expect(seen).toEqual([...runIds].reverse()); // newest first
    for (const t of ids) await fx.client.deleteTask(t);
  });

  it('async jobs: appendRunLog, runLog, followRunLog and reportRun with the callback token; 1017 as XcronConflictError', async () => {
    fx.recv.on('/async', { status: 202 });
    const { task_id } = await fx.client.createTask({ type: 1, format: '0 0 1 1 *', completion: 'async', callback: { url: fx.recv.url('/async') } });
    const { run_id } = await fx.client.triggerTask(task_id);
    const cb = await fx.recv.waitForRequest((r) => header(r, 'x-xcron-run-id') === run_id, 20_000, 'the async callback');
    const token = header(cb, 'x-xcron-report-token')!;
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    await waitUntil(() => fx.client.runLog(run_id), (p) => p.run.status === 'RUNNING' && p.run.http_status === 202, 20_000, 'the run RUNNING after 202');

    expect(await fx.client.appendRunLog({ run_id, token, lines: ['one', 'two'] })).toEqual({ run_id, accepted: 2, dropped: 0 });
    const page = await fx.client.runLog(run_id);
    expect(page).toMatchObject({ run_id, status: 'RUNNING', finished: false, next_since: 2 });
    expect(page.lines.map((l) => l.line)).toEqual(['one', 'two']);
    expect((await fx.client.runLog(run_id, { since: 1 })).lines.map((l) => l.seq)).toEqual([2]);

    const bad = (await thrown(fx.client.reportRun({ run_id, token: 'f'.repeat(64), status: 'SUCCESS' }))) as XcronApiError;
    expect(bad).toBeInstanceOf(XcronAuthError);
    expect(bad.code).toBe(ErrorCodes.UNAUTHORIZED);
    expect(bad.httpStatus).toBe(403);

    // a follower started while the run is open ends once it is reported and every line is read
    const followed: string[] = [];
    const follow = (async () => {
      for await (const l of fx.client.followRunLog(run_id, { intervalMs: 100 })) followed.push(l.line);
    })();
    await fx.client.appendRunLog({ run_id, token, lines: ['three'] });
    expect(await fx.client.reportRun({ run_id, token, status: 'SUCCESS', message: 'done', output: { rows: 3 } })).toEqual({ run_id, status: 'SUCCESS' });
    await follow;
    expect(followed).toEqual(['one', 'two', 'three']);
    expect(await fx.client.reportRun({ run_id, token, status: 'SUCCESS' })).toEqual({ run_id, status: 'SUCCESS' }); // same outcome again: code 0
    const conflict = (await thrown(fx.client.reportRun({ run_id, token, status: 'FAIL' }))) as XcronApiError;
    expect(conflict).toBeInstanceOf(XcronConflictError);
    expect(conflict.code).toBe(ErrorCodes.RUN_CLOSED);
    expect(conflict.httpStatus).toBe(409);
    const runs = await fx.client.taskRuns(task_id);
    expect(runs.runs[0]).toMatchObject({ run_id, status: 'SUCCESS', message: 'done', output: { rows: 3 } });
    await fx.client.deleteTask(task_id);
  });
});

describe('auth tokens', () => {
  it('the token option sends a bearer token; without it, 1010 as XcronAuthError', async () => {
    const ADMIN = { token: 'admin-token-0123456789abcdef', role: 'admin', name: 'client-admin' };
    const READER = { token: 'read-token-0123456789abcdef', role: 'read', name: 'client-reader' };
    const authed = await XcronServer.start({ env: { XCRON_AUTH_TOKENS: JSON.stringify([ADMIN, READER]) } });
    const anon = new XcronClient({ baseUrl: authed.baseUrl });
    const e = (await thrown(anon.listTasks())) as XcronApiError;
    expect(e).toBeInstanceOf(XcronAuthError);
    expect(e.code).toBe(1010);
    expect(e.httpStatus).toBe(401);
    const admin = new XcronClient({ baseUrl: authed.baseUrl, token: ADMIN.token });
    const { task_id } = await admin.createTask({ type: 1, format: '0 0 1 1 *', callback: { url: fx.recv.url('/auth') } });
    const reader = new XcronClient({ baseUrl: authed.baseUrl, token: READER.token });
    expect((await reader.queryTask(task_id)).task_id).toBe(task_id);
    const forbidden = (await thrown(reader.pauseTask(task_id))) as XcronApiError;
    expect(forbidden).toBeInstanceOf(XcronAuthError);
    expect(forbidden.httpStatus).toBe(403);
    expect(await anon.healthz()).toMatchObject({ status: 'ok' }); // probes need no token
    await admin.deleteTask(task_id);
  });
});

/** A proxy in front of the real server that answers 503 to the first `fail` requests. */
async function flakyProxy(target: string, fail: number, retryAfter: (n: number) => string | null): Promise<{ url: string; seen: () => number }> {
  let n = 0;
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      n++;
      if (n <= fail) {
        const ra = retryAfter(n);
        const body = JSON.stringify({ uuid: `00000000-0000-4000-8000-00000000000${n % 10}`, code: 1016, message: 'store unavailable, retry later: proxy says so', data: null });
        res.writeHead(503, { 'content-type': 'application/json', ...(ra !== null ? { 'retry-after': ra } : {}) });
        res.end(body);
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection') headers[k] = v;
      const body = Buffer.concat(chunks);
      fetch(target + (req.url ?? '/'), { method: req.method ?? 'GET', headers, ...(body.length > 0 ? { body } : {}) })
        .then(async (up) => {
          const text = await up.text();
          res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
          res.end(text);
        })
        .catch((e: unknown) => {
          res.writeHead(502).end(String(e));
        });
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => srv.close(() => r())));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen: () => n };
}

describe('retries on 503', () => {
  it('two 503s then the real server: the call succeeds on the third request, waiting at least Retry-After', async () => {
    const proxy = await flakyProxy(fx.server.baseUrl, 2, (n) => (n === 1 ? '1' : null));
    const infos: RetryInfo[] = [];
    const c = new XcronClient({ baseUrl: proxy.url, retry: { retries: 3, baseDelayMs: 20, maxDelayMs: 50, onRetry: (i) => infos.push(i) } });
    const t0 = Date.now();
    const { task_id } = await c.createTask({ type: 1, format: '0 0 1 1 *', idempotency_key: `retry-${t0}`, callback: { url: fx.recv.url('/retry') } });
    expect(proxy.seen()).toBe(3);
    expect(infos.map((i) => i.attempt)).toEqual([1, 2]);
    expect(infos[0]!.retryAfterMs).toBe(1000);
    expect(infos[0]!.delayMs).toBeGreaterThanOrEqual(1000);
    expect(infos[1]!.retryAfterMs).toBeNull();
    expect(infos[1]!.delayMs).toBeLessThanOrEqual(40); // backoff: full jitter under min(50, 20·2)
    expect(infos[0]!.error).toBeInstanceOf(XcronUnavailableError);
    expect((infos[0]!.error as XcronApiError).code).toBe(ErrorCodes.STORE_UNAVAILABLE);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // the Retry-After was waited out
    expect((await fx.client.queryTask(task_id)).task_id).toBe(task_id);
    await fx.client.deleteTask(task_id);
  });

  it('parseRetryAfter reads delta seconds and HTTP dates', () => {
    const now = Date.UTC(2030, 0, 1, 0, 0, 0);
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter(new Date(now + 7000).toUTCString(), now)).toBe(7000);
    expect(parseRetryAfter(new Date(now - 7000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });

  it('retries exhausted: XcronUnavailableError with code 1016 and the number of attempts', async () => {
    const proxy = await flakyProxy(fx.server.baseUrl, 100, () => null);
    const c = new XcronClient({ baseUrl: proxy.url, retry: { retries: 2, baseDelayMs: 5 } });
    const e = (await thrown(c.stats())) as XcronApiError;
    expect(e).toBeInstanceOf(XcronUnavailableError);
    expect(e.code).toBe(1016);
    expect(e.httpStatus).toBe(503);
    expect(e.attempts).toBe(3);
    expect(proxy.seen()).toBe(3);
  });

  it('a Retry-After beyond maxRetryAfterMs is not waited for; retries: 0 turns retrying off', async () => {
    const proxy = await flakyProxy(fx.server.baseUrl, 100, () => '120');
    const c = new XcronClient({ baseUrl: proxy.url, retry: { retries: 5, maxRetryAfterMs: 10_000 } });
    const e = (await thrown(c.stats())) as XcronApiError;
    expect(e).toBeInstanceOf(XcronUnavailableError);
    expect(e.attempts).toBe(1);
    expect(e.retryAfterMs).toBe(120_000);
    const proxy2 = await flakyProxy(fx.server.baseUrl, 1, () => null);
    const e2 = (await thrown(new XcronClient({ baseUrl: proxy2.url }).stats({ retries: 0 }))) as XcronApiError;
    expect(e2.attempts).toBe(1);
    expect(proxy2.seen()).toBe(1);
  });

  it('no server: XcronTransportError; a GET is retried, a POST is not', async () => {
    const proxy = await flakyProxy(fx.server.baseUrl, 0, () => null);
    const port = new URL(proxy.url).port;
    await closers.pop()!(); // nothing listens on that port any more
    const infos: RetryInfo[] = [];
    const c = new XcronClient({ baseUrl: `http://127.0.0.1:${port}`, retry: { retries: 2, baseDelayMs: 5, onRetry: (i) => infos.push(i) } });
    const g = (await thrown(c.stats())) as XcronTransportError;
    expect(g).toBeInstanceOf(XcronTransportError);
    expect(g.attempts).toBe(3);
    expect(g.httpStatus).toBeNull();
    expect(infos).toHaveLength(2);
    const p = (await thrown(c.pauseTask('whatever'))) as XcronTransportError;
    expect(p).toBeInstanceOf(XcronTransportError);
    expect(p.attempts).toBe(1);
  });
});
