/**
 * The receiver side of @xcron/client against the real built server with two signing secrets: real
 * signed callbacks reach a node:http receiver (xcronNodeHandler) and a hono app (xcronHono) served
 * by @hono/node-server. The verifier accepts them, also with only the second secret; it rejects a
 * tampered body, an old timestamp and a wrong secret; dedupe drops a repeated fire id but lets
 * xcron's retry of a failed fire through.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryDedupeStore, XcronClient, signPayload, verifySignature, xcronNodeHandler, xcronNodeMiddleware, type ReceiverOptions, type XcronDelivery } from '../../clients/typescript/src/index.js';
import { xcronDelivery, xcronHono } from '../../clients/typescript/src/hono.js';
import { XcronServer, cleanupTempDirs, stopAllServers, takeStarted } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const S1 = 'whsec-client-current-0123456789';
const S2 = 'whsec-client-next-0123456789ab';
const WRONG = 'whsec-client-wrong-0123456789a';

let server: XcronServer;
let client: XcronClient;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  server = await XcronServer.start({ env: { XCRON_CALLBACK_SIGNING_SECRETS: JSON.stringify([S1, S2]) } });
  client = new XcronClient({ baseUrl: server.baseUrl });
});
afterEach((ctx) => {
  const started = takeStarted();
  if (ctx.task.result?.state === 'fail') for (const s of started) console.log(s.tail(30));
});
afterAll(async () => {
  for (const c of closers) await c();
  await stopAllServers();
  cleanupTempDirs();
});

interface Seen {
  delivery: XcronDelivery;
  headers: IncomingHttpHeaders | Record<string, string>;
  parsed?: unknown;
}

/** A node:http receiver built with xcronNodeHandler; `failFirst`: the first call of each fire throws. */
async function nodeReceiver(opts: ReceiverOptions, failFirst = false): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const failed = new Set<string>();
  const srv: Server = createServer(
    xcronNodeHandler(opts, (delivery, req) => {
      seen.push({ delivery, headers: req.headers });
      if (failFirst && !failed.has(delivery.fireId)) {
        failed.add(delivery.fireId);
        throw new Error('first attempt fails on purpose');
      }
    }),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections(); }));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`, seen };
}

/** Sends a recorded callback again, optionally changed. */
async function replay(url: string, s: Seen, change: { body?: Buffer | string; signature?: string } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.headers)) if (typeof v === 'string' && (k.startsWith('x-xcron-') || k === 'content-type')) headers[k] = v;
  if (change.signature !== undefined) headers['x-xcron-signature'] = change.signature;
  const res = await fetch(url, { method: 'POST', headers, body: change.body ?? s.delivery.rawBody });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const sig = (s: Seen): string => (s.headers as Record<string, string>)['x-xcron-signature']!;

describe('node:http receiver (xcronNodeHandler) with real signed callbacks', () => {
  it('verifies, lets the retry of a failed attempt through, drops a replayed fire id, rejects tampering, old timestamps and wrong secrets', async () => {
    const recv = await nodeReceiver({ secrets: [S1] }, true);
    const body = { order: 42, note: 'héllo ✓ "quoted"', nested: [1, 2.5, null] };
    const { task_id } = await client.createTask({ type: 1, format: '0 0 1 1 *', retry: { max_attempts: 3, backoff_ms: 50 }, callback: { url: recv.url, body } });
    const { run_id } = await client.triggerTask(task_id);
    const runs = await waitUntil(() => client.taskRuns(task_id), (p) => p.runs[0]?.status === 'SUCCESS', 30_000, 'the run SUCCESS after a retry');
    expect(runs.runs[0]).toMatchObject({ run_id, attempts: 2, http_status: 200 });
    // attempt 1 threw (500, claim released); attempt 2 of the same fire was handled
    expect(recv.seen.map((s) => [s.delivery.fireId, s.delivery.attempt])).toEqual([
      [run_id, 1],
      [run_id, 2],
    ]);
    const last = recv.seen[1]!;
    expect(last.delivery).toMatchObject({ taskId: task_id, fireId: run_id, runId: run_id, body, reportToken: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(last.delivery.rawBody.toString('utf8')).toBe(JSON.stringify(body));
    expect(sig(last)).toMatch(/^t=\d{10},v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);

    // the verifier on the real callback
    const raw = last.delivery.rawBody;
    expect(verifySignature({ header: sig(last), body: raw, secrets: [S1] })).toMatchObject({ ok: true, secretIndex: 0 });
    expect(verifySignature({ header: sig(last), body: raw, secrets: [S2] })).toMatchObject({ ok: true, secretIndex: 0 });
    expect(verifySignature({ header: sig(last), body: raw, secrets: [WRONG, S2] })).toMatchObject({ ok: true, secretIndex: 1 });
    expect(verifySignature({ header: sig(last), body: raw, secrets: [WRONG] })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature({ header: sig(last), body: raw.toString('utf8').replace('42', '43'), secrets: [S1, S2] })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature({ header: sig(last), body: raw, secrets: [S1], now: Date.now() + 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature({ header: sig(last), body: raw, secrets: [S1], now: Date.now() + 3_600_000, toleranceSec: 7200 })).toMatchObject({ ok: true });
    expect(verifySignature({ header: undefined, body: raw, secrets: [S1] })).toEqual({ ok: false, reason: 'missing' });
    expect(verifySignature({ header: 'v1=abc', body: raw, secrets: [S1] })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifySignature({ header: sig(last), body: raw, secrets: [] })).toEqual({ ok: false, reason: 'no_secrets' });

    // the middleware on replays of the real callback
    const dup = await replay(recv.url, last);
    expect(dup).toEqual({ status: 200, json: { ok: true, error: 'duplicate', duplicate: true, fire_id: run_id } });
    const tampered = await replay(recv.url, last, { body: raw.toString('utf8').replace('42', '43') });
    expect(tampered).toMatchObject({ status: 401, json: { error: 'signature mismatch' } });
    const t = Number(/^t=(\d+)/.exec(sig(last))![1]);
    const wrong = await replay(recv.url, last, { signature: signPayload([WRONG], raw, t) });
    expect(wrong).toMatchObject({ status: 401, json: { error: 'signature mismatch' } });
    const old = await replay(recv.url, last, { signature: signPayload([S1], raw, t - 3600) }); // a valid signature, an hour old
    expect(old).toMatchObject({ status: 401, json: { error: 'signature stale' } });
    expect(recv.seen).toHaveLength(2); // none of the replays reached the handler

    // a receiver that knows only the second secret (mid-rotation) accepts the real callback
    const second = await nodeReceiver({ secrets: [WRONG, S2] });
    expect(await replay(second.url, last)).toEqual({ status: 200, json: { ok: true } });
    expect(second.seen).toHaveLength(1);
    expect(await replay(second.url, last)).toMatchObject({ status: 200, json: { duplicate: true } });
    expect(second.seen).toHaveLength(1);
    // a receiver whose clock is an hour ahead refuses it as stale
    const ahead = await nodeReceiver({ secrets: [S1], now: () => Date.now() + 3_600_000 });
    expect(await replay(ahead.url, last)).toMatchObject({ status: 401, json: { error: 'signature stale' } });
    expect(ahead.seen).toHaveLength(0);
    await client.deleteTask(task_id);
  });

  it('a copy of a fire that arrives while the first is being handled gets 503 with Retry-After; after it, 200 duplicate', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const calls: string[] = [];
    const srv = createServer(
      xcronNodeHandler({ secrets: [S1] }, async (d) => {
        calls.push(d.fireId);
        await held;
      }),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections(); }));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
    const body = '{"x":1}';
    const headers = { 'content-type': 'application/json', 'x-xcron-task-id': 't1', 'x-xcron-fire-id': 't1:1000', 'x-xcron-signature': signPayload([S1], body) };
    const first = fetch(url, { method: 'POST', headers, body });
    await waitUntil(() => calls.length, (n) => n === 1, 10_000, 'the first copy in the handler');
    const second = await fetch(url, { method: 'POST', headers, body });
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('5');
    release();
    expect((await first).status).toBe(200);
    const third = await fetch(url, { method: 'POST', headers, body });
    expect(third.status).toBe(200);
    expect(await third.json()).toMatchObject({ duplicate: true });
    expect(calls).toEqual(['t1:1000']);
  });

  it('xcronNodeMiddleware (connect style): next() sees req.xcron; a 500 answer lets the same fire through again, a 200 answer dedupes it', async () => {
    const mw = xcronNodeMiddleware({ secrets: [S1] });
    const handled: { fireId: string; attempt: number }[] = [];
    let failNext = true;
    const srv = createServer((req, res) =>
      mw(req, res, (err?: unknown) => {
        if (err) return void res.writeHead(500).end();
        const d = (req as typeof req & { xcron?: XcronDelivery }).xcron!;
        handled.push({ fireId: d.fireId, attempt: d.attempt });
        const status = failNext ? 500 : 200;
        failNext = false;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ handled: d.fireId }));
      }),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections(); }));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
    const body = '{"y":2}';
    const send = (attempt: number, signature = signPayload([S1], body)) =>
      fetch(url, { method: 'POST', body, headers: { 'x-xcron-task-id': 't2', 'x-xcron-fire-id': 't2:2000', 'x-xcron-attempt': String(attempt), 'x-xcron-signature': signature } });
    expect((await send(1)).status).toBe(500);
    expect((await send(2)).status).toBe(200);
    const again = await send(3);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ duplicate: true });
    expect((await send(4, signPayload([WRONG], body))).status).toBe(401);
    expect(handled).toEqual([
      { fireId: 't2:2000', attempt: 1 },
      { fireId: 't2:2000', attempt: 2 },
    ]);
  });

  it('MemoryDedupeStore forgets a done fire id after its TTL', () => {
    let now = 1_000_000;
    const store = new MemoryDedupeStore(() => now);
    expect(store.claim('a:1', 1000)).toBe('new');
    expect(store.claim('a:1', 1000)).toBe('processing');
    store.complete('a:1', 5000);
    expect(store.claim('a:1', 1000)).toBe('done');
    now += 5001;
    expect(store.claim('a:1', 1000)).toBe('new');
    store.release('a:1');
    expect(store.claim('a:1', 1000)).toBe('new');
  });
});

describe('hono receiver (xcronHono) with real signed callbacks', () => {
  it('verifies, hands the delivery and the body to the handler, lets a retry through and drops a replay', async () => {
    const seen: Seen[] = [];
    const failed = new Set<string>();
    const app = new Hono();
    app.post('/hook', xcronHono({ secrets: [S2] }), async (c) => {
      const d = xcronDelivery(c);
      const parsed = await c.req.json<unknown>(); // the body is still readable after the middleware
      const headers: Record<string, string> = {};
      c.req.raw.headers.forEach((v, k) => (headers[k] = v));
      seen.push({ delivery: d, headers, parsed });
      if (!failed.has(d.fireId)) {
        failed.add(d.fireId);
        return c.json({ ok: false }, 500);
      }
      return c.json({ ok: true, fire: d.fireId });
    });
    const srv = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    closers.push(() => new Promise<void>((r) => srv.close(() => r())));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`;

    const body = { report: 'daily', n: 7 };
    const { task_id } = await client.createTask({ type: 1, format: '0 0 1 1 *', retry: { max_attempts: 3, backoff_ms: 50 }, callback: { url, body } });
    const { run_id } = await client.triggerTask(task_id);
    const runs = await waitUntil(() => client.taskRuns(task_id), (p) => p.runs[0]?.status === 'SUCCESS', 30_000, 'the run SUCCESS after a retry');
    expect(runs.runs[0]).toMatchObject({ run_id, attempts: 2, http_status: 200 });
    expect(JSON.parse(runs.runs[0]!.response_body!)).toEqual({ ok: true, fire: run_id });
    expect(seen.map((s) => s.delivery.attempt)).toEqual([1, 2]);
    expect(seen[1]!.parsed).toEqual(body);
    expect(seen[1]!.delivery.body).toEqual(body);

    const last = seen[1]!;
    expect(await replay(url, last)).toMatchObject({ status: 200, json: { duplicate: true, fire_id: run_id } });
    expect(await replay(url, last, { body: JSON.stringify({ ...body, n: 8 }) })).toMatchObject({ status: 401, json: { error: 'signature mismatch' } });
    const t = Number(/^t=(\d+)/.exec(sig(last))![1]);
    expect(await replay(url, last, { signature: signPayload([WRONG], last.delivery.rawBody, t) })).toMatchObject({ status: 401 });
    expect(await replay(url, last, { signature: signPayload([S2], last.delivery.rawBody, t - 3600) })).toMatchObject({ status: 401, json: { error: 'signature stale' } });
    expect(seen).toHaveLength(2);
    await client.deleteTask(task_id);
  });
});
