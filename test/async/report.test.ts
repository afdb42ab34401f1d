/**
 * Issue 7, asynchronous completion end to end (standalone): the real built server (./xcron_server
 * on a temp SQLite file) delivers callbacks to a real worker (test/async/worker.ts) that answers
 * 202 (or 200 for completion "async") and reports back through POST /xcron/reportRun with the
 * X-Xcron-Report-Token it received. Every wait is on an arrival or on polling the API until a
 * condition holds; nothing asserts on elapsed time.
 */
import { describe, expect, it } from 'vitest';
import { call } from '../helpers/http.js';
import { XcronServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WAIT, awaiting, create, inflightRuns, runOf, taskRuns, tokenFor, trigger, waitRun, waitRuns, asyncSuite } from './common.js';
import type { Job } from './worker.js';

const FAR = '0 0 1 1 *'; // a periodic task that only fires when triggered
const REPORT_SECRET = 'async-tests-report-secret-0123456789';

const suite = asyncSuite({ XCRON_CALLBACK_REPORT_SECRET: REPORT_SECRET });
const start = (env: Record<string, string> = {}): Promise<XcronServer> => suite.start(env);

interface LiveStats {
  succeeded: number;
  failed: number;
}
async function liveStats(srv: XcronServer): Promise<LiveStats> {
  const r = await srv.client.call<{ live: LiveStats }>('GET', '/xcron/stats');
  return r.body.data.live;
}

