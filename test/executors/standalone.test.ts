/**
 * The executor registry against the real built server (SQLite), with real HTTP receivers as the
 * executor instances: register, heartbeat, expiry, unregister and their refusals; tasks with
 * `callback.executor` routed by first, last, lru, lfu, busy_over, round_robin and broadcast; a group
 * with no live instance (retried, then FAIL and the alert); the executor token role.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gate, header, Receiver, type ReceivedRequest } from '../helpers/receiver.js';
import { XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { executors, finalRun, groupTask, post, register, triggerAndWait } from './common.js';

let rx: Receiver;
beforeAll(async () => {
  ensureBuilt();
  rx = await Receiver.start();
}, 600_000);
afterEach(async (ctx) => {
  const servers = takeStarted();
  if (ctx.task.result?.state === 'fail') for (const s of servers) console.log(s.tail(60));
  await stopAllServers();
});
afterAll(async () => {
  await rx.close();
  cleanupTempDirs();
});

const paths = (reqs: readonly ReceivedRequest[]): string[] => reqs.map((r) => r.path);
const toTask = (id: string): ReceivedRequest[] => rx.forTask(id);

describe('executor registry (standalone)', () => {
  it('registers, heartbeats, lists with live flags, expires by ttl and unregisters; bad input gets specific codes', async () => {
    const srv = await XcronServer.start();
    const a = rx.url('/reg/a');
    const first = await register(srv, 'billing', a, 1_000, { version: '1.0' });
    expect(first.status).toBe(200);
    expect(first.body.data).toMatchObject({ created: true });
    const beat = await register(srv, 'billing', a, 1_000, { version: '1.1' });
    expect(beat.body.data).toMatchObject({ created: false, registered_at: first.body.data.registered_at });
    await register(srv, 'billing', rx.url('/reg/b'), 60_000);
    const listed = (await executors(srv)).body.data;
    expect(listed.groups).toHaveLength(1);
    expect(listed.groups[0]).toMatchObject({ group: 'billing', live: 2 });
    expect(listed.groups[0]!.instances.map((i) => [i.address, i.live, i.meta])).toEqual([
      [a, true, { version: '1.1' }],
      [rx.url('/reg/b'), true, null],
    ]);
    // a misses its ttl: it stays listed, not live
    const later = await waitUntil(() => executors(srv), (r) => r.body.data.groups[0]?.live === 1, 10_000, 'a to expire');
    expect(later.body.data.groups[0]!.instances.find((i) => i.address === a)!.live).toBe(false);

    expect((await post(srv, '/xcron/unregisterExecutor', { group: 'billing', address: rx.url('/reg/b') })).body.data).toEqual({ group: 'billing', address: rx.url('/reg/b'), removed: true });
    const again = await post(srv, '/xcron/unregisterExecutor', { group: 'billing', address: rx.url('/reg/b') });
    expect([again.status, again.body.code]).toEqual([404, 1027]);
    expect((await executors(srv)).body.data.groups[0]!.instances.map((i) => i.address)).toEqual([a]);

    const refusals: [unknown, number, number, string][] = [
      [{ group: 'bad group!', address: a, ttl_ms: 5000 }, 400, 1025, "'group'"],
      [{ group: 'g', address: 'ftp://x.test/', ttl_ms: 5000 }, 400, 1026, "'address'"],
      [{ group: 'g', address: 'http://u:p@x.test/', ttl_ms: 5000 }, 400, 1026, 'credentials'],
      [{ group: 'g', address: a, ttl_ms: 10 }, 400, 1009, "'ttl_ms'"],
      [{ group: 'g', address: a }, 400, 1000, "'ttl_ms' is required"],
      [{ group: 'g', address: a, ttl_ms: 5000, meta: { big: 'x'.repeat(5000) } }, 413, 1008, "'meta'"],
      [{ group: 'g', address: a, ttl_ms: 5000, extra: 1 }, 400, 1000, "unknown field 'extra'"],
    ];
    for (const [body, status, code, text] of refusals) {
      const r = await post(srv, '/xcron/registerExecutor', body);
      expect([r.status, r.body.code], JSON.stringify(body)).toEqual([status, code]);
      expect(r.body.message).toContain(text);
    }
    const badTask = await srv.client.createTask(groupTask('no spaces allowed'));
    expect([badTask.status, badTask.body.code]).toEqual([400, 1025]);
    const both = await srv.client.createTask({ ...groupTask('g'), callback: { executor: 'g', url: a } });
    expect([both.status, both.body.code]).toEqual([400, 1009]);
    const urlsLru = await srv.client.createTask({ type: 1, format: '0 0 1 1 *', callback: { urls: [a, a], route: 'lru' } });
    expect([urlsLru.status, urlsLru.body.code]).toEqual([400, 1009]);
  });

  it('routes by first, last, lru, lfu and round_robin among the live instances; broadcast sends one shard to each', async () => {
    const srv = await XcronServer.start();
    const inst = ['/w/1', '/w/2', '/w/3'].map((p) => rx.url(p));
    for (const u of inst) expect((await register(srv, 'workers', u)).status).toBe(200);
    const create = async (route: string): Promise<string> => (await srv.client.mustCreate(groupTask('workers', route))).task_id;

    const q = await srv.client.mustQuery(await create('lru'));
    expect(q.callback).toMatchObject({ executor: 'workers', route: 'lru' });
    expect(q.callback).not.toHaveProperty('url');

    const runN = async (route: string, n: number): Promise<string[]> => {
      const id = await create(route);
      for (let i = 0; i < n; i++) expect((await triggerAndWait(srv, id)).status).toBe('SUCCESS');
      return paths(toTask(id));
    };
    expect(await runN('first', 2)).toEqual(['/w/1', '/w/1']);
    expect(await runN('last', 2)).toEqual(['/w/3', '/w/3']);
    expect(await runN('lru', 6)).toEqual(['/w/1', '/w/2', '/w/3', '/w/1', '/w/2', '/w/3']);
    expect(await runN('round_robin', 3)).toEqual(['/w/1', '/w/2', '/w/3']);
    // lfu: each used once, then a fourth instance joins and is the least used
    const lfu = await create('lfu');
    for (let i = 0; i < 3; i++) await triggerAndWait(srv, lfu);
    await register(srv, 'workers', rx.url('/w/0'));
    await new Promise((r) => setTimeout(r, 600)); // past the node's live-list cache (LIVE_CACHE_MS = 500)
    await triggerAndWait(srv, lfu);
    expect(paths(toTask(lfu)).sort()).toEqual(['/w/0', '/w/1', '/w/2', '/w/3']);
    expect(paths(toTask(lfu))[3]).toBe('/w/0');

    const bc = await create('broadcast');
    const run = await triggerAndWait(srv, bc);
    expect(run.status).toBe('SUCCESS');
    const got = toTask(bc);
    expect(got.map((r) => r.path).sort()).toEqual(['/w/0', '/w/1', '/w/2', '/w/3']);
    expect(got.map((r) => header(r, 'x-xcron-shard-total'))).toEqual(['4', '4', '4', '4']);
    expect(got.map((r) => Number(header(r, 'x-xcron-shard-index'))).sort()).toEqual([0, 1, 2, 3]);
    expect(run.shards?.map((s) => s.url).sort()).toEqual(['/w/0', '/w/1', '/w/2', '/w/3'].map((p) => rx.url(p)).sort());
  });

  it('busy_over skips the instance with a run of this task in flight and moves to the next', async () => {
    const srv = await XcronServer.start();
    const g = gate();
    rx.on('/busy/1', (_req, nth) => (nth === 1 ? { hold: g.promise } : {}));
    for (const p of ['/busy/1', '/busy/2']) await register(srv, 'busy', rx.url(p));
    const id = (await srv.client.mustCreate(groupTask('busy', 'busy_over', { overlap: 'allow' }))).task_id;
    const t1 = await post<{ run_id: string }>(srv, '/xcron/triggerTask', { task_id: id });
    await waitUntil(() => toTask(id).length, (n) => n === 1, 20_000, 'the first run held at /busy/1');
    await new Promise((r) => setTimeout(r, 5)); // a distinct manual fire id
    const second = await triggerAndWait(srv, id);
    expect(second.status).toBe('SUCCESS');
    expect(paths(toTask(id))).toEqual(['/busy/1', '/busy/2']);
    g.open();
    expect((await finalRun(srv, id, t1.body.data.run_id)).status).toBe('SUCCESS');
    // nothing in flight now: back to the first
    await triggerAndWait(srv, id);
    expect(paths(toTask(id))).toEqual(['/busy/1', '/busy/2', '/busy/1']);
  });

  it('a group with no live instance: each attempt fails clearly, retried by the policy, then FAIL and the alert', async () => {
    const alerts = rx.url('/alerts');
    const srv = await XcronServer.start({ env: { XCRON_ALERT_WEBHOOK_URL: alerts } });
    await register(srv, 'ghost', rx.url('/ghost/1'), 1_000);
    await waitUntil(() => executors(srv), (r) => r.body.data.groups[0]?.live === 0, 10_000, 'the only instance to expire');
    const id = (await srv.client.mustCreate(groupTask('ghost', 'lru', { retry: { max_attempts: 3, backoff_ms: 100, max_backoff_ms: 200 } }))).task_id;
    const run = await triggerAndWait(srv, id);
    expect(run).toMatchObject({ status: 'FAIL', attempts: 3, error: 'no live executor in group "ghost"' });
    expect(toTask(id)).toHaveLength(0);
    const alert = await waitUntil(() => rx.to('/alerts'), (a) => a.some((x) => x.body.includes(id)), 20_000, 'the failure alert');
    expect(alert.find((x) => x.body.includes(id))!.body).toContain('no live executor in group');

    // An executor registering while the fire is being retried receives it.
    const id2 = (await srv.client.mustCreate(groupTask('late', 'first', { retry: { max_attempts: 30, backoff_ms: 200, max_backoff_ms: 300 } }))).task_id;
    const t = await post<{ run_id: string }>(srv, '/xcron/triggerTask', { task_id: id2 });
    await waitUntil(async () => (await srv.client.call<{ runs: { attempts: number }[] }>('GET', `/xcron/taskRuns?task_id=${id2}`)).body.data.runs[0]?.attempts ?? 0, (n) => n >= 2, 20_000, 'a retry');
    await register(srv, 'late', rx.url('/late/1'));
    const done = await finalRun(srv, id2, t.body.data.run_id);
    expect(done.status).toBe('SUCCESS');
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    expect(paths(toTask(id2))).toEqual(['/late/1']);
  });

  it('with API tokens: an executor token may register and unregister only; admin may too; read may list', async () => {
    const tokens = [
      { token: 'admin-token-0123456789', role: 'admin' },
      { token: 'read-token-0123456789ab', role: 'read' },
      { token: 'exec-token-0123456789ab', role: 'executor', name: 'workers' },
    ];
    const srv = await XcronServer.start({ env: { XCRON_AUTH_TOKENS: JSON.stringify(tokens) }, devCallbacks: false });
    const [admin, read, exec] = tokens.map((t) => t.token) as [string, string, string];
    const addr = 'http://203.0.113.7:8080/run';
    expect((await register(srv, 'g', addr, 5000, undefined, exec)).status).toBe(200);
    expect((await register(srv, 'g', 'http://203.0.113.8:8080/run', 5000, undefined, admin)).status).toBe(200);
    const byRead = await register(srv, 'g', addr, 5000, undefined, read);
    expect([byRead.status, byRead.body.code]).toEqual([403, 1010]);
    expect(byRead.body.message).toContain("role 'executor' or 'admin'");
    const none = await register(srv, 'g', addr, 5000);
    expect([none.status, none.body.code]).toEqual([401, 1010]);
    // the executor token can do nothing else
    const create = await srv.client.call('POST', '/xcron/createTask', { json: groupTask('g'), headers: { authorization: `Bearer ${exec}` } });
    expect([create.status, create.body.code]).toEqual([403, 1010]);
    const list = await executors(srv, exec);
    expect([list.status, list.body.code]).toEqual([403, 1010]);
    expect((await executors(srv, read)).body.data.groups[0]!.live).toBe(2);
    // the destination policy applies to addresses as to callbacks (loopback refused by default)
    const loop = await register(srv, 'g', 'http://127.0.0.1:9/run', 5000, undefined, exec);
    expect([loop.status, loop.body.code]).toEqual([400, 1011]);
    expect((await post(srv, '/xcron/unregisterExecutor', { group: 'g', address: addr }, exec)).status).toBe(200);
  });
});
