/**
 * Batch create, POST /xcron/createTasks, against the real built server: a standalone node on a real
 * SQLite file, and a two-node cluster on a real redis-server (tasks spread over slots both nodes
 * own). Per-item results in input order, the single createTask's codes for bad items, nothing
 * stored for a bad item, idempotency keys inside a batch, exact large numbers, the size limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { XcronServer, cleanupTempDirs } from '../helpers/server.js';
import { uniquePrefix } from '../cluster/harness.js';
import { CallbackReceiver, XNode, stopAllNodes, until } from '../cluster/procs.js';

type Item = { task_id: string; next_fire_time: number | null; existing?: true } | { code: number; message: string };
interface BatchAnswer {
  code: number;
  message: string;
  data: { results: Item[]; succeeded: number; failed: number } | null;
}

const DENIED = '10.99.0.0/16';
const future = (days: number): string => String(Math.floor(Date.now() / 1000) + days * 86_400);

async function post(base: string, path: string, body: unknown): Promise<{ status: number; body: BatchAnswer; text: string }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as BatchAnswer, text };
}

async function queryText(base: string, id: string): Promise<{ code: number; text: string }> {
  const res = await fetch(`${base}/xcron/queryTask?task_id=${encodeURIComponent(id)}`);
  const text = await res.text();
  return { code: (JSON.parse(text) as { code: number }).code, text };
}

const idOf = (r: Item | undefined): string => {
  if (!r || !('task_id' in r)) throw new Error(`expected a task id, got ${JSON.stringify(r)}`);
  return r.task_id;
};
const codeOf = (r: Item | undefined): number => {
  if (!r || !('code' in r)) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.code;
};

/** The same checks against any node: a mixed batch, keys, limits. */
function batchSuite(baseUrl: () => string, otherUrl: () => string, name: string): void {
  it(`${name}: a mixed batch answers per item in input order with createTask's codes; bad items store nothing`, async () => {
    const cb = { url: 'http://127.0.0.1:9/batch' };
    const items: unknown[] = [
      { type: 2, format: future(30), callback: cb, name: `${name}-good-0` },
      { type: 2, format: '1', callback: cb, name: `${name}-bad-format` }, // 1001
      { type: 1, format: '*/5 * * * *', callback: cb, name: `${name}-good-2` },
      { type: 1, format: '61 * * * *', callback: cb, name: `${name}-bad-cron` }, // 1005
      { type: 2, format: future(1), callback: cb, timezome: 'UTC' }, // unknown field: 1000
      { type: 2, format: future(1), callback: { url: 'http://10.99.1.2/x' }, name: `${name}-ssrf` }, // 1011
      'not an object', // 1000
      { type: 2, format: future(1), callback: { url: 'ftp://x/' }, name: `${name}-bad-url` }, // 1003
      { type: 7, format: future(1), callback: cb }, // 1020
      { type: 2, format: future(2), callback: cb, name: `${name}-good-9`, paused: true },
    ];
    const r = await post(baseUrl(), '/xcron/createTasks', { tasks: items });
    expect(r.status, r.text).toBe(200);
    expect(r.body.code, r.text).toBe(0);
    const res = r.body.data!.results;
    expect(res).toHaveLength(items.length);
    expect([codeOf(res[1]), codeOf(res[3]), codeOf(res[4]), codeOf(res[5]), codeOf(res[6]), codeOf(res[7]), codeOf(res[8])]).toEqual([1001, 1005, 1000, 1011, 1000, 1003, 1020]);
    expect((res[4] as { message: string }).message).toMatch(/unknown field 'timezome'/);
    expect((res[5] as { message: string }).message).toMatch(/10\.99\.1\.2 is in the denied range 10\.99\.0\.0\/16/);
    expect(r.body.data!.succeeded).toBe(3);
    expect(r.body.data!.failed).toBe(7);
    const good = [idOf(res[0]), idOf(res[2]), idOf(res[9])];
    expect(new Set(good).size).toBe(3);
    // the good ones are stored (seen through another node too), with their own fields
    for (const [i, id] of good.entries()) {
      const q = await queryText(otherUrl(), id);
      expect(q.code, q.text).toBe(0);
      expect(q.text).toContain(`"name":"${name}-good-${[0, 2, 9][i]}"`);
    }
    expect(JSON.parse((await queryText(baseUrl(), good[2]!)).text).data.state).toBe('paused');
    // the bad ones are not: no task carries their names
    const list = await (await fetch(`${otherUrl()}/xcron/listTasks?name=${name}-&limit=100`)).json() as { data: { tasks: { name: string }[] } };
    expect(list.data.tasks.map((t) => t.name).sort()).toEqual([`${name}-good-0`, `${name}-good-2`, `${name}-good-9`]);
    // each item answered like a single createTask would have answered it
    const single = await post(baseUrl(), '/xcron/createTask', items[3]);
    expect(single.body.code).toBe(1005);
    expect(single.body.message).toBe((res[3] as { message: string }).message);
  });

  it(`${name}: idempotency keys work inside a batch, across batches and with createTask`, async () => {
    const key = `${name}-key-${Date.now()}`;
    const cb = { url: 'http://127.0.0.1:9/k' };
    const r1 = await post(baseUrl(), '/xcron/createTasks', {
      tasks: [
        { type: 2, format: future(5), callback: cb, idempotency_key: key },
        { type: 2, format: future(6), callback: cb },
        { type: 2, format: future(7), callback: cb, idempotency_key: key },
        { type: 2, format: 'bad', callback: cb, idempotency_key: `${key}-x` },
        { type: 2, format: future(8), callback: cb, idempotency_key: `${key}-x` },
      ],
    });
    expect(r1.body.code, r1.text).toBe(0);
    const res = r1.body.data!.results;
    const id = idOf(res[0]);
    expect(res[0]).not.toHaveProperty('existing');
    expect(idOf(res[2])).toBe(id);
    expect(res[2]).toMatchObject({ existing: true });
    expect(codeOf(res[3])).toBe(1001);
    // the key of a bad item is free for the next item holding it
    expect(res[4]).not.toHaveProperty('existing');
    const r2 = await post(otherUrl(), '/xcron/createTasks', { tasks: [{ type: 2, format: future(9), callback: cb, idempotency_key: key }] });
    expect(r2.body.data!.results[0]).toMatchObject({ task_id: id, existing: true });
    const single = await post(baseUrl(), '/xcron/createTask', { type: 2, format: future(9), callback: cb, idempotency_key: `${key}-x` });
    expect((single.body.data as unknown as { task_id: string }).task_id).toBe(idOf(res[4]));
  });

  it(`${name}: large integers in a callback body are kept exactly, per item`, async () => {
    const text = `{"tasks":[{"type":2,"format":"${future(3)}","callback":{"url":"http://127.0.0.1:9/n","body":{"big":12345678901234567890}}},{"type":2,"format":"${future(3)}","callback":{"url":"http://127.0.0.1:9/n","body":{"small":1.50}}}]}`;
    const r = await post(baseUrl(), '/xcron/createTasks', text);
    expect(r.body.code, r.text).toBe(0);
    const [a, b] = r.body.data!.results;
    expect((await queryText(otherUrl(), idOf(a))).text).toContain('"body":{"big":12345678901234567890}');
    expect((await queryText(otherUrl(), idOf(b))).text).toContain('"body":{"small":1.50}');
  });

  it(`${name}: 1,000 tasks in one batch are all stored; more, none, or no array are refused whole`, async () => {
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ type: 2, format: future(10 + (i % 300)), callback: { url: 'http://127.0.0.1:9/bulk', body: { i } }, name: `${name}-bulk-${i}` }));
    const r = await post(baseUrl(), '/xcron/createTasks', { tasks });
    expect(r.body.code, r.text.slice(0, 300)).toBe(0);
    expect(r.body.data!.succeeded).toBe(1000);
    const ids = r.body.data!.results.map(idOf);
    expect(new Set(ids).size).toBe(1000);
    for (const i of [0, 499, 999]) expect((await queryText(otherUrl(), ids[i]!)).text).toContain(`"name":"${name}-bulk-${i}"`);

    const over = await post(baseUrl(), '/xcron/createTasks', { tasks: [...tasks, tasks[0]].map((t) => ({ ...t, name: `${name}-over` })) });
    expect(over.status).toBe(400);
    expect(over.body).toMatchObject({ code: 1009, message: "'tasks' must hold 1 to 1000 tasks, got 1001", data: null });
    const none = await post(baseUrl(), '/xcron/createTasks', { tasks: [] });
    expect(none.body).toMatchObject({ code: 1009, message: "'tasks' must hold 1 to 1000 tasks, got 0" });
    expect((await post(baseUrl(), '/xcron/createTasks', { task: [] })).body).toMatchObject({ code: 1000, message: "unknown field 'task' (known fields: tasks)" });
    expect((await post(baseUrl(), '/xcron/createTasks', {})).body.code).toBe(1000);
    expect((await post(baseUrl(), '/xcron/createTasks', [tasks[0]])).body.code).toBe(1000);
    const list = await (await fetch(`${otherUrl()}/xcron/listTasks?name=${name}-over&limit=10`)).json() as { data: { tasks: unknown[] } };
    expect(list.data.tasks).toHaveLength(0);
  });
}

