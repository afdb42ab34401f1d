/**
 * Issue 7 §6, crash safety (standalone): the real built server is killed with SIGKILL while an
 * async run awaits its report, and restarted on the same data dir. The run is not redelivered; a
 * report after the restart closes it; a deadline that passed while the server was down is enforced
 * by the restarted process (a retry with the next attempt number, or FAIL "timeout"); and an
 * overlap "skip" task keeps skipping until the report, also across the restart.
 */
import { describe, expect, it } from 'vitest';
import { call } from '../helpers/http.js';
import { XcronServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WAIT, awaiting, create, inflightRuns, runLog, runOf, taskRuns, trigger, waitRun, waitRuns, asyncSuite } from './common.js';

const FAR = '0 0 1 1 *';

const suite = asyncSuite();
const start = (env: Record<string, string> = {}): Promise<XcronServer> => suite.start(env);

/** SIGKILL, wait for the exit, start again on the same data dir and port. */
async function crashAndRestart(srv: XcronServer, beforeRestart?: () => Promise<void>): Promise<XcronServer> {
  srv.kill('SIGKILL');
  expect((await srv.waitExit()).signal).toBe('SIGKILL');
  if (beforeRestart) await beforeRestart();
  const next = await srv.restart();
  suite.worker.apiBase = next.baseUrl;
  return next;
}

