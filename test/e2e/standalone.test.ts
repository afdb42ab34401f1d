/**
 * End-to-end against the real built server (./xcron_server as a child process), a real HTTP
 * receiver and real SQLite files in temp dirs. Every wait is on an event (a request reaching the
 * receiver, a log line, a process exit) or on HTTP polling until a condition holds, with generous
 * timeouts; nothing asserts on elapsed time.
 */
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { countRows, runById, runsOf, storedState } from '../helpers/db.js';
import type { TaskView } from '../helpers/http.js';
import { malformedCases } from '../helpers/malformed.js';
import { gate, header, type ReceivedRequest } from '../helpers/receiver.js';
import { REPO_ROOT, XcronServer, runToExit, tempDir } from '../helpers/server.js';
import { receiverPerTest } from '../helpers/suites.js';
import { delay, waitUntil } from '../helpers/wait.js';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const WAIT = 30_000;

const fireIdOf = (r: ReceivedRequest): string => header(r, 'x-xcron-fire-id') ?? '';
const taskOf = (r: ReceivedRequest): string => header(r, 'x-xcron-task-id') ?? '';
const distinct = (reqs: readonly ReceivedRequest[]): string[] => [...new Set(reqs.map(fireIdOf))];

const fx = receiverPerTest();

/** Polls queryTask until `pred` holds. */
function queryUntil(srv: XcronServer, id: string, pred: (v: TaskView) => boolean, what: string): Promise<TaskView> {
  return waitUntil(() => srv.client.mustQuery(id), pred, WAIT, `task ${id}: ${what}`);
}

/** Checks the headers every callback carries (API.md "The callback request"). */
function expectCallbackHeaders(r: ReceivedRequest, taskId: string): void {
  expect(header(r, 'content-type')).toBe('application/json');
  expect(header(r, 'user-agent')).toBe(`xcron/${VERSION}`);
  expect(header(r, 'x-xcron-task-id')).toBe(taskId);
  const sched = header(r, 'x-xcron-scheduled-time') ?? '';
  expect(sched).toMatch(/^\d{13}$/);
  expect(header(r, 'x-xcron-fire-id')).toBe(`${taskId}:${sched}`);
  expect(header(r, 'x-xcron-attempt')).toMatch(/^[1-9]\d*$/);
}

