/**
 * Issue 7 §3, execution logs end to end (standalone): a real worker appends lines to its run with
 * POST /xcron/appendRunLog (authenticated by the run's report token) while the run is RUNNING, and
 * GET /xcron/runLog reads them back in order, page by page. The per-run caps, the deletion of logs
 * with their run (deleteTask, history pruning) and the auth split (worker routes need no API
 * token, runLog needs read) are checked against the real built server.
 */
import { describe, expect, it } from 'vitest';
import { call } from '../helpers/http.js';
import { XcronServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WAIT, awaiting, create, logRowsInDb, runLog, trigger, waitRun, asyncSuite } from './common.js';
import type { Job } from './worker.js';

const FAR = '0 0 1 1 *';

const suite = asyncSuite();
const start = (env: Record<string, string> = {}): Promise<XcronServer> => suite.start(env);

/** A task answered 202 and a triggered run awaiting its report; returns the worker's job. */
async function awaitingRun(srv: XcronServer, path = '/job', extra: Record<string, unknown> = {}): Promise<{ id: string; job: Job }> {
  const id = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url(path) }, ...extra });
  const runId = await trigger(srv.baseUrl, id);
  const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, `the callback of ${runId}`);
  await waitRun(srv.baseUrl, id, runId, awaiting, 'awaiting its report');
  return { id, job };
}