describe('a 202 answer leaves the run RUNNING until the worker reports', () => {
  it('202 then a SUCCESS report: RUNNING (taskRuns, queryTask) until the report, then SUCCESS with message and output; the on_success child fires only after it', async () => {
    const srv = await start();
    suite.worker.on('/child', { status: 200 });
    const child = await create(srv.baseUrl, { type: 1, format: FAR, name: 'child', callback: { url: suite.worker.url('/child') } });
    const due = Date.now() + 1200;
    const parent = await create(srv.baseUrl, { type: 2, format: String(due), name: 'nightly-settlement', on_success: [child], callback: { url: suite.worker.url('/settle'), body: { day: '2024-01-01' } } });

    const job = await suite.worker.waitForCallback((j) => j.taskId === parent, WAIT, 'the parent callback');
    expect(job.runId).toBe(`${parent}:${due}`);
    expect(job.runId).toBe(job.fireId);
    expect(job.token).toBe(tokenFor(REPORT_SECRET, job.runId));
    expect(job.body).toBe('{"day":"2024-01-01"}');

    // The 202 is in: the run is RUNNING with a deadline, and stays so.
    const running = await waitRun(srv.baseUrl, parent, job.runId, awaiting, 'RUNNING awaiting its report');
    expect(running).toMatchObject({ status: 'RUNNING', http_status: 202, attempts: 1, end_time: null, error: null });
    expect(running.deadline).toBeGreaterThan(running.start_time!);
    const q1 = await srv.client.mustQuery(parent);
    expect(q1.last_status).toBeNull();
    expect(q1.run_count).toBe(1);
    expect((await liveStats(srv)).succeeded).toBe(0);
    expect(await taskRuns(srv.baseUrl, child)).toEqual([]);
    expect(await inflightRuns(srv.baseUrl)).toBe(1);
    expect(suite.worker.forTask(child)).toEqual([]);

    const rep = await suite.worker.report(job, 'SUCCESS', { message: 'settled 42 accounts', output: { accounts: 42, files: ['a.csv'] } });
    expect(rep.status).toBe(200);
    expect(rep.body.code).toBe(0);
    expect(rep.body.data).toEqual({ run_id: job.runId, status: 'SUCCESS' });

    const done = (await runOf(srv.baseUrl, parent, job.runId))!;
    expect(done).toMatchObject({ status: 'SUCCESS', message: 'settled 42 accounts', output: { accounts: 42, files: ['a.csv'] }, error: null, http_status: 202, attempts: 1 });
    expect(done.deadline).toBeUndefined();
    expect(done.end_time).toBeGreaterThanOrEqual(done.start_time!);
    expect(done.duration_ms).toBe(done.end_time! - done.start_time!);
    expect((await srv.client.mustQuery(parent)).last_status).toBe('SUCCESS');

    // Children and stats act on the reported outcome.
    const childJob = await suite.worker.waitForCallback((j) => j.taskId === child, WAIT, 'the child callback after the report');
    expect(childJob.seq).toBeGreaterThan(job.seq);
    await waitRuns(srv.baseUrl, child, (rs) => rs.length === 1 && rs[0]!.status === 'SUCCESS', 'the child run SUCCESS');
    await waitUntil(() => liveStats(srv), (s) => s.succeeded === 2, WAIT, 'stats: parent and child succeeded');
    await waitUntil(() => inflightRuns(srv.baseUrl), (n) => n === 0, WAIT, 'nothing in flight');
  });

  it('202 then a FAIL report: the run is FAIL with the message, last_status FAIL, and a run_failed alert reaches alert_url', async () => {
    const srv = await start();
    suite.worker.on('/alert', { status: 200 });
    suite.worker.on('/job', { report: { status: 'FAIL', message: 'disk full on /data', output: { freed: 0 } } });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, name: 'report-build', alert_url: suite.worker.url('/alert'), retry: { max_attempts: 1 }, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);

    const rep = await suite.worker.waitForResult((r) => r.kind === 'report' && r.runId === runId, WAIT, 'the worker report');
    expect(rep).toMatchObject({ status: 200, code: 0, data: { run_id: runId, status: 'FAIL' } });
    const run = await waitRun(srv.baseUrl, id, runId, (r) => r.status === 'FAIL', 'FAIL');
    expect(run).toMatchObject({ status: 'FAIL', error: 'disk full on /data', message: 'disk full on /data', output: { freed: 0 }, http_status: 202 });
    expect((await srv.client.mustQuery(id)).last_status).toBe('FAIL');

    const alertReq = await suite.worker.waitForCallback((j) => j.path === '/alert', WAIT, 'the alert');
    expect(JSON.parse(alertReq.body)).toMatchObject({ event: 'run_failed', task_id: id, task_name: 'report-build', run_id: runId, error: 'disk full on /data', http_status: 202, attempts: 1 });
    await waitUntil(() => liveStats(srv), (s) => s.failed === 1 && s.succeeded === 0, WAIT, 'stats: one failure');
  });

  it('a FAIL report without a message records the error "reported FAIL"', async () => {
    const srv = await start();
    suite.worker.on('/job', { report: { status: 'FAIL' } });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, retry: { max_attempts: 1 }, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const run = await waitRun(srv.baseUrl, id, runId, (r) => r.status === 'FAIL', 'FAIL');
    expect(run.error).toBe('reported FAIL');
    expect(run.message).toBeUndefined();
  });

  it('completion "async": a 200 answer also leaves the run RUNNING until the report; a sync task answered 200 is SUCCESS at once', async () => {
    const srv = await start();
    suite.worker.on('/async', { status: 200 });
    suite.worker.on('/sync', { status: 200 });
    const asyncId = await create(srv.baseUrl, { type: 1, format: FAR, completion: 'async', callback: { url: suite.worker.url('/async') } });
    const syncId = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/sync') } });

    const syncRun = await trigger(srv.baseUrl, syncId);
    await waitRun(srv.baseUrl, syncId, syncRun, (r) => r.status === 'SUCCESS', 'sync SUCCESS');
    expect((await runOf(srv.baseUrl, syncId, syncRun))!.deadline).toBeUndefined();

    const runId = await trigger(srv.baseUrl, asyncId);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the async callback');
    const running = await waitRun(srv.baseUrl, asyncId, runId, awaiting, 'RUNNING after a 200');
    expect(running.http_status).toBe(200);
    expect((await srv.client.mustQuery(asyncId)).last_status).toBeNull();

    expect((await suite.worker.report(job, 'SUCCESS')).body.code).toBe(0);
    expect(await runOf(srv.baseUrl, asyncId, runId)).toMatchObject({ status: 'SUCCESS', http_status: 200 });
    expect((await srv.client.mustQuery(asyncId)).last_status).toBe('SUCCESS');
  });

  it('queryTask shows the completion mode and async_timeout_ms the task was created with', async () => {
    // API.md: queryTask returns "the extension fields the task was created with".
    const srv = await start();
    const id = await create(srv.baseUrl, { type: 1, format: FAR, completion: 'async', async_timeout_ms: 5000, callback: { url: suite.worker.url('/x') } });
    const v = await srv.client.mustQuery(id);
    expect(v).toMatchObject({ completion: 'async', async_timeout_ms: 5000 });
  });

  it('createTask validates completion and async_timeout_ms', async () => {
    const srv = await start();
    const bad = async (extra: Record<string, unknown>): Promise<{ status: number; code: number; message: string }> => {
      const r = await srv.client.createTask({ type: 1, format: FAR, callback: { url: suite.worker.url('/x') }, ...extra });
      return { status: r.status, code: r.body.code, message: r.body.message };
    };
    expect(await bad({ completion: 'later' })).toMatchObject({ status: 400, code: 1009 });
    expect(await bad({ async_timeout_ms: 10 })).toMatchObject({ status: 400, code: 1009 });
    expect((await bad({ async_timeout_ms: 10 })).message).toContain('async_timeout_ms');
    expect(await bad({ async_timeout_ms: '5000' })).toMatchObject({ status: 400, code: 1000 });
  });
});

