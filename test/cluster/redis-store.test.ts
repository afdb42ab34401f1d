/**
 * RedisTaskStore against a real redis-server (and a 3-master Redis Cluster): the shared TaskStore
 * contract suite, plus what only a Redis store has to show (key layout, fencing by lease and epoch,
 * the parts of the contract the shared suite does not cover, errors when Redis is gone).
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { SLOTS } from '../component/fixtures.js';
import { storeContract } from '../component/store-contract.js';
import { storeOpsContract } from '../component/store-contract-ops.js';
import { storeExecutorsContract } from '../component/store-contract-executors.js';
import { RedisClusterServers, RedisServer, stopAllRedis } from '../helpers/redis.js';
import { redisHarness } from './harness.js';

let single: RedisServer;
let cluster: RedisClusterServers;

beforeAll(async () => {
  [single, cluster] = await Promise.all([RedisServer.start(), RedisClusterServers.start(3)]);
}, 90_000);

afterAll(async () => {
  await stopAllRedis();
});

describe('single Redis', () => {
  storeContract('redis', () => redisHarness(single.url, { slots: SLOTS }), { claims: true });
  storeOpsContract('redis', () => redisHarness(single.url, { slots: SLOTS }));
  storeExecutorsContract('redis', () => redisHarness(single.url, { slots: SLOTS }));
});

describe('Redis Cluster (3 masters)', () => {
  storeContract('redis-cluster', () => redisHarness(cluster.url, { cluster: true, slots: SLOTS }), { claims: true });
  storeOpsContract('redis-cluster', () => redisHarness(cluster.url, { cluster: true, slots: SLOTS }));
  storeExecutorsContract('redis-cluster', () => redisHarness(cluster.url, { cluster: true, slots: SLOTS }));
});

// ---------------------------------------------------------------------------------------------
// Beyond the shared suite

import { join } from 'node:path';
import { expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { evalScript, RedisKeys, script } from '../../src/redis/index.js';
import { RedisTaskStore } from '../../src/store/redis.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import type { FireRequest, TaskStore } from '../../src/store/types.js';
import { fireId, type Task } from '../../src/task/index.js';
import { T0, makeTask, oneShot, tempDir } from '../component/fixtures.js';
import { acquireAll, connect, silentLog, uniquePrefix } from './harness.js';

const MIN = 60_000;

/**
 * A SQLite store and a Redis store side by side (every Redis slot leased to one node): `both` runs
 * an operation on each, with that store's token, and checks that the answers agree.
 */
async function differential(name: string) {
  const tmp = tempDir(`xcron-${name}-`);
  const sqlite = new SqliteTaskStore({ file: join(tmp.dir, 'x.db'), synchronous: 'normal' });
  const sqliteToken = sqlite.claimEpoch();
  const client = await connect(single.url);
  const prefix = uniquePrefix(name);
  const redis = new RedisTaskStore({ client, prefix, slots: SLOTS, log: silentLog });
  const tokens = await acquireAll(client, prefix, SLOTS, 'diff-node');
  const stores: [TaskStore, (slot: number) => number][] = [
    [sqlite, () => sqliteToken],
    [redis, (s) => tokens.get(s)!],
  ];
  /** Runs `op` on both stores and checks the answers agree; returns the answer. */
  const both = async <T>(what: string, op: (s: TaskStore, token: (slot: number) => number) => Promise<T>): Promise<T> => {
    const [a, b] = await Promise.all(stores.map(([s, tok]) => op(s, tok)));
    expect(b, what).toEqual(a);
    return a as T;
  };
  const close = async (): Promise<void> => {
    await redis.close();
    await sqlite.close();
    tmp.remove();
  };
  return { sqlite, redis, tokens, prefix, stores: stores.map(([st]) => st), both, close };
}