describe('appendRunLog and runLog', () => {
  it('lines come back in order with seq and time; since/limit page through them; finished turns true with the report', async () => {
    const srv = await start();
    suite.worker.on('/job', {
      logs: [['starting settlement', 'day 2024-01-01'], ['batch 1/3 ok', 'batch 2/3 ok'], ['batch 3/3 ok', 'unicode ✓ é 漢字', '']],
    });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/job') } });
    const runId = await trigger(srv.baseUrl, id);
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    // the worker's three appends are answered one after the other
    await waitUntil(() => suite.worker.results.filter((r) => r.kind === 'log' && r.runId === runId).length, (n) => n === 3, WAIT, 'three appends');
    const appends = suite.worker.results.filter((r) => r.kind === 'log' && r.runId === runId);
    expect(appends.map((r) => [r.status, r.code, r.data])).toEqual([
      [200, 0, { run_id: runId, accepted: 2, dropped: 0 }],
      [200, 0, { run_id: runId, accepted: 2, dropped: 0 }],
      [200, 0, { run_id: runId, accepted: 3, dropped: 0 }],
    ]);
    await waitRun(srv.baseUrl, id, runId, awaiting, 'still RUNNING');

    const all = await runLog(srv.baseUrl, runId);
    expect(all.status).toBe(200);
    expect(all.body.code).toBe(0);
    const d = all.body.data;
    expect(d).toMatchObject({ run_id: runId, status: 'RUNNING', finished: false, next_since: 7 });
    expect(d.run).toMatchObject({ run_id: runId, task_id: id, status: 'RUNNING' });
    expect(d.lines.map((l) => l.line)).toEqual(['starting settlement', 'day 2024-01-01', 'batch 1/3 ok', 'batch 2/3 ok', 'batch 3/3 ok', 'unicode ✓ é 漢字', '']);
    expect(d.lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const l of d.lines) {
      expect(Number.isInteger(l.time)).toBe(true);
      expect(l.time).toBeGreaterThanOrEqual(d.run.start_time!);
    }
    for (let i = 1; i < d.lines.length; i++) expect(d.lines[i]!.time).toBeGreaterThanOrEqual(d.lines[i - 1]!.time);

    // paging: since is the last seq seen, limit the page size, next_since where to go on
    const p1 = (await runLog(srv.baseUrl, runId, '&since=0&limit=3')).body.data;
    expect(p1.lines.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(p1.next_since).toBe(3);
    const p2 = (await runLog(srv.baseUrl, runId, `&since=${p1.next_since}&limit=3`)).body.data;
    expect(p2.lines.map((l) => l.seq)).toEqual([4, 5, 6]);
    const p3 = (await runLog(srv.baseUrl, runId, `&since=${p2.next_since}&limit=3`)).body.data;
    expect(p3.lines.map((l) => l.line)).toEqual(['']);
    expect(p3.next_since).toBe(7);
    const p4 = (await runLog(srv.baseUrl, runId, `&since=${p3.next_since}`)).body.data;
    expect(p4.lines).toEqual([]);
    expect(p4.next_since).toBe(7); // nothing new: stay where you are
    expect((await runLog(srv.baseUrl, runId, '&since=100')).body.data.lines).toEqual([]);

    // tailing: a line appended later is what the next poll from next_since returns
    expect((await suite.worker.appendLog(job, ['done'])).body.data).toEqual({ run_id: runId, accepted: 1, dropped: 0 });
    const tail = (await runLog(srv.baseUrl, runId, `&since=${p4.next_since}`)).body.data;
    expect(tail.lines.map((l) => [l.seq, l.line])).toEqual([[8, 'done']]);

    // the report finishes the log; lines appended after it (a last flush) are still kept
    expect((await suite.worker.report(job, 'SUCCESS')).body.code).toBe(0);
    const after = (await runLog(srv.baseUrl, runId)).body.data;
    expect(after).toMatchObject({ status: 'SUCCESS', finished: true });
    expect((await suite.worker.appendLog(job, ['flushed after the report'])).body.data).toMatchObject({ accepted: 1 });
    expect((await runLog(srv.baseUrl, runId, '&since=8')).body.data.lines.map((l) => l.line)).toEqual(['flushed after the report']);
  });

  it('a line longer than 4096 characters is cut and marked; bad input is refused with a reason', async () => {
    const srv = await start();
    const { job } = await awaitingRun(srv);
    const long = 'x'.repeat(5000);
    expect((await suite.worker.appendLog(job, [long])).body.code).toBe(0);
    const [line] = (await runLog(srv.baseUrl, job.runId)).body.data.lines;
    expect(line!.line).toBe(`${'x'.repeat(4096)}…`);

    const bad = async (lines: unknown): Promise<[number, number]> => {
      const r = await suite.worker.appendLog(job, lines);
      return [r.status, r.body.code];
    };
    expect(await bad('one line')).toEqual([400, 1000]);
    expect(await bad([1, 2])).toEqual([400, 1000]);
    expect(await bad(Array.from({ length: 1001 }, () => 'l'))).toEqual([400, 1009]);
    const unknown = await call(srv.baseUrl, 'POST', '/xcron/appendRunLog', { json: { run_id: job.runId, token: job.token, lines: [], level: 'info' } });
    expect([unknown.status, unknown.body.code]).toEqual([400, 1000]);
    // reading: unknown run, bad since, bad limit
    expect((await runLog(srv.baseUrl, `${job.taskId}:99`)).body.code).toBe(1007);
    expect((await runLog(srv.baseUrl, 'nope')).status).toBe(404);
    for (const q of ['&since=-1', '&since=abc', '&limit=0', '&limit=5001', '&limit=x']) {
      const r = await runLog(srv.baseUrl, job.runId, q);
      expect([r.status, r.body.code], q).toEqual([400, 1009]);
    }
    // nothing but the one line was stored
    expect((await runLog(srv.baseUrl, job.runId)).body.data.lines).toHaveLength(1);
  });

  it('the per-run caps (log_max_lines, log_max_bytes) drop extra lines and say how many', async () => {
    const srv = await start({ XCRON_HISTORY_LOG_MAX_LINES: '5', XCRON_HISTORY_LOG_MAX_BYTES: '100' });
    // line cap: 3 + 4 lines of 10 characters -> 5 kept, 2 dropped; then everything is dropped
    const a = await awaitingRun(srv, '/a');
    let r = await suite.worker.appendLog(a.job, ['line-00001', 'line-00002', 'line-00003']);
    expect(r.body.data).toEqual({ run_id: a.job.runId, accepted: 3, dropped: 0 });
    r = await suite.worker.appendLog(a.job, ['line-00004', 'line-00005', 'line-00006', 'line-00007']);
    expect([r.status, r.body.code]).toEqual([200, 0]);
    expect(r.body.data).toEqual({ run_id: a.job.runId, accepted: 2, dropped: 2 });
    expect(r.body.message).toContain('2 lines dropped');
    r = await suite.worker.appendLog(a.job, ['line-00008']);
    expect(r.body.data).toMatchObject({ accepted: 0, dropped: 1 });
    const la = (await runLog(srv.baseUrl, a.job.runId)).body.data.lines;
    expect(la.map((l) => l.line)).toEqual(['line-00001', 'line-00002', 'line-00003', 'line-00004', 'line-00005']);

    // size cap: lines of 40 characters -> the third would pass 100
    const b = await awaitingRun(srv, '/b');
    r = await suite.worker.appendLog(b.job, ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40), 'd']);
    expect(r.body.data).toEqual({ run_id: b.job.runId, accepted: 2, dropped: 2 });
    const lb = (await runLog(srv.baseUrl, b.job.runId)).body.data.lines;
    expect(lb.map((l) => l.line.length)).toEqual([40, 40]);
    // the caps are per run: run a's full log does not affect another run
    const c = await awaitingRun(srv, '/c');
    expect((await suite.worker.appendLog(c.job, ['fresh'])).body.data).toMatchObject({ accepted: 1, dropped: 0 });
  });

  it('log_max_bytes counts bytes: multi-byte lines cannot store more than the cap in UTF-8', async () => {
    const srv = await start({ XCRON_HISTORY_LOG_MAX_BYTES: '100' });
    const { job } = await awaitingRun(srv);
    // 40 characters of 漢 are 120 bytes in UTF-8: not one of these lines fits in 100 bytes
    await suite.worker.appendLog(job, ['漢'.repeat(40), '漢'.repeat(40)]);
    const lines = (await runLog(srv.baseUrl, job.runId)).body.data.lines;
    const stored = lines.reduce((n, l) => n + Buffer.byteLength(l.line, 'utf8'), 0);
    expect(stored).toBeLessThanOrEqual(100);
  });
});

