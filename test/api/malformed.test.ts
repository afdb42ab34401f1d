/**
 * Malformed requests through app.request: each gets its specific error code, HTTP status and a
 * message naming the problem, inside the envelope. Afterwards the store holds no task at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_LIMITS, UUID_V4, countRows, createTestApi, send, type TestApi } from '../helpers/app.js';
import { malformedCases } from '../helpers/malformed.js';

const CALLBACK = 'http://127.0.0.1:9/hook';

describe('createTask / deleteTask / queryTask reject malformed requests', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi();
  });
  afterAll(async () => {
    await api.close();
  });

  const cases = malformedCases({ now: Date.UTC(2030, 0, 1, 0, 0, 30), url: CALLBACK, requestBodyLimit: TEST_LIMITS.requestBodyLimit, callbackBodyLimit: TEST_LIMITS.callbackBodyLimit });

  it('has at least 30 distinct cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  for (const c of cases) {
    it(`${c.name} -> HTTP ${c.status}, code ${c.code}`, async () => {
      const r = await send(api.app, c.path, { method: c.method, json: c.json, body: c.body, headers: c.headers });
      expect({ status: r.status, code: r.body.code }).toEqual({ status: c.status, code: c.code });
      expect(r.body.message).toMatch(c.message);
      expect(r.body.data).toBeNull();
      expect(r.body.uuid).toMatch(UUID_V4);
      expect(r.headers.get('x-request-id')).toBe(r.body.uuid);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      if (c.allow !== undefined) expect(r.headers.get('allow')).toBe(c.allow);
    });
  }

  it('left no task and no run in the store, and the app is healthy', async () => {
    expect(api.events).toEqual([]);
    expect(countRows(api.dbFile)).toEqual({ tasks: 0, runs: 0 });
    const h = await send<{ status: string }>(api.app, '/healthz');
    expect(h.status).toBe(200);
    expect(h.body.code).toBe(0);
    expect(h.body.data.status).toBe('ok');
    // and a valid request still works
    const ok = await send<{ task_id: string }>(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: CALLBACK } } });
    expect(ok.body.code).toBe(0);
    expect(countRows(api.dbFile).tasks).toBe(1);
  });
});