describe('kill -9 while a run awaits its report', () => {
  it('after the restart the run is still RUNNING (not redelivered); a report closes it and its child fires; its log survives', async () => {
    const srv = await start();
    suite.worker.on('/child', { status: 200 });
    suite.worker.on('/job', { logs: [['before the crash']] });
    const child = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/child') } });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, on_success: [child], callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    await suite.worker.waitForResult((r) => r.kind === 'log' && r.runId === runId, WAIT, 'the log append');
    const before = await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting its report');

    const srv2 = await crashAndRestart(srv);
    const after = (await runOf(srv2.baseUrl, id, runId))!;
    expect(after).toMatchObject({ status: 'RUNNING', deadline: before.deadline, attempts: 1 });
    // re-armed, not redelivered: it is in flight on the new process, and no second callback came
    expect(await inflightRuns(srv2.baseUrl)).toBe(1);
    expect(suite.worker.forTask(id)).toHaveLength(1);

    // the same token works on the new process (the secret is kept in the store)
    const more = await suite.worker.appendLog(job, ['after the restart']);
    expect(more.body.data).toMatchObject({ accepted: 1, dropped: 0 });
    const rep = await suite.worker.report(job, 'SUCCESS', { message: 'finished while xcron restarted' });
    expect([rep.status, rep.body.code]).toEqual([200, 0]);
    expect(await runOf(srv2.baseUrl, id, runId)).toMatchObject({ status: 'SUCCESS', message: 'finished while xcron restarted' });
    expect((await srv2.client.mustQuery(id)).last_status).toBe('SUCCESS');
    await suite.worker.waitForCallback((j) => j.taskId === child, WAIT, 'the child after the report');
    await waitUntil(() => inflightRuns(srv2.baseUrl), (n) => n === 0, WAIT, 'nothing in flight');
    const log = (await runLog(srv2.baseUrl, runId)).body.data;
    expect(log.lines.map((l) => [l.seq, l.line])).toEqual([
      [1, 'before the crash'],
      [2, 'after the restart'],
    ]);
    expect(suite.worker.forTask(id)).toHaveLength(1);
  });

  it('a deadline that passed while the server was down is enforced after the restart: a retry with X-Xcron-Attempt 2 and the same run id', async () => {
    const srv = await start();
    suite.worker.on('/job', (job) => (job.attempt === 2 ? { report: { status: 'SUCCESS', message: 'retried after the restart' } } : {}));
    const id = await create(srv.baseUrl, { type: 1, format: FAR, async_timeout_ms: 3000, retry: { max_attempts: 2, backoff_ms: 100 }, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const first = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'attempt 1');
    const r1 = await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting its report');

    const srv2 = await crashAndRestart(srv, async () => {
      // killed before its deadline: only attempt 1 was delivered
      expect(suite.worker.forTask(id).map((j) => j.attempt)).toEqual([1]);
      await waitUntil(() => Date.now(), (now) => now > r1.deadline! + 250, WAIT, 'the deadline to pass while the server is down');
    });
    const second = await suite.worker.waitForCallback((j) => j.runId === runId && j.attempt === 2, WAIT, 'attempt 2 from the restarted server');
    expect(second.token).toBe(first.token);
    expect(second.fireId).toBe(runId);
    await srv2.waitForLog((l) => l.msg === 'async run not reported in time; retrying' && l.fire_id === runId, WAIT, 'the retry log line of the new process');
    const run = await waitRun(srv2.baseUrl, id, runId, (r) => r.status === 'SUCCESS', 'SUCCESS after the retry');
    expect(run).toMatchObject({ attempts: 2, message: 'retried after the restart' });
    expect(suite.worker.forTask(id).map((j) => j.attempt)).toEqual([1, 2]);
  });

  it('with no attempts left, a deadline that passed while the server was down ends the run FAIL "timeout" after the restart, with an alert', async () => {
    const srv = await start();
    suite.worker.on('/alert', { status: 200 });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, async_timeout_ms: 3000, alert_url: suite.worker.url('/alert'), retry: { max_attempts: 1 }, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    const r1 = await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting its report');

    const srv2 = await crashAndRestart(srv, async () => {
      await waitUntil(() => Date.now(), (now) => now > r1.deadline! + 250, WAIT, 'the deadline to pass while the server is down');
    });
    const run = await waitRun(srv2.baseUrl, id, runId, (r) => r.status === 'FAIL', 'FAIL after the restart');
    expect(run).toMatchObject({ error: 'timeout', attempts: 1 });
    await srv2.waitForLog((l) => l.msg === 'async run not reported in time: FAIL (timeout)' && l.fire_id === runId, WAIT, 'the timeout log line of the new process');
    const alert = await suite.worker.waitForCallback((j) => j.path === '/alert', WAIT, 'the alert');
    expect(JSON.parse(alert.body)).toMatchObject({ event: 'run_failed', run_id: runId, error: 'timeout' });
    expect(suite.worker.forTask(id).filter((j) => j.path === '/job')).toHaveLength(1);
    // the worker reporting late gets the conflict
    expect((await suite.worker.report(job, 'SUCCESS')).body.code).toBe(1017);
  });

  it('an overlap "skip" task keeps skipping across the restart until the report, then fires again', async () => {
    const srv = await start();
    suite.worker.on('/tick', (_job, nth) => (nth === 1 ? { status: 202 } : { status: 200 }));
    const id = await create(srv.baseUrl, { type: 1, format: '*/1 * * * * *', overlap: 'skip', callback: { url: suite.worker.url('/tick') } });
    const first = await suite.worker.waitForCallback((j) => j.taskId === id, WAIT, 'the first tick');
    await waitRun(srv.baseUrl, id, first.runId, awaiting, 'first run awaiting');

    const srv2 = await crashAndRestart(srv);
    const restartedAt = Date.now();
    const runs = await waitRuns(srv2.baseUrl, id, (rs) => rs.filter((r) => r.status === 'SKIPPED' && r.scheduled_time > restartedAt).length >= 2, 'ticks after the restart SKIPPED');
    expect(runs.filter((r) => r.scheduled_time > restartedAt && r.status !== 'SKIPPED')).toEqual([]);
    expect(suite.worker.forTask(id)).toHaveLength(1);

    expect((await suite.worker.report(first, 'SUCCESS')).body.code).toBe(0);
    const next = await suite.worker.waitForCallback((j) => j.taskId === id && j.seq > first.seq, WAIT, 'a tick after the report');
    expect(next.runId).not.toBe(first.runId);
    const all = await taskRuns(srv2.baseUrl, id);
    expect(all.find((r) => r.run_id === next.runId)?.status).not.toBe('SKIPPED');
    await call(srv2.baseUrl, 'POST', '/xcron/pauseTask', { json: { task_id: id } });
  });

  it('an overlap "queue" task keeps its queued runs waiting across the restart until the report', async () => {
    const srv = await start();
    suite.worker.on('/tick', (_job, nth) => (nth === 1 ? { status: 202 } : { status: 200 }));
    const id = await create(srv.baseUrl, { type: 1, format: '*/1 * * * * *', overlap: 'queue', callback: { url: suite.worker.url('/tick') } });
    const first = await suite.worker.waitForCallback((j) => j.taskId === id, WAIT, 'the first tick');
    await waitRun(srv.baseUrl, id, first.runId, awaiting, 'first run awaiting');
    const queued = await waitRuns(srv.baseUrl, id, (rs) => rs.filter((r) => r.status === 'PENDING').length >= 2, 'two queued ticks');
    const oldestQueued = queued.filter((r) => r.status === 'PENDING').sort((a, b) => a.scheduled_time - b.scheduled_time)[0]!;
    expect(suite.worker.forTask(id)).toHaveLength(1);

    const srv2 = await crashAndRestart(srv);
    const restartedAt = Date.now();
    // Recovery (before the first tick of the new process) re-armed the async run; ticks of the new
    // process are recorded once it is up. Up to then, still only the first callback.
    await waitRuns(srv2.baseUrl, id, (rs) => rs.some((r) => r.scheduled_time > restartedAt + 1000), 'ticks of the restarted process recorded');
    expect(suite.worker.forTask(id).map((j) => j.runId)).toEqual([first.runId]);

    expect((await suite.worker.report(first, 'SUCCESS')).body.code).toBe(0);
    const next = await suite.worker.waitForCallback((j) => j.taskId === id && j.seq > first.seq, WAIT, 'the queued run after the report');
    expect(next.runId).toBe(oldestQueued.run_id);
    await call(srv2.baseUrl, 'POST', '/xcron/pauseTask', { json: { task_id: id } });
  });
});