/** The same scripted history on both stores; every answer must be the same. */
describe('RedisTaskStore answers like SqliteTaskStore (differential)', () => {
  it('updateTask, commitTrigger, listTasks, pageRuns, stats, pruneRuns, purgeCompleted, dueTasks after changes', async () => {
    const { sqlite, redis, tokens, both, close } = await differential('diff');
    const fire = (t: Task, token: (slot: number) => number, over: Partial<FireRequest> = {}, status: FireRequest['run']['status'] = 'PENDING'): FireRequest => {
      const expected = over.expected ?? t.next_fire_time!;
      return { slot: t.slot, token: token(t.slot), task_id: t.id, expected, next: expected + MIN, now: expected + 3, ...over, run: { run_id: fireId(t.id, expected), node: 'n1', status, error: status === 'PENDING' ? null : `by policy ${status}` } };
    };
    try {
      const tasks: Task[] = [];
      for (let i = 0; i < 24; i++) {
        const name = i % 3 === 0 ? `alpha-${i}` : i % 3 === 1 ? `beta-${i}` : null;
        const id = `Diff${i % 2 === 0 ? 'A' : 'b'}-${String(i).padStart(2, '0')}`;
        const t =
          i % 5 === 4
            ? oneShot(id, T0 + 1000 * i, T0 - 1000, { body: name ? { name } : {} })
            : makeTask({ id, next_fire_time: T0 + 1000 * (i % 4), state: i % 7 === 6 ? 'paused' : 'active', body: { ...(name ? { name } : {}), ...(i === 3 ? { idempotency_key: 'diff-key' } : {}) } });
        tasks.push(t);
        await both(`create ${id}`, (s) => s.create(t));
      }
      await both('idempotent create', (s) => s.create(makeTask({ id: 'dup', body: { idempotency_key: 'diff-key' } })));

      // fires: PENDING, SKIPPED, MISSED, a conflict
      const active = tasks.filter((t) => t.state === 'active');
      await both('commitFires', (s, tok) =>
        s.commitFires(active.map((t, i) => fire(t, tok, i === 2 ? { expected: t.next_fire_time! + 1 } : {}, i % 6 === 1 ? 'SKIPPED' : i % 6 === 4 ? 'MISSED' : 'PENDING'))),
      );
      // run updates: RUNNING, SUCCESS (with shards), FAIL
      const runIds = active.map((t) => fireId(t.id, t.next_fire_time!));
      await both('updateRuns', async (s) => {
        await s.updateRuns([
          { run_id: runIds[0]!, task_id: active[0]!.id, status: 'RUNNING', attempts: 1, node: 'n2', start_time: T0 + 10 },
          { run_id: runIds[3]!, task_id: active[3]!.id, status: 'SUCCESS', attempts: 2, node: 'n2', start_time: T0 + 10, end_time: T0 + 20, http_status: 200, error: null, duration_ms: 10, response_body: '{"ok":true}', shards: [{ index: 0, url: 'http://a', ok: true, attempts: 1, http_status: 200, error: null }] },
          { run_id: runIds[5]!, task_id: active[5]!.id, status: 'FAIL', attempts: 3, http_status: 500, error: 'HTTP 500' },
        ]);
        return Promise.all(runIds.map((r) => s.getRun(r)));
      });
      // manual fires
      const trig = tasks[7]!;
      await both('commitTrigger', (s) => s.commitTrigger({ slot: trig.slot, task_id: trig.id, run_id: `${trig.id}:m1`, scheduled_time: T0 + 500, node: 'n3', now: T0 + 500 }));
      await both('commitTrigger again', (s) => s.commitTrigger({ slot: trig.slot, task_id: trig.id, run_id: `${trig.id}:m1`, scheduled_time: T0 + 500, node: 'n3', now: T0 + 501 }));
      await both('commitTrigger unknown', (s) => s.commitTrigger({ slot: 0, task_id: 'nope', run_id: 'nope:1', scheduled_time: T0, node: 'n3', now: T0 }));
      await both('get after trigger', (s) => s.get(trig.id));

      // updates: conflict, unknown, pause, resume with a new time, callback/name changes, name to null
      const u = tasks[1]!;
      await both('updateTask wrong expectation', (s) => s.updateTask(u.id, { state: 'paused', update_time: T0 + 1 }, { state: 'active', next_fire_time: 1 }));
      await both('updateTask unknown', (s) => s.updateTask('nope', { state: 'paused', update_time: T0 + 1 }, { state: 'active', next_fire_time: null }));
      const cur = (await sqlite.get(u.id))!;
      await both('pause', (s) => s.updateTask(u.id, { state: 'paused', update_time: T0 + 2 }, { state: cur.state, next_fire_time: cur.next_fire_time }));
      await both('due after pause', (s) => s.dueTasks({ slots: null, after: null, upTo: T0 + 10 * MIN, limit: 100 }));
      await both('resume', (s) => s.updateTask(u.id, { state: 'active', next_fire_time: T0 + 7777, update_time: T0 + 3 }, { state: 'paused', next_fire_time: cur.next_fire_time }));
      await both('edit', (s) =>
        s.updateTask(u.id, { format: '*/5 * * * *', name: null, callback: { ...u.callback, body: { list: [], nested: { a: [1, { b: null }] } } }, timeout_ms: 1234, retry: null, update_time: T0 + 4 }, { state: 'active', next_fire_time: T0 + 7777 }),
      );
      await both('due after resume', (s) => s.dueTasks({ slots: null, after: null, upTo: T0 + 10 * MIN, limit: 100 }));

      // listings
      for (const state of [null, 'active', 'paused', 'completed'] as const) {
        for (const namePrefix of [null, 'alpha-', 'beta-1', 'zzz']) {
          await both(`listTasks ${state} ${namePrefix}`, async (s) => {
            const all: string[] = [];
            let after: string | null = null;
            for (;;) {
              const page = await s.listTasks({ state, namePrefix, after, limit: 5 });
              all.push(...page.map((t) => t.id));
              if (page.length < 5) return all;
              after = page[page.length - 1]!.id;
            }
          });
        }
      }
      // a history of several runs with ties on scheduled_time
      const h = tasks[0]!;
      let hcur = (await sqlite.get(h.id))!;
      for (let i = 0; i < 6; i++) {
        const at = hcur.next_fire_time!;
        await both(`fire ${i}`, (s, tok) => s.commitFires([fire(hcur, tok, { expected: at })]));
        await both(`trigger ${i}`, (s) => s.commitTrigger({ slot: h.slot, task_id: h.id, run_id: `${h.id}:${at}x`, scheduled_time: at, node: 'n', now: at + 1 }));
        hcur = (await sqlite.get(h.id))!;
      }
      await both('pageRuns', async (s) => {
        const out: string[] = [];
        let before: { time: number; id: string } | null = null;
        for (;;) {
          const page = await s.pageRuns({ task_id: h.id, before, limit: 4 });
          out.push(...page.map((r) => r.run_id));
          if (page.length < 4) return out;
          const last = page[page.length - 1]!;
          before = { time: last.scheduled_time, id: last.run_id };
        }
      });
      await both('pageRuns from a cursor not in the set', (s) => s.pageRuns({ task_id: h.id, before: { time: T0 + 2 * MIN, id: `${h.id}:zzz` }, limit: 100 }));
      // SQLite's listRuns leaves ties on scheduled_time unordered; Redis breaks them by run_id (as pageRuns does)
      await both('listRuns', async (s) => (await s.listRuns(h.id, 100)).map((r) => r.run_id).sort());
      await both('unfinished', (s) => s.unfinishedRuns({ slots: null, after: null, limit: 1000 }));
      await both('stats', (s) => s.stats());

      // finish some of the history, then prune by count and by age
      const hist = await sqlite.listRuns(h.id, 100);
      await both('finish history', (s) => s.updateRuns(hist.slice(0, 9).map((r, i) => ({ run_id: r.run_id, task_id: h.id, status: i % 2 ? 'FAIL' : 'SUCCESS', attempts: 1 }))));
      expect(await both('prune by count', (s) => s.pruneRuns(0, 4))).toBeGreaterThan(0);
      const byId = (runs: { run_id: string }[]): typeof runs => [...runs].sort((x, y) => (x.run_id < y.run_id ? -1 : 1));
      await both('history after prune', async (s) => byId(await s.listRuns(h.id, 100)));
      expect(await both('prune by age', (s) => s.pruneRuns(T0 + 2 * MIN, 0))).toBeGreaterThan(0);
      await both('history after age prune', async (s) => byId((await Promise.all(tasks.map((t) => s.listRuns(t.id, 100)))).flat()));
      await both('stats after prune', (s) => s.stats());
      // completed tasks: purge by age (their runs go too; a purged idempotency key is free again)
      const done = [tasks[4]!, tasks[9]!, tasks[14]!];
      const withKey = makeTask({ id: 'DiffDone-key', type: 2, format: String(T0 + 90_000), createdAt: T0, body: { idempotency_key: 'done-key' } });
      await both('create with key', (s) => s.create(withKey));
      for (const t of [...done, withKey]) {
        const c = (await sqlite.get(t.id))!;
        await both(`complete ${t.id}`, (s, tok) => s.commitFires([fire(c, tok, { next: null, now: c.next_fire_time! + (t === done[0] ? 10 * MIN : 5) })]));
      }
      await both('purge nothing yet', (s) => s.purgeCompleted(T0 - 1));
      expect(await both('purge the older ones', (s) => s.purgeCompleted(T0 + 5 * MIN))).toBeGreaterThan(0);
      await both('completed left', (s) => s.listTasks({ state: 'completed', namePrefix: null, after: null, limit: 100 }));
      await both('purged runs gone', async (s) => (await Promise.all(done.map((t) => s.listRuns(t.id, 10)))).map((r) => r.length));
      expect(await both('key free again', async (s) => (await s.create(makeTask({ id: 'DiffDone-key2', body: { idempotency_key: 'done-key' } }))).created)).toBe(true);
      await both('stats after purge', (s) => s.stats());
      await both('delete', (s) => s.delete(h.id));
      await both('stats after delete', (s) => s.stats());
    } finally {
      await close();
    }
  });
});