describe('createTasks on a standalone server (SQLite)', () => {
  let server: XcronServer;
  beforeAll(async () => {
    server = await XcronServer.start({ env: { XCRON_LOG_LEVEL: 'warn', XCRON_CALLBACK_DENY_CIDRS: JSON.stringify([DENIED]) } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    cleanupTempDirs();
  });
  batchSuite(() => server.baseUrl, () => server.baseUrl, 'sqlite');
});

describe('createTasks in a cluster (Redis store, tasks spread over slots of two nodes)', () => {
  let redis: RedisServer;
  let rec: CallbackReceiver;
  let a: XNode;
  let b: XNode;
  beforeAll(async () => {
    redis = await RedisServer.start({ appendonly: true });
    rec = await CallbackReceiver.start();
    const prefix = uniquePrefix('batch');
    const env = { XCRON_CALLBACK_DENY_CIDRS: JSON.stringify([DENIED]) };
    a = await XNode.start({ redisUrl: redis.url, prefix, name: 'batch-a', slots: 16, env });
    b = await XNode.start({ redisUrl: redis.url, prefix, name: 'batch-b', slots: 16, env });
    await until('both nodes own slots', () => a.cluster(), (v) => v.members.length === 2 && v.slots.every((s) => s.owner !== null) && new Set(v.slots.map((s) => s.owner)).size === 2);
  }, 120_000);
  afterAll(async () => {
    await stopAllNodes();
    await rec?.close();
    await stopAllRedis();
  });
  batchSuite(() => a.base, () => b.base, 'redis');

  it('redis: tasks created in one batch through one node fire from whichever node owns their slot', async () => {
    const due = String(Date.now() + 2000);
    const tasks = Array.from({ length: 40 }, (_, i) => ({ type: 2, format: due, callback: { url: rec.url(`/fire-${i}`) } }));
    const r = await post(a.base, '/xcron/createTasks', { tasks });
    expect(r.body.code, r.text).toBe(0);
    const ids = new Set(r.body.data!.results.map(idOf));
    const got = await until('all 40 callbacks', () => rec.got.filter((c) => ids.has(c.taskId)), (v) => new Set(v.map((c) => c.taskId)).size === 40, 30_000);
    expect(new Set(got.map((c) => c.node)).size).toBe(2);
  });
});