describe('the report token and the reportRun errors', () => {
  it('every callback carries X-Xcron-Run-Id (= X-Xcron-Fire-Id) and a per-run X-Xcron-Report-Token; wrong, missing or foreign tokens get 1010 and change nothing', async () => {
    const srv = await start();
    const id = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/job') } });
    const r1 = await trigger(srv.baseUrl, id);
    const r2 = await trigger(srv.baseUrl, id);
    const j1 = await suite.worker.waitForCallback((j) => j.runId === r1, WAIT, 'callback 1');
    const j2 = await suite.worker.waitForCallback((j) => j.runId === r2, WAIT, 'callback 2');
    for (const j of [j1, j2]) {
      expect(j.headers['x-xcron-run-id']).toBe(j.headers['x-xcron-fire-id']);
      expect(j.token).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(j1.token).not.toBe(j2.token);
    await waitRun(srv.baseUrl, id, r1, awaiting, 'run 1 awaiting');

    const report = (body: Record<string, unknown>) => call(srv.baseUrl, 'POST', '/xcron/reportRun', { json: body });
    // another run's token
    let r = await report({ run_id: r1, token: j2.token, status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([403, 1010]);
    expect(r.body.message).toContain('token');
    // a made-up token, and a token one character off
    r = await report({ run_id: r1, token: 'f'.repeat(64), status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([403, 1010]);
    r = await report({ run_id: r1, token: `${j1.token.slice(0, 63)}${j1.token.endsWith('0') ? '1' : '0'}`, status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([403, 1010]);
    // a token derived with another secret
    r = await report({ run_id: r1, token: tokenFor('some-other-secret-value-123456', r1), status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([403, 1010]);
    // a token of the wrong type
    r = await report({ run_id: r1, token: 12345, status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([403, 1010]);
    // missing / empty token
    r = await report({ run_id: r1, status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([401, 1010]);
    r = await report({ run_id: r1, token: '', status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([401, 1010]);
    // the appendRunLog route checks the token the same way
    const a = await call(srv.baseUrl, 'POST', '/xcron/appendRunLog', { json: { run_id: r1, token: j2.token, lines: ['x'] } });
    expect([a.status, a.body.code]).toEqual([403, 1010]);

    // nothing changed
    expect(await runOf(srv.baseUrl, id, r1)).toMatchObject({ status: 'RUNNING', end_time: null });
    expect((await runLogLines(srv, r1)).length).toBe(0);
    // the right token still works
    expect((await suite.worker.report(j1, 'SUCCESS')).body.code).toBe(0);
  });

  it('an unknown run gets 1007 (404), a bad status 1009 (400), malformed bodies 1000', async () => {
    const srv = await start();
    suite.worker.on('/job', { status: 202 });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting');
    const report = (body: unknown) => call(srv.baseUrl, 'POST', '/xcron/reportRun', { json: body });

    // A run that never existed, with the token this server would hand out for it.
    const ghost = `${id}:1234567890123`;
    let r = await report({ run_id: ghost, token: tokenFor(REPORT_SECRET, ghost), status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([404, 1007]);
    expect(r.body.message).toContain(ghost);
    // an id that is not a run id at all
    r = await report({ run_id: 'not-a-run-id', token: 'x', status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([404, 1007]);

    // bad status values
    for (const status of ['DONE', 'success', '', 'RUNNING', 1, null]) {
      r = await report({ run_id: runId, token: job.token, status });
      expect([r.status, r.body.code], `status ${JSON.stringify(status)}`).toEqual([400, 1009]);
      expect(r.body.message).toContain('status');
    }
    // malformed bodies
    r = await report({ run_id: runId, token: job.token, status: 'SUCCESS', extra: 1 });
    expect([r.status, r.body.code]).toEqual([400, 1000]);
    r = await report({ run_id: runId, token: job.token, status: 'SUCCESS', message: 42 });
    expect([r.status, r.body.code]).toEqual([400, 1000]);
    r = await report({ token: job.token, status: 'SUCCESS' });
    expect([r.status, r.body.code]).toEqual([400, 1000]);
    r = await report([runId]);
    expect([r.status, r.body.code]).toEqual([400, 1000]);
    const notJson = await call(srv.baseUrl, 'POST', '/xcron/reportRun', { body: '{"run_id":', headers: { 'content-type': 'application/json' } });
    expect(notJson.body.code).toBe(1000);
    // output over 64 KiB as JSON
    r = await report({ run_id: runId, token: job.token, status: 'SUCCESS', output: 'x'.repeat(70_000) });
    expect([r.status, r.body.code]).toEqual([413, 1008]);

    // none of these changed the run
    expect(await runOf(srv.baseUrl, id, runId)).toMatchObject({ status: 'RUNNING', end_time: null });
    expect((await suite.worker.report(job, 'SUCCESS', { output: [1, 2, 3] })).body.code).toBe(0);
    expect(await runOf(srv.baseUrl, id, runId)).toMatchObject({ status: 'SUCCESS', output: [1, 2, 3] });
  });

  it('the run of a deleted task is unknown to reportRun (1007), even with its real token', async () => {
    const srv = await start();
    const id = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting');
    expect((await srv.client.deleteTask(id)).body.code).toBe(0);
    const r = await suite.worker.report(job, 'SUCCESS');
    expect([r.status, r.body.code]).toEqual([404, 1007]);
  });
});

describe('duplicate and conflicting reports', () => {
  it('the same outcome again is code 0 and changes nothing (no second child, no second stat); a conflicting one is 1017 (409) and changes nothing', async () => {
    const srv = await start();
    suite.worker.on('/child', { status: 200 });
    const child = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/child') } });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, on_success: [child], callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting');

    const first = await suite.worker.report(job, 'SUCCESS', { message: 'first', output: { n: 1 } });
    expect(first.body.code).toBe(0);
    const closed = (await runOf(srv.baseUrl, id, runId))!;
    expect(closed).toMatchObject({ status: 'SUCCESS', message: 'first', output: { n: 1 } });
    await suite.worker.waitForCallback((j) => j.taskId === child, WAIT, 'the child of the first report');

    // The worker retries its report (say its first HTTP answer was lost): same outcome, code 0.
    const again = await suite.worker.report(job, 'SUCCESS', { message: 'first' });
    expect([again.status, again.body.code]).toEqual([200, 0]);
    expect(again.body.data).toEqual({ run_id: runId, status: 'SUCCESS' });
    expect(again.body.message).toContain('already reported');
    const again2 = await suite.worker.report(job, 'SUCCESS', { message: 'a different message', output: { n: 2 } });
    expect([again2.status, again2.body.code]).toEqual([200, 0]);

    // A conflicting outcome: a clear error, nothing changes.
    const conflict = await suite.worker.report(job, 'FAIL', { message: 'too late' });
    expect([conflict.status, conflict.body.code]).toEqual([409, 1017]);
    expect(conflict.body.message).toContain('already closed as SUCCESS');
    expect(await runOf(srv.baseUrl, id, runId)).toEqual(closed);
    expect((await srv.client.mustQuery(id)).last_status).toBe('SUCCESS');

    // A sentinel: a second run of the parent, reported once. Its child is the second child run;
    // had a duplicate report triggered the child again, there would be three.
    const run2 = await trigger(srv.baseUrl, id);
    const job2 = await suite.worker.waitForCallback((j) => j.runId === run2, WAIT, 'the second parent callback');
    await waitRun(srv.baseUrl, id, run2, awaiting, 'second run awaiting');
    expect((await suite.worker.report(job2, 'SUCCESS')).body.code).toBe(0);
    await suite.worker.waitForCallback((j) => j.taskId === child && j.seq > job2.seq, WAIT, 'the child of the second report');
    const childRuns = await waitRuns(srv.baseUrl, child, (rs) => rs.length >= 2 && rs.every((r) => r.status === 'SUCCESS'), 'two child runs');
    expect(childRuns).toHaveLength(2);
    expect(suite.worker.forTask(child)).toHaveLength(2);
    await waitUntil(() => liveStats(srv), (s) => s.succeeded === 4, WAIT, 'stats: 2 parent + 2 child successes');
    expect(await liveStats(srv)).toMatchObject({ succeeded: 4, failed: 0 });
  });

  it('a FAIL reported twice is idempotent and alerts once; SUCCESS after it is 1017', async () => {
    const srv = await start();
    suite.worker.on('/alert', { status: 200 });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, alert_url: suite.worker.url('/alert'), retry: { max_attempts: 1 }, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting');
    expect((await suite.worker.report(job, 'FAIL', { message: 'broken' })).body.code).toBe(0);
    await suite.worker.waitForCallback((j) => j.path === '/alert', WAIT, 'the alert');
    expect((await suite.worker.report(job, 'FAIL', { message: 'broken' })).body.code).toBe(0);
    const c = await suite.worker.report(job, 'SUCCESS');
    expect([c.status, c.body.code]).toEqual([409, 1017]);
    expect(await runOf(srv.baseUrl, id, runId)).toMatchObject({ status: 'FAIL', error: 'broken' });
    // Sentinel: a second failing run alerts; the duplicate did not (two alerts, not three).
    const run2 = await trigger(srv.baseUrl, id);
    const job2 = await suite.worker.waitForCallback((j) => j.runId === run2, WAIT, 'the second callback');
    await waitRun(srv.baseUrl, id, run2, awaiting, 'second run awaiting');
    expect((await suite.worker.report(job2, 'FAIL', { message: 'broken again' })).body.code).toBe(0);
    await suite.worker.waitForCallback((j) => j.path === '/alert' && (JSON.parse(j.body) as { run_id: string }).run_id === run2, WAIT, 'the second alert');
    expect(suite.worker.jobs.filter((j) => j.path === '/alert').map((j) => (JSON.parse(j.body) as { run_id: string }).run_id)).toEqual([runId, run2]);
  });

  it('a report of a synchronous run already finished by its HTTP answer: the same outcome is 0, another 1017', async () => {
    const srv = await start();
    suite.worker.on('/sync', { status: 200 });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/sync') } });
    const runId = await trigger(srv.baseUrl, id);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    await waitRun(srv.baseUrl, id, runId, (r) => r.status === 'SUCCESS', 'SUCCESS');
    expect((await suite.worker.report(job, 'SUCCESS')).body.code).toBe(0);
    expect((await suite.worker.report(job, 'FAIL')).body.code).toBe(1017);
    expect(await runOf(srv.baseUrl, id, runId)).toMatchObject({ status: 'SUCCESS', http_status: 200 });
  });
});

describe('a report racing the HTTP answer', () => {
  it('a synchronous run reported by the worker before its 200 answer is closed once: one child run, one success in the stats', async () => {
    // Every callback carries a report token, so a worker may report a run that is synchronous
    // (answered 200). Reported first, the run is closed by the report; the 200 that follows must
    // not act on the run a second time.
    const srv = await start();
    suite.worker.on('/child', { status: 200 });
    suite.worker.on('/sync', (_job, nth) => (nth === 1 ? { status: 200, reportBeforeAnswer: true, report: { status: 'SUCCESS' } } : { status: 200 }));
    const child = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/child') } });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, on_success: [child], callback: { url: suite.worker.url('/sync') } });
    const run1 = await trigger(srv.baseUrl, id);
    await suite.worker.waitForResult((r) => r.kind === 'report' && r.runId === run1, WAIT, 'the early report');
    await waitRun(srv.baseUrl, id, run1, (r) => r.status === 'SUCCESS', 'SUCCESS');
    await suite.worker.waitForCallback((j) => j.taskId === child, WAIT, 'the child');
    // Sentinel: a second, ordinary run of the parent; its child is the second child run.
    const run2 = await trigger(srv.baseUrl, id);
    const j2 = await suite.worker.waitForCallback((j) => j.runId === run2, WAIT, 'the second parent callback');
    await waitRun(srv.baseUrl, id, run2, (r) => r.status === 'SUCCESS', 'second run SUCCESS');
    await suite.worker.waitForCallback((j) => j.taskId === child && j.seq > j2.seq, WAIT, 'the child of the second run');
    await waitUntil(() => liveStats(srv), (s) => s.succeeded >= 4, WAIT, 'stats: two parent and two child runs');
    expect(suite.worker.forTask(child)).toHaveLength(2);
    expect(await taskRuns(srv.baseUrl, child)).toHaveLength(2);
    expect((await liveStats(srv)).succeeded).toBe(4);
  });
});

describe('consecutive reported failures', () => {
  it('max_consecutive_failures counts reported FAILs: the task is paused and a task_paused alert sent', async () => {
    const srv = await start();
    suite.worker.on('/alert', { status: 200 });
    suite.worker.on('/job', { report: { status: 'FAIL', message: 'nope' } });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, max_consecutive_failures: 2, alert_url: suite.worker.url('/alert'), retry: { max_attempts: 1 }, callback: { url: suite.worker.url('/job') } });
    const r1 = await trigger(srv.baseUrl, id);
    await waitRun(srv.baseUrl, id, r1, (r) => r.status === 'FAIL', 'run 1 FAIL');
    expect((await srv.client.mustQuery(id)).state).toBe('active');
    const r2 = await trigger(srv.baseUrl, id);
    await waitRun(srv.baseUrl, id, r2, (r) => r.status === 'FAIL', 'run 2 FAIL');
    await waitUntil(() => srv.client.mustQuery(id), (t) => t.state === 'paused', WAIT, 'the task paused');
    const paused = await suite.worker.waitForCallback((j) => j.path === '/alert' && (JSON.parse(j.body) as { event: string }).event === 'task_paused', WAIT, 'the task_paused alert');
    expect(JSON.parse(paused.body)).toMatchObject({ task_id: id, run_id: r2, consecutive_failures: 2 });
  });
});

describe('the report deadline', () => {
  it('an expired deadline is retried with X-Xcron-Attempt 2 and the same run id; when that expires too (max_attempts 2) the run is FAIL "timeout" and alerts', async () => {
    const srv = await start({ XCRON_DELIVERY_ASYNC_TIMEOUT_MS: '1500' });
    suite.worker.on('/alert', { status: 200 });
    suite.worker.on('/slow', { status: 202 }); // accepts, never reports
    const id = await create(srv.baseUrl, { type: 1, format: FAR, alert_url: suite.worker.url('/alert'), retry: { max_attempts: 2, backoff_ms: 100 }, callback: { url: suite.worker.url('/slow') } });
    const runId = await trigger(srv.baseUrl, id);

    const first = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'attempt 1');
    expect(first.attempt).toBe(1);
    const r1 = await waitRun(srv.baseUrl, id, runId, awaiting, 'attempt 1 awaiting');
    // the server default deadline applies (the task has no async_timeout_ms)
    expect(r1.deadline! - r1.start_time!).toBeGreaterThanOrEqual(1500);

    const second = await suite.worker.waitForCallback((j) => j.runId === runId && j.attempt === 2, WAIT, 'attempt 2 after the deadline');
    expect(second.fireId).toBe(runId);
    expect(second.headers['x-xcron-scheduled-time']).toBe(first.headers['x-xcron-scheduled-time']);
    expect(second.token).toBe(first.token);
    expect(second.body).toBe(first.body);

    const failed = await waitRun(srv.baseUrl, id, runId, (r) => r.status === 'FAIL', 'FAIL after the second deadline');
    expect(failed).toMatchObject({ status: 'FAIL', error: 'timeout', attempts: 2 });
    expect(failed.deadline).toBeUndefined();
    // (the alert is delivered to the worker too, with the task id: count only the job's path)
    expect(suite.worker.forTask(id).filter((j) => j.path === '/slow').map((j) => j.attempt)).toEqual([1, 2]);
    expect((await srv.client.mustQuery(id)).last_status).toBe('FAIL');
    const alert = await suite.worker.waitForCallback((j) => j.path === '/alert', WAIT, 'the timeout alert');
    expect(JSON.parse(alert.body)).toMatchObject({ event: 'run_failed', task_id: id, run_id: runId, error: 'timeout', attempts: 2 });
    await srv.waitForLog((l) => l.msg === 'async run not reported in time: FAIL (timeout)' && l.fire_id === runId, WAIT, 'the timeout log line');

    // A report after the timeout conflicts; the same FAIL is idempotent.
    expect((await suite.worker.report(first, 'SUCCESS')).body.code).toBe(1017);
    expect((await suite.worker.report(first, 'FAIL')).body.code).toBe(0);
    expect(await inflightRuns(srv.baseUrl)).toBe(0);
  });

  it("the task's own async_timeout_ms wins over the server default; the retried attempt can still be reported SUCCESS (with the first attempt's token)", async () => {
    const srv = await start(); // server default: one hour
    let reportedRetry: Job | null = null;
    suite.worker.on('/job', (job) => {
      if (job.attempt === 2) reportedRetry = job;
      return job.attempt === 2 ? { report: { status: 'SUCCESS', message: 'second time lucky' } } : {};
    });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, async_timeout_ms: 1500, retry: { max_attempts: 3, backoff_ms: 100 }, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const first = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'attempt 1');
    const r1 = await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting');
    expect(r1.deadline! - r1.start_time!).toBeLessThan(3_600_000);
    await suite.worker.waitForResult((r) => r.kind === 'report' && r.runId === runId, WAIT, 'the report of attempt 2');
    expect(reportedRetry).not.toBeNull();
    const run = await waitRun(srv.baseUrl, id, runId, (r) => r.status === 'SUCCESS', 'SUCCESS');
    expect(run).toMatchObject({ attempts: 2, message: 'second time lucky', error: null });
    expect(suite.worker.forTask(id).map((j) => j.attempt)).toEqual([1, 2]);
    // The first attempt's token is the run's token: reporting with it is the idempotent same outcome.
    expect((await suite.worker.report(first, 'SUCCESS')).body.code).toBe(0);
  });

  it('max_attempts 1: an expired deadline ends the run FAIL "timeout" without a retry', async () => {
    const srv = await start();
    const id = await create(srv.baseUrl, { type: 1, format: FAR, async_timeout_ms: 1000, retry: { max_attempts: 1 }, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    const run = await waitRun(srv.baseUrl, id, runId, (r) => r.status === 'FAIL', 'FAIL timeout');
    expect(run).toMatchObject({ error: 'timeout', attempts: 1 });
    expect(suite.worker.forTask(id)).toHaveLength(1);
  });
});

describe('overlap treats an unreported async run as in flight', () => {
  it('overlap "skip": ticks of a */1 task are SKIPPED (no callbacks) while the first run is unreported; after the report the next tick fires', async () => {
    const srv = await start();
    suite.worker.on('/tick', (_job, nth) => (nth === 1 ? { status: 202 } : { status: 200 }));
    const id = await create(srv.baseUrl, { type: 1, format: '*/1 * * * * *', overlap: 'skip', callback: { url: suite.worker.url('/tick') } });
    const first = await suite.worker.waitForCallback((j) => j.taskId === id, WAIT, 'the first tick');
    await waitRun(srv.baseUrl, id, first.runId, awaiting, 'first run awaiting');
    const during = await waitRuns(srv.baseUrl, id, (rs) => rs.filter((r) => r.status === 'SKIPPED').length >= 3, 'three SKIPPED ticks while unreported');
    const skipped = during.filter((r) => r.status === 'SKIPPED');
    for (const r of skipped) {
      expect(r.scheduled_time).toBeGreaterThan(first.scheduled);
      expect(r.error).toBe('previous run still in flight (overlap policy skip)');
    }
    expect(suite.worker.forTask(id)).toHaveLength(1);

    const rep = await suite.worker.report(first, 'SUCCESS');
    expect(rep.body.code).toBe(0);
    const next = await suite.worker.waitForCallback((j) => j.taskId === id && j.seq > first.seq, WAIT, 'the next tick after the report');
    expect(next.scheduled).toBeGreaterThan(Math.max(...skipped.map((r) => r.scheduled_time)));
    // no SKIPPED tick was ever delivered
    const all = await taskRuns(srv.baseUrl, id);
    const skippedIds = new Set(all.filter((r) => r.status === 'SKIPPED').map((r) => r.run_id));
    for (const j of suite.worker.forTask(id)) expect(skippedIds.has(j.runId)).toBe(false);
    expect((await runOf(srv.baseUrl, id, first.runId))!.status).toBe('SUCCESS');
    await call(srv.baseUrl, 'POST', '/xcron/pauseTask', { json: { task_id: id } });
  });

  it('overlap "queue": the next run waits (PENDING, no callback) until the report, then is delivered', async () => {
    const srv = await start();
    suite.worker.on('/tick', (_job, nth) => (nth === 1 ? { status: 202 } : { status: 200 }));
    const id = await create(srv.baseUrl, { type: 1, format: '*/1 * * * * *', overlap: 'queue', callback: { url: suite.worker.url('/tick') } });
    const first = await suite.worker.waitForCallback((j) => j.taskId === id, WAIT, 'the first tick');
    await waitRun(srv.baseUrl, id, first.runId, awaiting, 'first run awaiting');
    const during = await waitRuns(srv.baseUrl, id, (rs) => rs.filter((r) => r.status === 'PENDING').length >= 2, 'two queued ticks');
    expect(suite.worker.forTask(id)).toHaveLength(1);
    const oldestQueued = during.filter((r) => r.status === 'PENDING').sort((a, b) => a.scheduled_time - b.scheduled_time)[0]!;
    expect(during.filter((r) => r.status === 'SKIPPED')).toEqual([]);

    expect((await suite.worker.report(first, 'SUCCESS')).body.code).toBe(0);
    const next = await suite.worker.waitForCallback((j) => j.taskId === id && j.seq > first.seq, WAIT, 'the queued run after the report');
    expect(next.runId).toBe(oldestQueued.run_id);
    await waitRun(srv.baseUrl, id, oldestQueued.run_id, (r) => r.status === 'SUCCESS', 'the queued run SUCCESS');
    await call(srv.baseUrl, 'POST', '/xcron/pauseTask', { json: { task_id: id } });
  });

  it('a worker that reports before its 202 reaches the server: the run is SUCCESS and the task is not left in flight (the next tick of an overlap "skip" task fires)', async () => {
    // The report can overtake the 202 (the worker reports first, or the response is slow to be
    // read). The run is closed; the scheduler must not then await a report that already came.
    // A worker that reports before it answers needs "completion": "async": a sync task's run takes
    // a report only once its 202 is recorded (issue 23 item 6: test/harden/report-sync.test.ts).
    const srv = await start();
    suite.worker.on('/fast', (_job, nth) => (nth === 1 ? { status: 202, reportBeforeAnswer: true, report: { status: 'SUCCESS', message: 'quick job' } } : { status: 200 }));
    const id = await create(srv.baseUrl, { type: 1, format: '*/1 * * * * *', overlap: 'skip', completion: 'async', async_timeout_ms: 60_000, callback: { url: suite.worker.url('/fast') } });
    const first = await suite.worker.waitForCallback((j) => j.taskId === id, WAIT, 'the first tick');
    const rep = await suite.worker.waitForResult((r) => r.kind === 'report' && r.runId === first.runId, WAIT, 'the early report');
    expect(rep.code).toBe(0);
    await waitRun(srv.baseUrl, id, first.runId, (r) => r.status === 'SUCCESS', 'SUCCESS');
    // Nothing is in flight any more, and the next tick is delivered, not SKIPPED.
    await waitUntil(() => inflightRuns(srv.baseUrl), (n) => n === 0, 15_000, 'xcron_inflight_runs back to 0 after the early report');
    await suite.worker.waitForCallback((j) => j.taskId === id && j.seq > first.seq, 15_000, 'the next tick');
    await call(srv.baseUrl, 'POST', '/xcron/pauseTask', { json: { task_id: id } });
  });
});

async function runLogLines(srv: XcronServer, runId: string): Promise<unknown[]> {
  const r = await call<{ lines: unknown[] }>(srv.baseUrl, 'GET', `/xcron/runLog?run_id=${encodeURIComponent(runId)}`);
  return r.body.data.lines;
}