describe('RedisTaskStore answers like SqliteTaskStore: async completion and run logs (differential)', () => {
  it('RUNNING with a deadline, reportRun (closed, same, conflict, not_open, not_found, expire), appendRunLog caps, readRunLog, sharedSecret', async () => {
    const { redis, prefix, stores, both, close } = await differential('diff2');
    try {
      const tasks = Array.from({ length: 5 }, (_, i) => makeTask({ id: `Async-${i}`, next_fire_time: T0 + 1000, body: { completion: 'async' } }));
      for (const t of tasks) await both(`create ${t.id}`, (s) => s.create(t));
      await both('commit', (s, tok) => s.commitFires(tasks.map((t) => ({ slot: t.slot, token: tok(t.slot), task_id: t.id, expected: T0 + 1000, next: T0 + 61_000, now: T0 + 1001, run: { run_id: fireId(t.id, T0 + 1000), node: 'n', status: 'PENDING', error: null } }))));
      const rid = (i: number): string => fireId(tasks[i]!.id, T0 + 1000);
      await both('RUNNING with deadline and status', async (s) => {
        await s.updateRuns([
          { run_id: rid(0), task_id: tasks[0]!.id, status: 'RUNNING', attempts: 1, node: 'n', start_time: T0 + 1100, deadline: T0 + 5000, http_status: 202 },
          { run_id: rid(1), task_id: tasks[1]!.id, status: 'RUNNING', attempts: 1, start_time: T0 + 1100, deadline: T0 + 2000 },
          { run_id: rid(2), task_id: tasks[2]!.id, status: 'RUNNING', attempts: 1, deadline: T0 + 9000 },
        ]);
        await s.updateRuns([{ run_id: rid(2), task_id: tasks[2]!.id, status: 'RUNNING', attempts: 2, deadline: null }]);
        return Promise.all([0, 1, 2].map((i) => s.getRun(rid(i))));
      });
      await both('report closes', (s) => s.reportRun({ run_id: rid(0), status: 'SUCCESS', message: 'done', output: '{"rows":3}', now: T0 + 3000 }));
      await both('report again: same', (s) => s.reportRun({ run_id: rid(0), status: 'SUCCESS', message: 'again', output: null, now: T0 + 3100 }));
      await both('report other: conflict', (s) => s.reportRun({ run_id: rid(0), status: 'FAIL', message: null, output: null, now: T0 + 3200 }));
      await both('expire before the deadline: not_open', (s) => s.reportRun({ run_id: rid(1), status: 'FAIL', message: null, output: null, now: T0 + 1500, expire: true }));
      await both('expire after the deadline: closed', (s) => s.reportRun({ run_id: rid(1), status: 'FAIL', message: null, output: null, now: T0 + 2500, expire: true }));
      await both('expire without deadline: not_open', (s) => s.reportRun({ run_id: rid(2), status: 'FAIL', message: null, output: null, now: T0 + 99_000, expire: true }));
      await both('report FAIL with message on a PENDING run', (s) => s.reportRun({ run_id: rid(3), status: 'FAIL', message: 'worker broke', output: null, now: T0 + 4000 }));
      await both('report FAIL without message', (s) => s.reportRun({ run_id: rid(2), status: 'FAIL', message: null, output: null, now: T0 + 4000 }));
      await both('report unknown', (s) => s.reportRun({ run_id: 'nope:1', status: 'SUCCESS', message: null, output: null, now: T0 }));
      await both('tasks after reports', (s) => Promise.all(tasks.map((t) => s.get(t.id))));
      await both('outbox after reports', (s) => s.unfinishedRuns({ slots: null, after: null, limit: 100 }));
      await both('stats after reports', (s) => s.stats());

      const caps = { maxLines: 5, maxBytes: 40 };
      await both('log append', (s) => s.appendRunLog(rid(4), ['one', 'two|with bar', 'ünïcödé'], T0 + 10, caps));
      await both('log append over caps', (s) => s.appendRunLog(rid(4), ['four', 'x'.repeat(30), 'five'], T0 + 20, caps));
      await both('log append lines cap', (s) => s.appendRunLog(rid(4), ['a', 'b', 'c'], T0 + 30, caps));
      await both('log append unknown run', (s) => s.appendRunLog('nope:1', ['x'], T0, caps));
      await both('log read all', (s) => s.readRunLog(rid(4), 0, 100));
      await both('log read since', (s) => s.readRunLog(rid(4), 2, 2));
      await both('log read unknown', (s) => s.readRunLog('nope:1', 0, 10));
      await both('delete removes the log', async (s) => {
        await s.delete(tasks[4]!.id);
        return s.readRunLog(rid(4), 0, 100);
      });
      for (const s of stores) {
        const a = await s.sharedSecret('signing');
        expect(a).toMatch(/^[0-9a-f]{64}$/);
        expect(await s.sharedSecret('signing')).toBe(a);
        expect(await s.sharedSecret('other')).not.toBe(a);
      }
      // another Redis store on the same keys (another node) gets the same secret
      const other = new RedisTaskStore({ client: await connect(single.url), prefix, slots: SLOTS, log: silentLog });
      expect(await other.sharedSecret('signing')).toBe(await redis.sharedSecret('signing'));
      await other.close();
    } finally {
      await close();
    }
  });
});