describe('standalone server end to end', () => {
  it('a one-shot task due ~1.5 s ahead fires exactly once with the exact body and headers', async () => {
    const srv = await XcronServer.start();
    expect((await srv.client.healthz()).body.data.version).toBe(VERSION);
    const body = { order: 42, text: 'héllo ✓', nested: { list: [1, 2, 3], ok: true, none: null } };
    const dueS = Math.ceil((Date.now() + 1500) / 1000);
    const created = await srv.client.mustCreate({ type: 2, format: String(dueS), callback: { url: fx.receiver.url('/oneshot'), body } });
    const id = created.task_id;
    expect(created.next_fire_time).toBe(dueS * 1000);

    const r = await fx.receiver.waitForRequest((q) => taskOf(q) === id, WAIT, `the callback of ${id}`);
    expect(r.method).toBe('POST');
    expect(r.path).toBe('/oneshot');
    expect(r.body).toBe(JSON.stringify(body));
    expect(JSON.parse(r.body)).toEqual(body);
    expectCallbackHeaders(r, id);
    expect(header(r, 'x-xcron-fire-id')).toBe(`${id}:${dueS * 1000}`);
    expect(header(r, 'x-xcron-scheduled-time')).toBe(String(dueS * 1000));
    expect(header(r, 'x-xcron-attempt')).toBe('1');
    expect(header(r, 'x-xcron-signature')).toBeUndefined(); // no signing secret configured
    expect(r.arrivedAt).toBeGreaterThanOrEqual(dueS * 1000); // never early

    const v = await queryUntil(srv, id, (t) => t.state === 'completed' && t.last_status === 'SUCCESS', 'completed with SUCCESS');
    expect(v.run_count).toBe(1);
    expect(v.last_fire_time).toBe(dueS * 1000);
    expect(v.next_fire_time).toBeNull();

    const runs = runsOf(srv.dbFile, id);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ run_id: `${id}:${dueS * 1000}`, status: 'SUCCESS', attempts: 1, http_status: 200 });

    // Behaviour check: nothing more arrives for this task during a quiet period.
    await delay(2000);
    expect(fx.receiver.forTask(id)).toHaveLength(1);
  });

  it('*/1 * * * * * fires every second, run_count follows, and nothing fires after deleteTask', async () => {
    const srv = await XcronServer.start();
    const { task_id: id } = await srv.client.mustCreate({ type: 1, format: '*/1 * * * * *', callback: { url: fx.receiver.url('/tick'), body: { tick: true } } });

    await fx.receiver.waitFor((all) => distinct(all.filter((q) => taskOf(q) === id)).length >= 3, WAIT, '3 ticks');
    const receivedBefore = distinct(fx.receiver.forTask(id)).length;
    const v = await srv.client.mustQuery(id);
    expect(v.state).toBe('active');
    expect(v.run_count).toBeGreaterThanOrEqual(receivedBefore);
    // Every fire counted by run_count is delivered.
    await fx.receiver.waitFor((all) => distinct(all.filter((q) => taskOf(q) === id)).length >= v.run_count, WAIT, `${v.run_count} ticks`);

    const reqs = fx.receiver.forTask(id);
    for (const r of reqs) {
      expectCallbackHeaders(r, id);
      expect(r.body).toBe('{"tick":true}');
    }
    const ticks = [...new Set(reqs.map((r) => Number(header(r, 'x-xcron-scheduled-time'))))].sort((a, b) => a - b);
    for (const t of ticks) expect(t % 1000).toBe(0);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!).toBe(1000);
    expect(v.last_fire_time).not.toBeNull();
    expect(ticks).toContain(v.last_fire_time);

    const del = await srv.client.deleteTask(id);
    expect(del.status).toBe(200);
    expect(del.body.code).toBe(0);
    const ackAt = Date.now();
    const atAck = new Set(distinct(fx.receiver.forTask(id)));

    // Behaviour check over a quiet period: at most one delivery that was already in flight.
    await delay(3000);
    const late = distinct(fx.receiver.forTask(id)).filter((f) => !atAck.has(f));
    expect(late.length).toBeLessThanOrEqual(1);
    for (const f of late) expect(Number(f.split(':').pop())).toBeLessThanOrEqual(ackAt);
    const q = await srv.client.queryTask(id);
    expect(q.status).toBe(404);
    expect(q.body.code).toBe(1007);
    expect(countRows(srv.dbFile)).toEqual({ tasks: 0, runs: 0 });
  });

  it('a receiver answering 500 twice then 200 gets retries with the same fire id and rising X-Xcron-Attempt', async () => {
    const srv = await XcronServer.start({ env: { XCRON_DELIVERY_BACKOFF_MS: '50', XCRON_DELIVERY_MAX_BACKOFF_MS: '200', XCRON_DELIVERY_MAX_ATTEMPTS: '5' } });
    fx.receiver.on('/flaky', (_req, nth) => (nth <= 2 ? { status: 500, body: '{"error":"boom"}' } : { status: 200 }));
    const due = Date.now() + 1500;
    const { task_id: id } = await srv.client.mustCreate({ type: 2, format: String(due), callback: { url: fx.receiver.url('/flaky'), body: { n: 1 } } });

    const all = await fx.receiver.waitFor((rs) => rs.filter((q) => taskOf(q) === id).length >= 3, WAIT, '3 attempts');
    const mine = all.filter((q) => taskOf(q) === id);
    expect(mine.map(fireIdOf)).toEqual([`${id}:${due}`, `${id}:${due}`, `${id}:${due}`]);
    expect(mine.map((q) => header(q, 'x-xcron-attempt'))).toEqual(['1', '2', '3']);
    for (const q of mine) {
      expectCallbackHeaders(q, id);
      expect(q.body).toBe('{"n":1}');
    }

    const v = await queryUntil(srv, id, (t) => t.last_status === 'SUCCESS', 'last_status SUCCESS');
    expect(v.state).toBe('completed');
    expect(v.run_count).toBe(1);
    expect(runById(srv.dbFile, `${id}:${due}`)).toMatchObject({ status: 'SUCCESS', attempts: 3, http_status: 200 });
    expect(fx.receiver.forTask(id)).toHaveLength(3);
  });

  it('final failures (404, a redirect) are not retried and not followed; Retry-After is honoured', async () => {
    const srv = await XcronServer.start({ env: { XCRON_DELIVERY_BACKOFF_MS: '50', XCRON_DELIVERY_MAX_BACKOFF_MS: '100', XCRON_DELIVERY_MAX_ATTEMPTS: '5' } });
    fx.receiver.on('/gone', { status: 404 });
    fx.receiver.on('/moved', { status: 302, headers: { location: fx.receiver.url('/target') } });
    fx.receiver.on('/busy', (_req, nth) => (nth === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 }));
    const due = Date.now() + 1500;
    const mk = async (path: string): Promise<string> => (await srv.client.mustCreate({ type: 2, format: String(due), callback: { url: fx.receiver.url(path) } })).task_id;
    const gone = await mk('/gone');
    const moved = await mk('/moved');
    const busy = await mk('/busy');

    for (const [id, status] of [
      [gone, 404],
      [moved, 302],
    ] as const) {
      const v = await queryUntil(srv, id, (t) => t.last_status === 'FAIL', 'last_status FAIL');
      expect(v).toMatchObject({ state: 'completed', run_count: 1 });
      expect(runById(srv.dbFile, `${id}:${due}`)).toMatchObject({ status: 'FAIL', attempts: 1, http_status: status });
      expect(fx.receiver.forTask(id)).toHaveLength(1);
    }
    expect(fx.receiver.to('/target')).toHaveLength(0);

    await queryUntil(srv, busy, (t) => t.last_status === 'SUCCESS', 'last_status SUCCESS after a 503 with Retry-After');
    const tries = fx.receiver.forTask(busy);
    expect(tries.map((q) => header(q, 'x-xcron-attempt'))).toEqual(['1', '2']);
    expect(distinct(tries)).toEqual([`${busy}:${due}`]);
    // The retry waited for Retry-After (1 s), not for the 50-100 ms backoff.
    expect(tries[1]!.arrivedAt - tries[0]!.arrivedAt).toBeGreaterThanOrEqual(900);
  });

  it('signs callbacks when a signing secret is configured (t=<s>,v1=HMAC-SHA256 of "t.body")', async () => {
    const secret = 'e2e-signing-secret-0123456789';
    const srv = await XcronServer.start({ env: { XCRON_CALLBACK_SIGNING_SECRETS: secret } });
    const body = { amount: 12.5, currency: 'EUR' };
    const { task_id: id } = await srv.client.mustCreate({ type: 2, format: String(Date.now() + 1200), callback: { url: fx.receiver.url('/signed'), body } });
    const r = await fx.receiver.waitForRequest((q) => taskOf(q) === id, WAIT, 'the signed callback');
    const sig = header(r, 'x-xcron-signature') ?? '';
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
    expect(m, sig).not.toBeNull();
    const expected = createHmac('sha256', secret).update(`${m![1]}.${r.body}`).digest('hex');
    expect(m![2]).toBe(expected);
    expect(JSON.parse(r.body)).toEqual(body);
  });

  it('kill -9 loses nothing: every one-shot fires after restart, ticks are never fired twice, the periodic task resumes', async () => {
    const srv = await XcronServer.start();
    const first = Date.now() + 1500;
    const oneShots = new Map<string, number>(); // task id -> due ms
    for (let i = 0; i < 50; i++) {
      const due = first + i * 80;
      const { task_id } = await srv.client.mustCreate({ type: 2, format: String(due), callback: { url: fx.receiver.url('/batch'), body: { i } } });
      oneShots.set(task_id, due);
    }
    const lastDue = Math.max(...oneShots.values());
    const { task_id: periodic } = await srv.client.mustCreate({ type: 1, format: '*/1 * * * * *', callback: { url: fx.receiver.url('/beat'), body: {} } });

    const firedOneShots = (): Set<string> => new Set(fx.receiver.requests.map(taskOf).filter((t) => oneShots.has(t)));
    await fx.receiver.waitFor(() => firedOneShots().size >= 10, WAIT, '10 one-shot callbacks before the kill');
    srv.kill('SIGKILL');
    const exit = await srv.waitExit();
    expect(exit.signal).toBe('SIGKILL');
    const missingAtKill = [...oneShots.keys()].filter((t) => !firedOneShots().has(t));
    expect(missingAtKill.length).toBeGreaterThan(0); // otherwise the restart would prove nothing

    // Let every remaining due time pass while no server runs.
    await waitUntil(() => Date.now(), (t) => t > lastDue + 500, WAIT, 'the last one-shot due time to pass', 50);
    const restartedAt = Date.now();
    const srv2 = await srv.restart();

    await fx.receiver.waitFor(() => firedOneShots().size === oneShots.size, WAIT, `all ${oneShots.size} one-shot callbacks`);
    for (const [id, due] of oneShots) {
      const reqs = fx.receiver.forTask(id);
      expect(reqs.length).toBeGreaterThanOrEqual(1);
      // At-least-once allows repeats, but only of the same fire id.
      expect(distinct(reqs)).toEqual([`${id}:${due}`]);
      for (const r of reqs) expect(JSON.parse(r.body)).toHaveProperty('i');
    }

    await waitUntil(
      async () => Promise.all([...oneShots.keys()].map((id) => srv2.client.mustQuery(id))),
      (views) => views.every((v) => v.state === 'completed' && v.last_status === 'SUCCESS'),
      WAIT,
      'every one-shot task completed with SUCCESS',
      200,
    );
    for (const id of oneShots.keys()) {
      const v = await srv2.client.mustQuery(id);
      expect(v.run_count, id).toBe(1);
    }

    await fx.receiver.waitForRequest((r) => taskOf(r) === periodic && r.arrivedAt > restartedAt, WAIT, 'a periodic tick after the restart');
    const beats = fx.receiver.forTask(periodic);
    const bySchedule = new Map<string, Set<string>>();
    for (const r of beats) {
      expectCallbackHeaders(r, periodic);
      const s = header(r, 'x-xcron-scheduled-time')!;
      bySchedule.set(s, (bySchedule.get(s) ?? new Set()).add(fireIdOf(r)));
    }
    for (const [s, ids] of bySchedule) expect([...ids], `tick ${s}`).toEqual([`${periodic}:${s}`]);
    // Every delivered fire was committed exactly once as a run record.
    const runIds = new Set(runsOf(srv2.dbFile, periodic).map((r) => r.run_id));
    for (const f of distinct(beats)) expect(runIds.has(f), f).toBe(true);
  });

  it('a run left RUNNING by kill -9 is redelivered after restart with the same fire id', async () => {
    fx.receiver.on('/hang', { hang: true });
    const srv = await XcronServer.start({ env: { XCRON_DELIVERY_TIMEOUT_MS: '120000' } });
    const due = Date.now() + 1500;
    const { task_id: id } = await srv.client.mustCreate({ type: 2, format: String(due), callback: { url: fx.receiver.url('/hang'), body: { x: 1 } } });
    const fire = `${id}:${due}`;

    const firstReq = await fx.receiver.waitForRequest((r) => fireIdOf(r) === fire, WAIT, 'the first (hanging) delivery');
    expect(header(firstReq, 'x-xcron-attempt')).toBe('1');
    // The attempt is recorded before the kill (the outbox row says RUNNING, attempt 1).
    await waitUntil(() => runById(srv.dbFile, fire), (r) => r?.status === 'RUNNING' && r.attempts === 1, WAIT, 'the run recorded RUNNING');

    srv.kill('SIGKILL');
    await srv.waitExit();
    fx.receiver.on('/hang', { status: 200 });
    const srv2 = await srv.restart();

    const again = await fx.receiver.waitForRequest((r) => fireIdOf(r) === fire && r.seq > firstReq.seq, WAIT, 'the redelivery');
    expectCallbackHeaders(again, id);
    expect(header(again, 'x-xcron-attempt')).toBe('2');
    expect(again.body).toBe('{"x":1}');

    const v = await queryUntil(srv2, id, (t) => t.last_status === 'SUCCESS', 'last_status SUCCESS');
    expect(v.state).toBe('completed');
    expect(v.run_count).toBe(1);
    expect(runById(srv2.dbFile, fire)).toMatchObject({ status: 'SUCCESS', attempts: 2, http_status: 200 });
    expect(distinct(fx.receiver.forTask(id))).toEqual([fire]);
  });

  it('a second process on the same data dir fences the first: ticks keep coming, none lost, none committed twice', async () => {
    const a = await XcronServer.start();
    const { task_id: id } = await a.client.mustCreate({ type: 1, format: '*/1 * * * * *', callback: { url: fx.receiver.url('/fence') } });
    const ticksOf = (): number[] => [...new Set(fx.receiver.forTask(id).map((r) => Number(header(r, 'x-xcron-scheduled-time'))))].sort((x, y) => x - y);
    await fx.receiver.waitFor(() => ticksOf().length >= 2, WAIT, '2 ticks from the first process');

    const b = await XcronServer.start({ cwd: a.opts.cwd, dataDir: a.opts.dataDir });
    const bUp = Date.now();
    await a.waitForLog((l) => /fencing token refused/.test(String(l.msg)), WAIT, 'the first process to be fenced');
    await fx.receiver.waitFor(() => ticksOf().filter((t) => t > bUp).length >= 3, WAIT, '3 ticks after the second process started');
    expect(a.running).toBe(true);

    const ticks = ticksOf();
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!, `gap after tick ${ticks[i - 1]}`).toBe(1000);
    const runs = runsOf(b.dbFile, id);
    const bNode = `e2e-${b.opts.port}`;
    // Every tick is one run record; after the handover only the new process commits. A tick is
    // committed up to commit_ahead_ms (1 s by default) before it is due, so the first process may
    // have committed the ticks of the second after bUp before the second process started.
    expect(new Set(runs.map((r) => r.scheduled_time)).size).toBe(runs.length);
    for (const r of runs.filter((x) => x.scheduled_time > bUp + 1000)) expect(r.node, r.run_id).toBe(bNode);
    for (const f of distinct(fx.receiver.forTask(id))) expect(runs.some((r) => r.run_id === f), f).toBe(true);
  });

  it('a fire committed ahead of its due time is undone by a pause, an update or a delete before that time', async () => {
    // A wide commit-ahead window (5 s), so the changes below surely land between commit and due time.
    const srv = await XcronServer.start({ env: { XCRON_SCHEDULER_COMMIT_AHEAD_MS: '5000' } });
    const due = Date.now() + 7000;
    const mk = async (path: string, at = due): Promise<string> => (await srv.client.mustCreate({ type: 2, format: String(at), callback: { url: fx.receiver.url(path) } })).task_id;
    const paused = await mk('/ahead-paused');
    const moved = await mk('/ahead-moved');
    const deleted = await mk('/ahead-deleted');
    const control = await mk('/ahead-control');
    const later = await mk('/ahead-later', due + 500);
    // Wait until all five are committed ahead: each has its PENDING run while the time is not yet due.
    await waitUntil(
      () => Promise.resolve([paused, moved, deleted, control, later].map((id) => runsOf(srv.dbFile, id).length)),
      (n) => n.every((x) => x === 1),
      WAIT,
      'the fires to be committed ahead',
    );
    // Stored as fired (a one-shot completes when its fire is committed), shown as not fired yet.
    expect(storedState(srv.dbFile, paused)).toBe('completed');
    expect(await srv.client.mustQuery(paused)).toMatchObject({ state: 'active', next_fire_time: due, run_count: 0, last_fire_time: null });
    const listed = await srv.client.call<{ tasks: TaskView[] }>('GET', '/xcron/listTasks?limit=1000');
    expect(listed.body.data.tasks.find((t) => t.task_id === paused)).toMatchObject({ state: 'active', next_fire_time: due, run_count: 0 });
    // listTasks' state filter reads the stored state: while held, the task is in neither page
    const done = await srv.client.call<{ tasks: TaskView[] }>('GET', '/xcron/listTasks?state=completed&limit=1000');
    expect(done.body.data.tasks.map((t) => t.task_id)).not.toContain(paused);

    const pz = await srv.client.call<{ state: string }>('POST', '/xcron/pauseTask', { json: { task_id: paused } });
    expect(pz.body).toMatchObject({ code: 0, data: { state: 'paused' } });
    const up = await srv.client.call<{ next_fire_time: number }>('POST', '/xcron/updateTask', { json: { task_id: moved, format: String(due + 3_600_000) } });
    expect(up.body).toMatchObject({ code: 0, data: { next_fire_time: due + 3_600_000 } });
    expect((await srv.client.deleteTask(deleted)).body.code).toBe(0);

    // The untouched tasks fire at their time; by then the changed ones would have too.
    await fx.receiver.waitFor(() => fx.receiver.forTask(control).length === 1 && fx.receiver.forTask(later).length === 1, WAIT, 'the untouched tasks');
    expect(fx.receiver.forTask(paused)).toEqual([]);
    expect(fx.receiver.forTask(moved)).toEqual([]);
    expect(fx.receiver.forTask(deleted)).toEqual([]);
    expect(await srv.client.mustQuery(paused)).toMatchObject({ state: 'paused', next_fire_time: due, run_count: 0, last_fire_time: null });
    expect(await srv.client.mustQuery(moved)).toMatchObject({ state: 'active', next_fire_time: due + 3_600_000, run_count: 0 });
    expect(runsOf(srv.dbFile, paused)).toEqual([]);
    expect(runsOf(srv.dbFile, moved)).toEqual([]);
    expect(runById(srv.dbFile, `${control}:${due}`)).toMatchObject({ status: 'SUCCESS' });

    // Resumed after its time: a one-shot then fires at once, exactly once, with the original fire id.
    const rs = await srv.client.call('POST', '/xcron/resumeTask', { json: { task_id: paused } });
    expect(rs.body).toMatchObject({ code: 0 });
    const r = await fx.receiver.waitForRequest((q) => taskOf(q) === paused, WAIT, 'the resumed task');
    expect(fireIdOf(r)).toBe(`${paused}:${due}`);
    await queryUntil(srv, paused, (v) => v.last_status === 'SUCCESS', 'the resumed run to succeed');
    expect(distinct(fx.receiver.forTask(paused))).toEqual([`${paused}:${due}`]);
  });

  it('SIGTERM stops accepting requests, lets the in-flight delivery finish, exits 0, and the run is SUCCESS', async () => {
    const release = gate();
    fx.receiver.on('/slow', { hold: release.promise, delayMs: 1000 });
    const srv = await XcronServer.start({ env: { XCRON_SHUTDOWN_TIMEOUT_MS: '60000', XCRON_DELIVERY_TIMEOUT_MS: '120000' } });
    const due = Date.now() + 1500;
    const { task_id: id } = await srv.client.mustCreate({ type: 2, format: String(due), callback: { url: fx.receiver.url('/slow') } });
    const fire = `${id}:${due}`;
    await fx.receiver.waitForRequest((r) => fireIdOf(r) === fire, WAIT, 'the delivery to the slow receiver');

    srv.kill('SIGTERM');
    await srv.waitForLog((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM', WAIT, 'the shutdown log line');
    // No new requests: the listener is closed (connections are refused) ...
    await waitUntil(
      async () => {
        try {
          await srv.client.healthz();
          return false;
        } catch {
          return true;
        }
      },
      (refused) => refused,
      WAIT,
      'new connections to be refused',
      50,
    );
    // ... while the process stays up for the delivery it is still waiting on.
    expect(srv.running).toBe(true);
    await expect(srv.client.createTask({ type: 2, format: String(Date.now() + 60_000), callback: { url: fx.receiver.url('/slow') } })).rejects.toThrow();

    release.open(); // the receiver answers 200 about a second later
    const exit = await srv.waitExit(WAIT);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(srv.lines.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    expect(runById(srv.dbFile, fire)).toMatchObject({ status: 'SUCCESS', attempts: 1, http_status: 200 });

    const srv2 = await srv.restart();
    const v = await srv2.client.mustQuery(id);
    expect(v).toMatchObject({ state: 'completed', run_count: 1, last_status: 'SUCCESS' });
    expect(countRows(srv2.dbFile).tasks).toBe(1);
  });

  it('refuses to start on an unknown config key or a bad env value, naming the key', async () => {
    const dir = tempDir();
    const data = join(dir, 'data');

    const top = join(dir, 'unknown_top.toml');
    writeFileSync(top, 'http_port = 0\nbogus_key = 1\n');
    const a = await runToExit(['--config', top], { XCRON_DATA_DIR: data }, dir);
    expect(a.signal).toBeNull();
    expect(a.code).not.toBe(0);
    expect(a.stderr).toContain('bogus_key');

    const section = join(dir, 'unknown_section_key.toml');
    writeFileSync(section, 'http_port = 0\n[delivery]\nretries = 3\n');
    const b = await runToExit(['--config', section], { XCRON_DATA_DIR: data }, dir);
    expect(b.code).not.toBe(0);
    expect(b.signal).toBeNull();
    expect(b.stderr).toContain('delivery.retries');

    const c = await runToExit([], { XCRON_HTTP_PORT: 'abc', XCRON_DATA_DIR: data }, dir);
    expect(c.code).not.toBe(0);
    expect(c.signal).toBeNull();
    expect(c.stderr).toContain('XCRON_HTTP_PORT');
    expect(c.stderr).toContain('abc');

    const d = await runToExit([], { XCRON_HTTP_PORT: '70000', XCRON_DATA_DIR: data }, dir);
    expect(d.code).not.toBe(0);
    expect(d.signal).toBeNull();
    expect(d.stderr).toContain('http_port');

    const e = await runToExit([], { XCRON_NO_SUCH_SETTING: '1', XCRON_HTTP_PORT: '0', XCRON_DATA_DIR: data }, dir);
    expect(e.code).not.toBe(0);
    expect(e.signal).toBeNull();
    expect(e.stderr).toContain('XCRON_NO_SUCH_SETTING');

    const f = await runToExit(['--config', join(dir, 'missing.toml')], { XCRON_HTTP_PORT: '0', XCRON_DATA_DIR: data }, dir);
    expect(f.code).not.toBe(0);
    expect(f.signal).toBeNull();
    expect(f.stderr).toContain('missing.toml');
  });

  it('stays healthy after 30+ malformed requests over real HTTP, and stores nothing', async () => {
    const limits = { requestBodyLimit: 65_536, callbackBodyLimit: 1024 };
    const srv = await XcronServer.start({ env: { XCRON_REQUEST_BODY_LIMIT: String(limits.requestBodyLimit), XCRON_CALLBACK_BODY_LIMIT: String(limits.callbackBodyLimit) } });
    const cases = malformedCases({ now: Date.now(), url: fx.receiver.url('/never'), ...limits });
    expect(cases.length).toBeGreaterThanOrEqual(30);
    const failures: string[] = [];
    for (const c of cases) {
      const r = await srv.client.call(c.method, c.path, { json: c.json, body: c.body, headers: c.headers });
      let env: { code: number; message: string } | undefined;
      try {
        env = r.body;
      } catch {
        env = undefined;
      }
      const problems: string[] = [];
      if (r.status !== c.status) problems.push(`status ${r.status} != ${c.status}`);
      if (env?.code !== c.code) problems.push(`code ${env?.code} != ${c.code}`);
      if (!c.message.test(env?.message ?? '')) problems.push(`message ${JSON.stringify(env?.message)} !~ ${String(c.message)}`);
      if (c.allow !== undefined && r.headers.allow !== c.allow) problems.push(`Allow ${String(r.headers.allow)} != ${c.allow}`);
      if (problems.length > 0) failures.push(`${c.name}: ${problems.join('; ')}`);
    }
    expect(failures).toEqual([]);

    expect(srv.running).toBe(true);
    const h = await srv.client.healthz();
    expect(h.status).toBe(200);
    expect(h.body.data.status).toBe('ok');
    const ready = await srv.client.call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(countRows(srv.dbFile)).toEqual({ tasks: 0, runs: 0 });
    // request ids over real HTTP: a sane one is echoed, otherwise the envelope uuid is sent
    const traced = await srv.client.call('POST', '/xcron/createTask', { json: { type: 9 }, headers: { 'x-request-id': 'e2e-trace-1' } });
    expect(traced.headers['x-request-id']).toBe('e2e-trace-1');
    expect(traced.body.code).toBe(1020);
    const untraced = await srv.client.call('GET', '/xcron/nowhere');
    expect(untraced.headers['x-request-id']).toBe(untraced.body.uuid);
    expect(untraced.body.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // and it still does its job
    const due = Date.now() + 1200;
    const { task_id: id } = await srv.client.mustCreate({ type: 2, format: String(due), callback: { url: fx.receiver.url('/after') } });
    await fx.receiver.waitForRequest((r) => taskOf(r) === id, WAIT, 'a callback after the malformed requests');
    expect(fx.receiver.to('/never')).toHaveLength(0);
  });
});
