/**
 * Issue 23 item 6: a report for a SYNC run (decided by its callback's HTTP answers) is refused with
 * 409, code 1018, in every phase (an attempt in flight, between two attempts), so a run can no
 * longer be closed by a report while its retries go on; the run record stays the delivery's own (status, attempts and http_status agree).
 * Reports for runs that await one (async tasks, or a callback that answered 202) still close them.
 * Real built server, real receiver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http.js';
import { Receiver, gate, header } from '../helpers/receiver.js';
import { XcronServer, cleanupTempDirs } from '../helpers/server.js';
import { create, trigger, waitRun } from '../async/common.js';

let server: XcronServer;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await Receiver.start();
  server = await XcronServer.start();
});
afterAll(async () => {
  await server?.stop();
  await receiver?.close();
  cleanupTempDirs();
});

const report = (runId: string, token: string, status: 'SUCCESS' | 'FAIL') =>
  call<{ status: string }>(server.baseUrl, 'POST', '/xcron/reportRun', { json: { run_id: runId, token, status } });

describe('reports and sync runs', () => {
  it('a report after a failed attempt of a sync run is refused; the retries decide the run', async () => {
    // attempt 1 fails; attempt 2 is held until the report has been answered, so the report
    // arrives during the second attempt, never after the run finished
    const g = gate();
    receiver.on('/sync', (_r, n) => (n === 1 ? { status: 500, body: 'first attempt fails' } : { status: 200, hold: g.promise }));
    const taskId = await create(server.baseUrl, { type: 1, format: '0 0 1 1 *', callback: { url: receiver.url('/sync') }, retry: { max_attempts: 3, backoff_ms: 200, max_backoff_ms: 200 } });
    const runId = await trigger(server.baseUrl, taskId);
    const first = await receiver.waitForRequest((r) => r.path === '/sync', 30_000, 'the first attempt');
    // the second attempt has arrived (and is held): the first one failed and a retry is under way
    await receiver.waitFor((rs) => rs.filter((r) => r.path === '/sync').length >= 2, 30_000, 'the second attempt');
    const token = header(first, 'x-xcron-report-token')!;
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const r = await report(runId, token, 'SUCCESS');
    expect(r.status).toBe(409);
    expect(r.body.code).toBe(1018);
    expect(r.body.message).toMatch(/is a sync run: its callback's HTTP answer decides it/);
    g.open();
    const run = await waitRun(server.baseUrl, taskId, runId, (x) => x.status === 'SUCCESS' || x.status === 'FAIL', 'the run finishes');
    expect(run).toMatchObject({ status: 'SUCCESS', attempts: 2, http_status: 200 });
    expect(receiver.to('/sync')).toHaveLength(2);
  });

  it('a report while the first attempt is in flight (a slow receiver, before it answers 500) is refused; the retries decide the run', async () => {
    // The window of issue 23 item 6: no answer yet, so nothing marked the run as retrying. The
    // store refuses every report for a sync run that has no 202 recorded, in the step that would
    // close it. (Before: the report waited up to 1 s for the answer, then closed the run as SUCCESS
    // while its retry still went out.)
    const g = gate();
    receiver.on('/slow', (_r, n) => (n === 1 ? { status: 500, body: 'slow failure', hold: g.promise } : { status: 200 }));
    const taskId = await create(server.baseUrl, { type: 1, format: '0 0 1 1 *', callback: { url: receiver.url('/slow') }, retry: { max_attempts: 3, backoff_ms: 200, max_backoff_ms: 200 } });
    const runId = await trigger(server.baseUrl, taskId);
    const first = await receiver.waitForRequest((r) => r.path === '/slow', 30_000, 'the first attempt (held)');
    const token = header(first, 'x-xcron-report-token')!;
    const r = await report(runId, token, 'SUCCESS');
    expect(r.status, r.text).toBe(409);
    expect(r.body.code).toBe(1018);
    const during = await waitRun(server.baseUrl, taskId, runId, (x) => x.status === 'PENDING' || x.status === 'RUNNING', 'still open');
    expect(during.end_time).toBeNull();
    g.open();
    const run = await waitRun(server.baseUrl, taskId, runId, (x) => x.status === 'SUCCESS' || x.status === 'FAIL', 'the run finishes');
    expect(run).toMatchObject({ status: 'SUCCESS', attempts: 2, http_status: 200 });
    expect(receiver.to('/slow')).toHaveLength(2);
  });

  it('a sync task whose callback answers 202 awaits a report, and the report closes it', async () => {
    receiver.on('/accepted', { status: 202 });
    const taskId = await create(server.baseUrl, { type: 1, format: '0 0 1 1 *', callback: { url: receiver.url('/accepted') } });
    const runId = await trigger(server.baseUrl, taskId);
    const got = await receiver.waitForRequest((r) => r.path === '/accepted', 30_000, 'the callback');
    await waitRun(server.baseUrl, taskId, runId, (x) => x.status === 'RUNNING' && typeof x.deadline === 'number', 'awaiting its report');
    const r = await report(runId, header(got, 'x-xcron-report-token')!, 'SUCCESS');
    expect(r.status).toBe(200);
    expect(r.body.data.status).toBe('SUCCESS');
  });

  it('an async task`s run takes its report', async () => {
    receiver.on('/async', { status: 200 });
    const taskId = await create(server.baseUrl, { type: 1, format: '0 0 1 1 *', completion: 'async', callback: { url: receiver.url('/async') } });
    const runId = await trigger(server.baseUrl, taskId);
    const got = await receiver.waitForRequest((r) => r.path === '/async', 30_000, 'the callback');
    const r = await report(runId, header(got, 'x-xcron-report-token')!, 'FAIL');
    expect(r.status).toBe(200);
    const run = await waitRun(server.baseUrl, taskId, runId, (x) => x.status === 'FAIL', 'closed by the report');
    expect(run.status).toBe('FAIL');
  });
});