/**
 * commitFires, claimFires and updateRuns send a batch as one JSON argument that the script decodes
 * (cjson): free text must come back exactly as SQLite keeps it, whatever it holds.
 */
describe('RedisTaskStore answers like SqliteTaskStore: free text in batched run writes (differential)', () => {
  it('errors, response bodies and shards with quotes, backslashes, control characters, NUL, non-BMP characters and lone surrogates', async () => {
    const { sqlite, redis, tokens, both, close } = await differential('diff3');
    const texts = ['say "hi"\\n \\ back\\slash', 'tab\tnew\nline\r\u0000nul\u0001\u001f', 'ünïcödé 中文 😀 \u2028\u2029', 'pair \ud83d\ude00 and <\u00e9>', '[1,"a",{"b":null}]', '', '=starts with the marker', 'x'.repeat(70_000)];
    try {
      const tasks = texts.map((_, i) => makeTask({ id: `Text-${i}`, next_fire_time: T0 + 1000 }));
      for (const t of tasks) await both(`create ${t.id}`, (s) => s.create(t));
      const rid = (i: number): string => fireId(tasks[i]!.id, T0 + 1000);
      // A policy's error text through commitFires (SKIPPED runs carry one).
      await both('commit with error texts', (s, tok) =>
        s.commitFires(tasks.map((t, i) => ({ slot: t.slot, token: tok(t.slot), task_id: t.id, expected: T0 + 1000, next: T0 + 61_000, now: T0 + 1001, run: { run_id: rid(i), node: 'n"\\1', status: 'SKIPPED', error: texts[i]! } }))),
      );
      await both('runs after commit', (s) => Promise.all(tasks.map((_, i) => s.getRun(rid(i)))));
      await both('commit the next tick', (s, tok) =>
        s.commitFires(tasks.map((t, i) => ({ slot: t.slot, token: tok(t.slot), task_id: t.id, expected: T0 + 61_000, next: T0 + 121_000, now: T0 + 61_001, run: { run_id: fireId(tasks[i]!.id, T0 + 61_000), node: 'n', status: 'PENDING', error: null } }))),
      );
      const rid2 = (i: number): string => fireId(tasks[i]!.id, T0 + 61_000);
      await both('final outcomes with free text', async (s) => {
        await s.updateRuns(
          tasks.map((t, i) => ({
            run_id: rid2(i),
            task_id: t.id,
            status: i % 2 === 0 ? ('SUCCESS' as const) : ('FAIL' as const),
            attempts: 1,
            node: 'n',
            start_time: T0 + 61_002,
            end_time: T0 + 61_010,
            http_status: i % 2 === 0 ? 200 : 500,
            error: i % 2 === 0 ? null : texts[i]!,
            duration_ms: 8,
            response_body: texts[(i + 3) % texts.length]!,
            shards: i === 1 ? [{ index: 0, url: texts[i]!, ok: false, http_status: 500, error: texts[3]!, attempts: 1 }] : null,
          })),
        );
        return Promise.all(tasks.map((_, i) => s.getRun(rid2(i))));
      });
      const runs = await both('runs again', (s) => Promise.all(tasks.map((_, i) => s.getRun(rid2(i)))));
      // The differential check above is the point; this pins that text really went through.
      expect(runs[0]!.response_body).toBe(texts[3]);
      expect(runs[1]!.error).toBe(texts[1]);
      await both('stats', (s) => s.stats());

      // A lone UTF-16 surrogate (JSON.stringify writes it as an escape cjson rejects) is stored as
      // U+FFFD, as Node's UTF-8 encoder sent it before batches were JSON: the batch is not lost.
      // (SQLite differs here: better-sqlite3 reads it back as three U+FFFD.)
      const lone = 'lone \ud800 high, lone \udc00 low';
      const t = makeTask({ id: 'Text-lone', next_fire_time: T0 + 1000 });
      await redis.create(t);
      const loneRid = fireId(t.id, T0 + 1000);
      expect(await redis.commitFires([{ slot: t.slot, token: tokens.get(t.slot)!, task_id: t.id, expected: T0 + 1000, next: T0 + 61_000, now: T0 + 1001, run: { run_id: loneRid, node: 'n', status: 'PENDING', error: null } }])).toEqual(['committed']);
      await redis.updateRuns([{ run_id: loneRid, task_id: t.id, status: 'FAIL', attempts: 1, end_time: T0 + 1002, error: lone, response_body: lone }]);
      const loneRun = await redis.getRun(loneRid);
      expect(loneRun!.status).toBe('FAIL');
      expect(loneRun!.error).toBe('lone \ufffd high, lone \ufffd low');
      expect(loneRun!.response_body).toBe('lone \ufffd high, lone \ufffd low');
    } finally {
      await close();
    }
  });
});

