/**
 * createTask / queryTask / deleteTask through app.request (real app, real SQLite file, manual clock).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { T0, TEST_VERSION, UUID_V4, countRows, createTestApi, send, type TestApi } from '../helpers/app.js';
import type { CreateData, TaskView } from '../helpers/http.js';

const URL_A = 'http://127.0.0.1:9/hooks/a';
const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number => Date.UTC(y, mo - 1, d, h, mi, s);

let api: TestApi;
beforeEach(async () => {
  api = await createTestApi();
});
afterEach(async () => {
  await api.close();
});

async function create(body: Record<string, unknown>): Promise<CreateData> {
  const r = await send<CreateData>(api.app, '/xcron/createTask', { json: body });
  expect(r.status, r.text).toBe(200);
  expect(r.body.code, r.text).toBe(0);
  expect(r.body.message).toBe('ok');
  expect(r.body.uuid).toMatch(UUID_V4);
  expect(typeof r.body.data.task_id).toBe('string');
  expect(r.body.data.task_id.length).toBeGreaterThan(0);
  return r.body.data;
}

async function query(id: string): Promise<TaskView> {
  const r = await send<TaskView>(api.app, `/xcron/queryTask?task_id=${encodeURIComponent(id)}`);
  expect(r.status, r.text).toBe(200);
  expect(r.body.code, r.text).toBe(0);
  return r.body.data;
}

describe('createTask happy paths: code 0, task_id and the exact first fire time (ms)', () => {
  // T0 = 2030-01-01T00:00:30Z, a Tuesday.
  const cases: { name: string; body: Record<string, unknown>; next: number }[] = [
    { name: '5-field cron', body: { type: 1, format: '*/5 * * * *' }, next: utc(2030, 1, 1, 0, 5) },
    { name: '5-field cron, weekday 1 = Monday', body: { type: 1, format: '0 12 * * 1' }, next: utc(2030, 1, 7, 12) },
    { name: '5-field cron, weekday 7 = Sunday', body: { type: 1, format: '0 0 * * 7' }, next: utc(2030, 1, 6) },
    { name: '6-field cron (leading seconds)', body: { type: 1, format: '*/10 * * * * *' }, next: utc(2030, 1, 1, 0, 0, 40) },
    { name: '6-field cron, every second', body: { type: 1, format: '* * * * * *' }, next: utc(2030, 1, 1, 0, 0, 31) },
    { name: '7-field cron (trailing year)', body: { type: 1, format: '0 0 12 1 1 ? 2031' }, next: utc(2031, 1, 1, 12) },
    { name: 'Quartz ? with weekday 2 = Monday', body: { type: 1, format: '0 0 12 ? * 2' }, next: utc(2030, 1, 7, 12) },
    { name: 'Quartz L (last day of month)', body: { type: 1, format: '0 0 L * ?' }, next: utc(2030, 1, 31) },
    { name: 'Quartz W (nearest weekday)', body: { type: 1, format: '0 0 0 15W * ?' }, next: utc(2030, 1, 15) },
    { name: 'Quartz LW (last weekday)', body: { type: 1, format: '0 0 0 LW * ?' }, next: utc(2030, 1, 31) },
    { name: 'Quartz # (third Friday)', body: { type: 1, format: '0 0 12 ? * 6#3' }, next: utc(2030, 1, 18, 12) },
    { name: '@hourly', body: { type: 1, format: '@hourly' }, next: utc(2030, 1, 1, 1) },
    { name: '@daily', body: { type: 1, format: '@daily' }, next: utc(2030, 1, 2) },
    { name: '@weekly (Sunday)', body: { type: 1, format: '@weekly' }, next: utc(2030, 1, 6) },
    { name: '@monthly', body: { type: 1, format: '@monthly' }, next: utc(2030, 2, 1) },
    { name: '@yearly', body: { type: 1, format: '@yearly' }, next: utc(2031, 1, 1) },
    { name: '@every 30s (anchored on creation)', body: { type: 1, format: '@every 30s' }, next: T0 + 30_000 },
    { name: '@every 1h30m', body: { type: 1, format: '@every 1h30m' }, next: T0 + 90 * 60_000 },
    { name: 'cron in a timezone (09:00 Asia/Shanghai = 01:00Z)', body: { type: 1, format: '0 9 * * *', timezone: 'Asia/Shanghai' }, next: utc(2030, 1, 1, 1) },
    { name: 'cron in a DST timezone (02:30 New York = 07:30Z in winter)', body: { type: 1, format: '30 2 * * *', timezone: 'America/New_York' }, next: utc(2030, 1, 1, 7, 30) },
    { name: 'one-shot, unix seconds (10 digits)', body: { type: 2, format: String(T0 / 1000 + 3600) }, next: T0 + 3_600_000 },
    { name: 'one-shot, unix milliseconds (13 digits)', body: { type: 2, format: String(T0 + 1234) }, next: T0 + 1234 },
    { name: 'one-shot, a few ms in the past (inside the grace)', body: { type: 2, format: String(T0 - 500) }, next: T0 - 500 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const data = await create({ ...c.body, callback: { url: URL_A } });
      expect(data.next_fire_time).toBe(c.next);
      const view = await query(data.task_id);
      expect(view.next_fire_time).toBe(c.next);
      expect(view.format).toBe(c.body.format);
      expect(view.type).toBe(c.body.type);
    });
  }

  it('accepts Content-Type with a charset and +json media types', async () => {
    for (const ct of ['application/json; charset=utf-8', 'application/vnd.xcron+json', 'Application/JSON']) {
      const r = await send<CreateData>(api.app, '/xcron/createTask', { json: { type: 1, format: '@hourly', callback: { url: URL_A } }, headers: { 'content-type': ct } });
      expect(r.body.code, `${ct}: ${r.text}`).toBe(0);
    }
    expect(countRows(api.dbFile).tasks).toBe(3);
  });
});

