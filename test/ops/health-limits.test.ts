/**
 * Health endpoints (open, cheap, readiness follows the store and membership) and the body limits
 * (request body over Content-Length and over a chunked stream, callback body): code 1008 / HTTP 413.
 */
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { serve } from '@hono/node-server';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_VERSION, send } from '../helpers/app.js';
import { ADMIN, bearer, createOpsApp, type OpsApp } from './helpers.js';

describe('health', () => {
  let api: OpsApp;
  afterEach(async () => {
    await api.close();
  });

  it('/healthz and /readyz answer without a token even when auth is on, and are not rate limited', async () => {
    api = await createOpsApp({ tokens: [ADMIN], rateLimit: { perSec: 1, burst: 1 } });
    for (let i = 0; i < 5; i++) {
      const h = await send<{ status: string; version: string }>(api.app, '/healthz');
      expect(h.status).toBe(200);
      expect(h.body.data).toEqual({ status: 'ok', version: TEST_VERSION });
      const r = await send<{ ready: boolean }>(api.app, '/readyz');
      expect(r.status).toBe(200);
      expect(r.body.data.ready).toBe(true);
    }
    expect((await send(api.app, '/xcron/stats')).status).toBe(401); // the API itself is locked
  });

  it('/healthz does not touch the store; /readyz reports an unreachable store with 503, code 1016', async () => {
    api = await createOpsApp();
    await api.store.close();
    expect((await send(api.app, '/healthz')).status).toBe(200);
    const r = await send(api.app, '/readyz');
    expect(r.status).toBe(503);
    expect(r.body.code).toBe(1016);
    expect(r.body.message).toMatch(/store unreachable/);
  });

  it('/readyz is 503 when the node is no longer a member (fenced)', async () => {
    api = await createOpsApp();
    api.ownership.reportFenced(0);
    const r = await send(api.app, '/readyz');
    expect(r.status).toBe(503);
    expect(r.body.message).toMatch(/not a member/);
    expect((await send(api.app, '/healthz')).status).toBe(200);
  });

  it('probes are logged at debug, API requests at info', async () => {
    api = await createOpsApp({ logLevel: 'info' });
    await send(api.app, '/healthz');
    await send(api.app, '/readyz');
    await api.app.request('/metrics');
    await send(api.app, '/xcron/stats');
    const lines = api.logs.parsed().filter((l) => l.msg === 'request');
    expect(lines.map((l) => l.path)).toEqual(['/xcron/stats']);
  });
});

describe('body limits', () => {
  let api: OpsApp;
  afterEach(async () => {
    await api.close();
  });
  const url = 'http://127.0.0.1:9/hook';

  it('a request body over request_body_limit: 413, code 1008 (Content-Length)', async () => {
    api = await createOpsApp({ limits: { requestBodyLimit: 2048 } });
    const big = JSON.stringify({ type: 1, format: '* * * * *', callback: { url }, name: 'x'.repeat(3000) });
    const r = await send(api.app, '/xcron/createTask', { body: big, headers: { 'content-type': 'application/json', 'content-length': String(big.length) } });
    expect(r.status).toBe(413);
    expect(r.body.code).toBe(1008);
    expect(r.body.message).toMatch(/over the limit of 2048 bytes/);
  });

  it('a chunked request body over the limit is cut off while streaming (real HTTP)', async () => {
    api = await createOpsApp({ limits: { requestBodyLimit: 2048 } });
    const server = serve({ fetch: api.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    try {
      const chunks = ['{"type":1,"format":"* * * * *","name":"', ...Array.from({ length: 10 }, () => 'y'.repeat(500)), `","callback":{"url":"${url}"}}`];
      const res = await request(`http://127.0.0.1:${port}/xcron/createTask`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Readable.from(chunks) });
      const body = (await res.body.json()) as { code: number };
      expect(res.statusCode).toBe(413);
      expect(body.code).toBe(1008);
      const small = await request(`http://127.0.0.1:${port}/xcron/createTask`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Readable.from(['{"type":1,"format":"* * * * *",', `"callback":{"url":"${url}"}}`]) });
      expect(((await small.body.json()) as { code: number }).code).toBe(0);
    } finally {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
    }
  });

  it('a callback.body over [callback] body_limit: 413, code 1008; at the limit: accepted', async () => {
    api = await createOpsApp({ tokens: [ADMIN] });
    const overhead = JSON.stringify({ p: '' }).length;
    const atLimit = { p: 'z'.repeat(1024 - overhead) };
    const ok = await send(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url, body: atLimit } }, headers: bearer(ADMIN) });
    expect(ok.body.code).toBe(0);
    const over = await send(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url, body: { p: 'z'.repeat(1024) } } }, headers: bearer(ADMIN) });
    expect(over.status).toBe(413);
    expect(over.body.code).toBe(1008);
    expect(over.body.message).toMatch(/'callback\.body' is \d+ bytes, over the limit of 1024 bytes/);
  });
});