describe('RedisTaskStore specifics', () => {
  it('orders ids bytewise (as JS compares them) in ties, with a cursor that is not in the set', async () => {
    const client = await connect(single.url);
    const prefix = uniquePrefix('order');
    const store = new RedisTaskStore({ client, prefix, slots: 4, log: silentLog });
    try {
      const ids = ['Zed', 'abc', '_x', '-y', '0', 'Abc', 'zz', 'a-b', 'a_b', 'aB'];
      for (const id of ids) await store.create(makeTask({ id, next_fire_time: T0, slots: 4 }));
      const sorted = [...ids].sort();
      expect((await store.dueTasks({ slots: null, after: null, upTo: T0, limit: 100 })).map((t) => t.id)).toEqual(sorted);
      expect((await store.dueTasks({ slots: null, after: { time: T0, id: 'a' }, upTo: T0, limit: 100 })).map((t) => t.id)).toEqual(sorted.filter((x) => x > 'a'));
      expect((await store.listTasks({ state: null, namePrefix: null, after: 'a', limit: 100 })).map((t) => t.id)).toEqual(sorted.filter((x) => x > 'a'));
    } finally {
      await store.close();
    }
  });

  it('keeps every key of a slot under the hash tag {<prefix>:<slot>} and the rest under {<prefix>}', async () => {
    const client = await connect(single.url);
    const prefix = uniquePrefix('layout');
    const store = new RedisTaskStore({ client, prefix, slots: 8, log: silentLog });
    try {
      const tokens = await acquireAll(client, prefix, 8, 'layout-node');
      const tasks = Array.from({ length: 12 }, (_, i) => makeTask({ id: `lay-${i}`, slots: 8, body: { idempotency_key: `k${i}` } }));
      for (const t of tasks) await store.create(t);
      await store.commitFires(tasks.map((t) => ({ slot: t.slot, token: tokens.get(t.slot)!, task_id: t.id, expected: t.next_fire_time!, next: t.next_fire_time! + MIN, now: T0, run: { run_id: fireId(t.id, t.next_fire_time!), node: 'n', status: 'PENDING', error: null } })));
      const keys = (await client.keys(`*${prefix}*`)) as string[];
      expect(keys.length).toBeGreaterThan(12 * 3);
      for (const k of keys) expect(k).toMatch(new RegExp(`^\\{${prefix}(:[0-7])?\\}`));
      for (const t of tasks) {
        const own = keys.filter((k) => new RegExp(`:${t.id}(:|$)`).test(k));
        expect(own.length).toBeGreaterThanOrEqual(3); // task hash, run hash, history
        for (const k of own) expect(k.startsWith(new RedisKeys(prefix).slot(t.slot)), k).toBe(true);
      }
    } finally {
      await store.close();
    }
  });

  it('RedisKeys names the keys the scripts and the store write (task, run, run log, lease, epoch, idempotency claim, shared secret)', async () => {
    const client = await connect(single.url);
    const prefix = uniquePrefix('keys');
    const keys = new RedisKeys(prefix);
    const store = new RedisTaskStore({ client, prefix, slots: 8, log: silentLog });
    try {
      const tokens = await acquireAll(client, prefix, 8, 'keys-node');
      const t = makeTask({ id: 'keyed', slots: 8, body: { idempotency_key: 'keyed-1' } });
      await store.create(t);
      const runId = fireId(t.id, t.next_fire_time!);
      await store.commitFires([{ slot: t.slot, token: tokens.get(t.slot)!, task_id: t.id, expected: t.next_fire_time!, next: t.next_fire_time! + MIN, now: T0, run: { run_id: runId, node: 'n', status: 'PENDING', error: null } }]);
      await store.appendRunLog(runId, ['one'], T0, { maxLines: 10, maxBytes: 1000 });
      const secret = await store.sharedSecret('keys-test');
      expect(await client.hget(keys.task(t.slot, t.id), 'id')).toBe(t.id);
      expect(await client.hget(keys.run(t.slot, runId), 'task_id')).toBe(t.id);
      expect(await client.lrange(keys.runLog(t.slot, runId), 0, -1)).toEqual([`${T0}|one`]);
      expect(await client.exists(keys.runLogTotals(t.slot, runId))).toBe(1);
      expect(await client.get(keys.lease(t.slot))).toBe(`${tokens.get(t.slot)}|keys-node`);
      expect(await client.get(keys.epoch(t.slot))).toBe(String(tokens.get(t.slot)));
      expect(await client.get(keys.idempotency('keyed-1'))).toBe(t.id);
      expect(await client.get(keys.secret('keys-test'))).toBe(secret);
    } finally {
      await store.close();
    }
  });

  it('fences a commit whose lease expired even though no other node took the slot (epoch unchanged)', async () => {
    const client = await connect(single.url);
    const prefix = uniquePrefix('lease');
    const store = new RedisTaskStore({ client, prefix, slots: 4, log: silentLog });
    try {
      const t = makeTask({ id: 'lease-task', slots: 4 });
      await store.create(t);
      const tokens = await acquireAll(client, prefix, 4, 'n1', 200);
      const req: FireRequest = { slot: t.slot, token: tokens.get(t.slot)!, task_id: t.id, expected: t.next_fire_time!, next: t.next_fire_time! + MIN, now: T0, run: { run_id: fireId(t.id, t.next_fire_time!), node: 'n1', status: 'PENDING', error: null } };
      // the lease runs out (PX 200): wait until Redis has dropped it
      for (let i = 0; i < 100 && (await client.exists(new RedisKeys(prefix).lease(t.slot))) === 1; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await client.get(new RedisKeys(prefix).epoch(t.slot))).toBe(String(req.token));
      expect(await store.commitFires([req])).toEqual(['fenced']);
      expect((await store.get(t.id))!.run_count).toBe(0);
      // the same node takes it again: a new epoch; the old token stays fenced, the new one commits
      const [ok, epoch] = (await evalScript(client, script('acquire'), [new RedisKeys(prefix).slot(t.slot)], ['n1', 60_000])) as [number, number];
      expect(ok).toBe(1);
      expect(epoch).toBeGreaterThan(req.token);
      expect(await store.commitFires([req])).toEqual(['fenced']);
      expect(await store.commitFires([{ ...req, token: epoch }])).toEqual(['committed']);
    } finally {
      await store.close();
    }
  });

  it('epochs only grow, from the server clock: a take after an epoch rollback (replica failover) does not reissue the old token', async () => {
    const client = await connect(single.url);
    const prefix = uniquePrefix('rollback');
    const store = new RedisTaskStore({ client, prefix, slots: 4, log: silentLog });
    try {
      const t = makeTask({ id: 'rollback-task', slots: 4 });
      await store.create(t);
      const keys = new RedisKeys(prefix);
      const base = keys.slot(t.slot);
      const take = async (node: string): Promise<number> => {
        const [ok, epoch] = (await evalScript(client, script('acquire'), [base], [node, 60_000])) as [number, number];
        expect(ok).toBe(1);
        return epoch;
      };
      const [sec] = await client.time();
      const first = await take('n1');
      // Floored at Redis's clock (ms), and strictly increasing on back-to-back takes in the same ms.
      expect(first).toBeGreaterThanOrEqual(Number(sec) * 1000);
      await client.del(keys.lease(t.slot));
      const second = await take('n1');
      expect(second).toBeGreaterThan(first);
      await client.del(keys.lease(t.slot));
      await client.set(keys.epoch(t.slot), String(second + 1_000_000_000));
      expect(await take('n1')).toBe(second + 1_000_000_001);

      // n1 holds token A. A failover to a replica that never saw n1's take: the epoch is back to
      // what it was before, and the lease is gone. n2 takes the slot on the new primary.
      await client.del(keys.lease(t.slot));
      await client.set(keys.epoch(t.slot), '7');
      const a = await take('n1');
      await new Promise((r) => setTimeout(r, 5));
      await client.set(keys.epoch(t.slot), '7');
      await client.del(keys.lease(t.slot));
      const b = await take('n2');
      // With INCR both takes would have got 8: n1's commit would pass the fence as n2's owner.
      expect(b).not.toBe(a);
      expect(b).toBeGreaterThan(a);
      const req = (token: number, node: string): FireRequest => ({ slot: t.slot, token, task_id: t.id, expected: t.next_fire_time!, next: t.next_fire_time! + MIN, now: T0, run: { run_id: fireId(t.id, t.next_fire_time!), node, status: 'PENDING', error: null } });
      expect(await store.commitFires([req(a, 'n1')])).toEqual(['fenced']);
      expect(await store.commitFires([req(b, 'n2')])).toEqual(['committed']);
      expect((await store.get(t.id))!.run_count).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('pruneRuns and purgeCompleted with slots touch only those slots (a cluster node prunes its own)', async () => {
    const client = await connect(single.url);
    const prefix = uniquePrefix('prune-slots');
    const store = new RedisTaskStore({ client, prefix, slots: SLOTS, log: silentLog });
    try {
      const tokens = await acquireAll(client, prefix, SLOTS, 'n1');
      const tasks = Array.from({ length: 12 }, (_, i) => oneShot(`PruneSlot-${i}`, T0 + 1000, T0));
      for (const t of tasks) await store.create(t);
      const commit = await store.commitFires(tasks.map((t) => ({ slot: t.slot, token: tokens.get(t.slot)!, task_id: t.id, expected: T0 + 1000, next: null, now: T0 + 1000, run: { run_id: fireId(t.id, T0 + 1000), node: 'n1', status: 'PENDING', error: null } })));
      expect(commit.every((r) => r === 'committed')).toBe(true);
      await store.updateRuns(tasks.map((t) => ({ run_id: fireId(t.id, T0 + 1000), task_id: t.id, status: 'SUCCESS' as const, attempts: 1, end_time: T0 + 1001 })));
      const mine = [...new Set(tasks.slice(0, 6).map((t) => t.slot))];
      const inMine = tasks.filter((t) => mine.includes(t.slot));
      const others = tasks.filter((t) => !mine.includes(t.slot));
      expect(others.length).toBeGreaterThan(0);
      // every run is older than the cutoff; only the given slots lose theirs
      expect(await store.pruneRuns(T0 + 10 * MIN, 0, mine)).toBe(inMine.length);
      for (const t of inMine) expect(await store.getRun(fireId(t.id, T0 + 1000))).toBeNull();
      for (const t of others) expect((await store.getRun(fireId(t.id, T0 + 1000)))!.status).toBe('SUCCESS');
      expect(await store.purgeCompleted(T0 + 10 * MIN, mine)).toBe(inMine.length);
      for (const t of inMine) expect(await store.get(t.id)).toBeNull();
      for (const t of others) expect((await store.get(t.id))!.state).toBe('completed');
      // no slots given: all of them
      expect(await store.purgeCompleted(T0 + 10 * MIN)).toBe(others.length);
    } finally {
      await store.close();
    }
  });

  it('a batch of more than 1,000 fires of one slot (sorted sets written in chunks) answers like SQLite', async () => {
    const tmp = tempDir('xcron-bigbatch-');
    const sqlite = new SqliteTaskStore({ file: join(tmp.dir, 'x.db'), synchronous: 'normal' });
    const sqliteToken = sqlite.claimEpoch();
    const client = await connect(single.url);
    const prefix = uniquePrefix('bigbatch');
    const redis = new RedisTaskStore({ client, prefix, slots: 1, log: silentLog });
    try {
      const tokens = await acquireAll(client, prefix, 1, 'n1');
      const stores: [TaskStore, number][] = [
        [sqlite, sqliteToken],
        [redis, tokens.get(0)!],
      ];
      const both = async <T>(what: string, op: (s: TaskStore, token: number) => Promise<T>): Promise<T> => {
        const [a, b] = await Promise.all(stores.map(([st, tok]) => op(st, tok)));
        expect(b, what).toEqual(a);
        return a as T;
      };
      // 1,500 one-shots (1,200 sent, 300 skipped by policy) and 900 periodic tasks, all in slot 0
      const at = T0 + 1000;
      const once = Array.from({ length: 1500 }, (_, i) => oneShot(`Big-${String(i).padStart(4, '0')}`, at, T0, { slots: 1 }));
      const periodic = Array.from({ length: 900 }, (_, i) => makeTask({ id: `BigP-${String(i).padStart(4, '0')}`, next_fire_time: at, slots: 1 }));
      const tasks = [...once, ...periodic];
      for (const [st] of stores) for (const t of tasks) await st.create(t);
      const fires = (token: number): FireRequest[] =>
        tasks.map((t, i) => {
          const status = i < 1200 || i >= 1500 ? ('PENDING' as const) : ('SKIPPED' as const);
          return { slot: 0, token, task_id: t.id, expected: at, next: t.type === 2 ? null : at + MIN, now: at + 2, run: { run_id: fireId(t.id, at), node: 'n1', status, error: status === 'PENDING' ? null : 'skipped by policy' } };
        });
      const res = await both('commitFires (one call, one slot)', (st, tok) => st.commitFires(fires(tok)));
      expect(res.every((r) => r === 'committed')).toBe(true);
      expect(await both('commitFires again: every tick moved on', async (st, tok) => (await st.commitFires(fires(tok))).filter((r) => r !== 'conflict').length)).toBe(0);
      await both('stats', (st) => st.stats());
      expect((await redis.stats()).tasks).toMatchObject({ completed: 1500, active: 900 });
      const due = await both('dueTasks', async (st) => (await st.dueTasks({ slots: null, after: null, upTo: at + MIN, limit: 5000 })).map((t) => [t.id, t.next_fire_time]));
      expect(due).toHaveLength(900);
      const open = await both('unfinishedRuns', async (st) => (await st.unfinishedRuns({ slots: null, after: null, limit: 5000 })).map((p) => p.run.run_id).sort());
      expect(open).toHaveLength(2100);
      // the outcomes of all 2,100 open runs in one call: two thirds SUCCESS, a third FAIL
      await both('updateRuns (one call, one slot)', (st) =>
        st.updateRuns(open.map((id, i) => ({ run_id: id, task_id: id.slice(0, id.lastIndexOf(':')), status: i % 3 === 0 ? ('FAIL' as const) : ('SUCCESS' as const), attempts: 1, start_time: at + 5, end_time: at + 9, http_status: i % 3 === 0 ? 500 : 200 }))),
      );
      expect(await both('unfinishedRuns after', (st) => st.unfinishedRuns({ slots: null, after: null, limit: 5000 }))).toEqual([]);
      await both('stats after', (st) => st.stats());
      expect((await redis.stats()).runs).toMatchObject({ SUCCESS: 1400, FAIL: 700, SKIPPED: 300 });
      const q = { status: 'FAIL' as const, from: null, to: null, task_id: null, namePrefix: null, replayed: null, before: null, limit: 5000 };
      expect(await both('queryRuns FAIL', async (st) => (await st.queryRuns(q)).length)).toBe(700);
      expect(await both('queryRuns all', async (st) => (await st.queryRuns({ ...q, status: null })).length)).toBe(2400);
      await both('listTasks last_status', async (st) => (await st.get('BigP-0000'))?.last_status);
      await both('reportDays', (st) => st.reportDays(Math.floor(at / 86_400_000), Math.floor(at / 86_400_000)));
    } finally {
      await redis.close();
      await sqlite.close();
      tmp.remove();
    }
  });

  it('concurrent creates with one idempotency key make one task', async () => {
    const client = await connect(single.url);
    const store = new RedisTaskStore({ client, prefix: uniquePrefix('idem'), slots: SLOTS, log: silentLog });
    try {
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => store.create(makeTask({ id: `idem-${i}`, body: { idempotency_key: 'same' } }))));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.task.id)).size).toBe(1);
      expect((await store.stats()).tasks.active).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('Redis gone: operations reject with StoreUnavailableError, ping is false; they work again when it is back', async () => {
    const r = await RedisServer.start({ appendonly: true });
    const client = await connect(r.url, { timeoutMs: 1000 });
    const store = new RedisTaskStore({ client, prefix: uniquePrefix('down'), slots: 16, log: silentLog });
    try {
      const t = makeTask({ id: 'survivor', slots: 16 });
      expect((await store.create(t)).created).toBe(true);
      await r.kill();
      await expect(store.get('survivor')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.create(makeTask({ id: 'lost', slots: 16 }))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.commitFires([{ slot: t.slot, token: 1, task_id: t.id, expected: 1, next: 2, now: 1, run: { run_id: 'survivor:1', node: 'n', status: 'PENDING', error: null } }])).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await store.ping()).toBe(false);
      await r.restart();
      for (let i = 0; i < 200 && !(await store.ping()); i++) await new Promise((res) => setTimeout(res, 50));
      expect(await store.ping()).toBe(true);
      expect(await store.get('survivor')).toEqual(t); // acknowledged before the crash: kept (AOF, fsync always)
    } finally {
      await store.close();
      await r.destroy();
    }
  });

  it('close() twice returns the same promise; a closed store rejects with StoreUnavailableError', async () => {
    const client = await connect(single.url);
    const store = new RedisTaskStore({ client, prefix: uniquePrefix('close'), slots: 4, log: silentLog });
    const a = store.close();
    expect(store.close()).toBe(a);
    await a;
    await expect(store.get('x')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.ping()).toBe(false);
  });

  it('child graph of a store written before the graph existed: the first check adds every stored task`s children', async () => {
    const client = await connect(single.url);
    const prefix = uniquePrefix('graphbuild');
    const keys = new RedisKeys(prefix);
    const store = new RedisTaskStore({ client, prefix, slots: 16, log: silentLog });
    try {
      await store.create(makeTask({ id: 'old-b', slots: 16 }));
      await store.create(makeTask({ id: 'old-a', slots: 16, body: { on_success: ['old-b'] } }));
      await client.del(keys.childGraph()); // as a version without the graph left it
      const cur = (await store.get('old-b'))!;
      const guard = { state: cur.state, next_fire_time: cur.next_fire_time };
      expect(await store.updateTask('old-b', { on_success: ['old-a'], update_time: T0 + 1 }, guard)).toEqual({ refused: 'cycle', path: ['old-b', 'old-a', 'old-b'] });
      expect(await client.hget(keys.childGraph(), '#built')).toBe('1');
    } finally {
      await store.close();
    }
  });
});