describe('queryTask', () => {
  it('returns every API.md field with the right types for a fresh periodic task', async () => {
    const body = { order: 42, nested: { a: [1, 2, 3] }, text: 'héllo ✓' };
    const { task_id, next_fire_time } = await create({ type: 1, format: '*/5 * * * *', callback: { url: URL_A, body } });
    const r = await send<TaskView>(api.app, `/xcron/queryTask?task_id=${task_id}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ code: 0, message: 'ok' });
    const v = r.body.data;
    expect(v.task_id).toBe(task_id);
    expect(v.create_time).toBe(String(T0 / 1000));
    expect(v.create_time).toMatch(/^\d{10}$/);
    expect(v.type).toBe(1);
    expect(v.format).toBe('*/5 * * * *');
    expect(v.run_count).toBe(0);
    expect(v.callback).toEqual({ url: URL_A, body });
    expect(v.state).toBe('active');
    expect(v.next_fire_time).toBe(next_fire_time);
    expect(Number.isInteger(v.next_fire_time)).toBe(true);
    expect(v.last_fire_time).toBeNull();
    expect(v.last_status).toBeNull();
    for (const k of ['task_id', 'create_time', 'type', 'format', 'run_count', 'callback', 'state', 'next_fire_time', 'last_fire_time', 'last_status']) {
      expect(Object.keys(v), `field ${k}`).toContain(k);
    }
    // extension defaults
    expect(v.timezone).toBe('UTC');
    expect(v.misfire).toBe('fire_once');
    expect(v.overlap).toBe('allow');
  });

  it('a callback without a body reports body {}', async () => {
    const { task_id } = await create({ type: 2, format: String(T0 / 1000 + 60), callback: { url: URL_A } });
    const v = await query(task_id);
    expect(v.callback).toEqual({ url: URL_A, body: {} });
    expect(v.type).toBe(2);
    expect(v.state).toBe('active');
    expect(v.next_fire_time).toBe(T0 + 60_000);
  });

  it('returns the extension fields the task was created with', async () => {
    const req = {
      type: 1,
      format: '0 9 * * 1-5',
      name: 'weekday report',
      timezone: 'Europe/Berlin',
      callback: { url: URL_A, body: { k: 'v' }, method: 'PUT', headers: { Authorization: 'Bearer abc', 'X-Tenant': 't1' } },
      timeout_ms: 2500,
      retry: { max_attempts: 5, backoff_ms: 200, max_backoff_ms: 5000 },
      misfire: 'skip',
      overlap: 'queue',
      idempotency_key: 'report-2030',
    };
    const { task_id } = await create(req);
    const v = await query(task_id);
    expect(v).toMatchObject({
      task_id,
      type: 1,
      format: '0 9 * * 1-5',
      name: 'weekday report',
      timezone: 'Europe/Berlin',
      callback: { url: URL_A, body: { k: 'v' }, method: 'PUT', headers: { Authorization: 'Bearer abc', 'X-Tenant': 't1' } },
      timeout_ms: 2500,
      retry: { max_attempts: 5, backoff_ms: 200, max_backoff_ms: 5000 },
      misfire: 'skip',
      overlap: 'queue',
      idempotency_key: 'report-2030',
      state: 'active',
      run_count: 0,
    });
    // 09:00 Berlin (CET, +01:00) the same Tuesday: T0 is 00:00:30Z = 01:00:30 Berlin
    expect(v.next_fire_time).toBe(utc(2030, 1, 1, 8));
  });

  it('paused: true creates a paused task', async () => {
    const { task_id } = await create({ type: 1, format: '@hourly', paused: true, callback: { url: URL_A } });
    const v = await query(task_id);
    expect(v.state).toBe('paused');
  });
});

describe('deleteTask', () => {
  it('deletes; queryTask then answers 1007/404; a second delete answers 1007/404', async () => {
    const { task_id } = await create({ type: 1, format: '@hourly', callback: { url: URL_A } });
    expect(countRows(api.dbFile).tasks).toBe(1);
    const d = await send<null>(api.app, '/xcron/deleteTask', { json: { task_id } });
    expect(d.status).toBe(200);
    expect(d.body.code).toBe(0);
    expect(d.body.data).toBeNull();
    expect(d.body.uuid).toMatch(UUID_V4);

    const q = await send(api.app, `/xcron/queryTask?task_id=${task_id}`);
    expect(q.status).toBe(404);
    expect(q.body.code).toBe(1007);
    expect(q.body.message).toContain(task_id);
    expect(q.body.data).toBeNull();

    const again = await send(api.app, '/xcron/deleteTask', { json: { task_id } });
    expect(again.status).toBe(404);
    expect(again.body.code).toBe(1007);
    expect(countRows(api.dbFile)).toEqual({ tasks: 0, runs: 0 });
  });

  it('deletes only the named task', async () => {
    const a = await create({ type: 1, format: '@hourly', callback: { url: URL_A } });
    const b = await create({ type: 1, format: '@daily', callback: { url: URL_A } });
    expect(a.task_id).not.toBe(b.task_id);
    expect((await send(api.app, '/xcron/deleteTask', { json: { task_id: a.task_id } })).body.code).toBe(0);
    expect((await query(b.task_id)).format).toBe('@daily');
    expect(countRows(api.dbFile).tasks).toBe(1);
  });
});

describe('idempotency_key', () => {
  it('the same key returns the same task_id and creates nothing new', async () => {
    const body = { type: 1, format: '*/5 * * * *', idempotency_key: 'order-77', callback: { url: URL_A, body: { n: 1 } } };
    const first = await create(body);
    const r = await send<CreateData>(api.app, '/xcron/createTask', { json: body });
    expect(r.status).toBe(200);
    expect(r.body.code).toBe(0);
    expect(r.body.data.task_id).toBe(first.task_id);
    expect(r.body.data.next_fire_time).toBe(first.next_fire_time);
    expect(countRows(api.dbFile).tasks).toBe(1);
    // the scheduler heard about one task only
    expect(api.events.filter((e) => e.kind === 'changed')).toHaveLength(1);
    // a different key is a different task
    const other = await create({ ...body, idempotency_key: 'order-78' });
    expect(other.task_id).not.toBe(first.task_id);
    expect(countRows(api.dbFile).tasks).toBe(2);
  });
});

describe('the notifier hears about creates and deletes', () => {
  it('taskChanged with the stored task on create; taskRemoved with id and slot on delete', async () => {
    const { task_id, next_fire_time } = await create({ type: 1, format: '*/5 * * * *', callback: { url: URL_A } });
    expect(api.events).toHaveLength(1);
    const ev = api.events[0]!;
    expect(ev.kind).toBe('changed');
    if (ev.kind !== 'changed') return;
    expect(ev.task.id).toBe(task_id);
    expect(ev.task.next_fire_time).toBe(next_fire_time);
    expect(ev.task.state).toBe('active');
    expect(ev.task.slot).toBeGreaterThanOrEqual(0);
    expect(ev.task.slot).toBeLessThan(api.slots);

    await send(api.app, '/xcron/deleteTask', { json: { task_id } });
    expect(api.events).toHaveLength(2);
    expect(api.events[1]).toEqual({ kind: 'removed', id: task_id, slot: ev.task.slot });
  });

  it('failed requests notify nothing', async () => {
    await send(api.app, '/xcron/createTask', { json: { type: 1, format: 'nope', callback: { url: URL_A } } });
    await send(api.app, '/xcron/deleteTask', { json: { task_id: 'missing' } });
    expect(api.events).toEqual([]);
  });
});

describe('envelope, request ids and routes', () => {
  it('unknown route: 404 / 1012 in the envelope', async () => {
    const r = await send(api.app, '/xcron/nope');
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ code: 1012, data: null });
    expect(r.body.message).toContain('/xcron/nope');
    expect(r.body.uuid).toMatch(UUID_V4);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('wrong method: 405 / 1013 with an Allow header, in the envelope', async () => {
    const r = await send(api.app, '/xcron/deleteTask', { method: 'GET' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
    expect(r.body).toMatchObject({ code: 1013, data: null });
    expect(r.body.message).toMatch(/GET.*\/xcron\/deleteTask.*POST/);
    const q = await send(api.app, '/xcron/queryTask', { method: 'POST', json: { task_id: 'x' } });
    expect(q.status).toBe(405);
    expect(q.headers.get('allow')).toBe('GET');
  });

  it('every response carries a fresh UUID v4 and the same value in X-Request-Id', async () => {
    const seen = new Set<string>();
    for (const path of ['/healthz', '/readyz', '/xcron/cluster', '/xcron/queryTask?task_id=zzz', '/nowhere']) {
      const r = await send(api.app, path);
      expect(r.body.uuid, path).toMatch(UUID_V4);
      expect(r.headers.get('x-request-id'), path).toBe(r.body.uuid);
      seen.add(r.body.uuid);
    }
    expect(seen.size).toBe(5);
  });

  it('a sane client X-Request-Id is echoed; an insane one is replaced by the uuid', async () => {
    const echoed = await send(api.app, '/healthz', { headers: { 'x-request-id': 'req-42.abc:def' } });
    expect(echoed.headers.get('x-request-id')).toBe('req-42.abc:def');
    expect(echoed.body.uuid).toMatch(UUID_V4);

    const created = await send<CreateData>(api.app, '/xcron/createTask', { json: { type: 1, format: '@daily', callback: { url: URL_A } }, headers: { 'x-request-id': 'client-trace-1' } });
    expect(created.body.code).toBe(0);
    expect(created.headers.get('x-request-id')).toBe('client-trace-1');

    for (const bad of ['has spaces in it', 'x'.repeat(200), 'semi;colon', '<script>']) {
      const r = await send(api.app, '/healthz', { headers: { 'x-request-id': bad } });
      expect(r.headers.get('x-request-id'), bad).toBe(r.body.uuid);
      expect(r.body.uuid).toMatch(UUID_V4);
    }
  });

  it('/healthz reports ok and the version; /readyz is ready; /xcron/cluster names the node', async () => {
    const h = await send<{ status: string; version: string }>(api.app, '/healthz');
    expect(h.status).toBe(200);
    expect(h.body.data).toEqual({ status: 'ok', version: TEST_VERSION });
    const r = await send<{ ready: boolean }>(api.app, '/readyz');
    expect(r.status).toBe(200);
    expect(r.body.data.ready).toBe(true);
    const c = await send<{ node: string; members: string[]; slots: unknown[] }>(api.app, '/xcron/cluster');
    expect(c.status).toBe(200);
    expect(c.body.data.node).toBe('api-test');
    expect(c.body.data.members).toEqual(['api-test']);
    expect(c.body.data.slots).toHaveLength(api.slots);
  });
});

describe('robustness', () => {
  // A deeply nested body inside the request size limit is invalid input, not a server bug: it must
  // be answered 400 (or 413), never 500 (readJson refuses JSON nested deeper than 64 levels).
  it('a deeply nested callback.body is refused with a 4xx, not a 500', async () => {
    let deep = '1';
    for (let i = 0; i < 20_000; i++) deep = `[${deep}]`;
    const text = `{"type":1,"format":"* * * * *","callback":{"url":"${URL_A}","body":{"a":${deep}}}}`;
    expect(Buffer.byteLength(text)).toBeLessThan(64 * 1024);
    const r = await send(api.app, '/xcron/createTask', { body: text, headers: { 'content-type': 'application/json' } });
    expect(r.status, r.text).toBeGreaterThanOrEqual(400);
    expect(r.status, r.text).toBeLessThan(500);
    expect([1000, 1008, 1009]).toContain(r.body.code);
    expect(countRows(api.dbFile).tasks).toBe(0);
  });

  // croner reads any pattern containing ':' as an ISO date ("once" mode); xcron checks each field's
  // characters first, so a date-like string is refused with 1005 naming the field.
  it('a cron expression with a colon (date-like) is refused with 1005 naming the problem', async () => {
    for (const format of ['2031-01-01 12:30 * * *', '0 12:30 * * *']) {
      const r = await send(api.app, '/xcron/createTask', { json: { type: 1, format, callback: { url: URL_A } } });
      expect({ format, status: r.status, code: r.body.code }).toEqual({ format, status: 400, code: 1005 });
      expect(r.body.message).not.toMatch(/never fires|ISO8601/);
    }
    expect(countRows(api.dbFile).tasks).toBe(0);
  });
});