describe('logs go with their run', () => {
  it('deleteTask deletes the runs and their logs', async () => {
    const srv = await start();
    const { id, job } = await awaitingRun(srv);
    expect((await suite.worker.appendLog(job, ['one', 'two'])).body.data).toMatchObject({ accepted: 2 });
    expect(logRowsInDb(srv.dbFile, job.runId)).toBe(2);
    expect((await srv.client.deleteTask(id)).body.code).toBe(0);
    const r = await runLog(srv.baseUrl, job.runId);
    expect([r.status, r.body.code]).toEqual([404, 1007]);
    expect(logRowsInDb(srv.dbFile, job.runId)).toBe(0);
    // and the worker can no longer append to it
    const a = await suite.worker.appendLog(job, ['three']);
    expect([a.status, a.body.code]).toEqual([404, 1007]);
    expect(logRowsInDb(srv.dbFile, job.runId)).toBe(0);
  });

  it('history pruning (max_runs_per_task) deletes an old run together with its log', async () => {
    // The retention loop first runs 30 s after start; wait for it by polling, not by sleeping.
    const srv = await start({ XCRON_HISTORY_MAX_RUNS_PER_TASK: '1' });
    suite.worker.on('/job', { logs: [['working', 'done']], report: { status: 'SUCCESS' } });
    const id = await create(srv.baseUrl, { type: 1, format: FAR, callback: { url: suite.worker.url('/job') } });
    const old = await trigger(srv.baseUrl, id);
    await suite.worker.waitForResult((r) => r.kind === 'report' && r.runId === old, WAIT, 'the first report');
    const newer = await trigger(srv.baseUrl, id);
    await suite.worker.waitForResult((r) => r.kind === 'report' && r.runId === newer, WAIT, 'the second report');
    expect(logRowsInDb(srv.dbFile, old)).toBe(2);
    expect(logRowsInDb(srv.dbFile, newer)).toBe(2);

    await waitUntil(() => runLog(srv.baseUrl, old), (r) => r.status === 404, 75_000, 'the old run pruned');
    expect(logRowsInDb(srv.dbFile, old)).toBe(0);
    const kept = (await runLog(srv.baseUrl, newer)).body.data;
    expect(kept.lines.map((l) => l.line)).toEqual(['working', 'done']);
    expect(logRowsInDb(srv.dbFile, newer)).toBe(2);
  }, 120_000);
});

describe('authentication', () => {
  it('with API tokens configured, reportRun and appendRunLog need none (the report token is the credential) while runLog needs a read token', async () => {
    const admin = { token: 'admin-token-0123456789abcdef', role: 'admin' };
    const reader = { token: 'read-token-0123456789abcdef', role: 'read' };
    const srv = await start({ XCRON_AUTH_TOKENS: JSON.stringify([admin, reader]) });
    const auth = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
    const c = await call<{ task_id: string }>(srv.baseUrl, 'POST', '/xcron/createTask', { json: { type: 1, format: FAR, callback: { url: suite.worker.url('/job') } }, headers: auth(admin.token) });
    expect(c.body.code).toBe(0);
    const id = c.body.data.task_id;
    const t = await call<{ run_id: string }>(srv.baseUrl, 'POST', '/xcron/triggerTask', { json: { task_id: id }, headers: auth(admin.token) });
    const runId = t.body.data.run_id;
    const job = await suite.worker.waitForCallback((j) => j.runId === runId, WAIT, 'the callback');
    await waitUntil(
      () => call<{ runs: { status: string; deadline?: number }[] }>(srv.baseUrl, 'GET', `/xcron/taskRuns?task_id=${id}`, { headers: auth(reader.token) }),
      (r) => r.body.data.runs[0]?.status === 'RUNNING' && r.body.data.runs[0].deadline !== undefined,
      WAIT,
      'RUNNING awaiting',
    );

    // the worker has no API token
    expect((await suite.worker.appendLog(job, ['hello'])).body.code).toBe(0);
    const noToken = await runLog(srv.baseUrl, runId);
    expect([noToken.status, noToken.body.code]).toEqual([401, 1010]);
    const readOk = await runLog(srv.baseUrl, runId, '', auth(reader.token));
    expect(readOk.body.data.lines.map((l) => l.line)).toEqual(['hello']);
    // an API token is no report token
    const withApiToken = await call(srv.baseUrl, 'POST', '/xcron/reportRun', { json: { run_id: runId, token: admin.token, status: 'SUCCESS' }, headers: auth(admin.token) });
    expect([withApiToken.status, withApiToken.body.code]).toEqual([403, 1010]);
    expect((await suite.worker.report(job, 'SUCCESS')).body.code).toBe(0);
    const after = await runLog(srv.baseUrl, runId, '', auth(admin.token));
    expect(after.body.data).toMatchObject({ status: 'SUCCESS', finished: true });
  });
});
