/**
 * Issue 4 §4 and §6 with real delivery: child tasks (on_success), failure alerts to the task's
 * alert_url or the global webhook, and the auto-pause after max_consecutive_failures.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gate, header, Receiver, type Gate, type ReceivedRequest } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { Harness, NODE_ID, type RunView } from './harness.js';
import type { AlertEvent } from '../../src/scheduler/index.js';

const fire = (r: ReceivedRequest): string => header(r, 'x-xcron-fire-id') ?? '';

type AlertBody = AlertEvent;
const alertOf = (r: ReceivedRequest): AlertBody => JSON.parse(r.body) as AlertBody;

let h: Harness;
let rx: Receiver;
beforeEach(async () => {
  rx = await Receiver.start();
  h = await Harness.start();
});
afterEach(async () => {
  await rx.close();
  await h.close();
});

async function finalRun(taskId: string, runId: string): Promise<RunView> {
  const runs = await waitUntil(
    () => h.runs(taskId),
    (rs) => rs.some((r) => r.run_id === runId && (r.status === 'SUCCESS' || r.status === 'FAIL')),
    20_000,
    `run ${runId} to finish`,
  );
  return runs.find((r) => r.run_id === runId)!;
}

/** Alerts received on a path, parsed. */
const alertsAt = (path: string): AlertBody[] => rx.to(path).map(alertOf);

// ---------------------------------------------------------------------------------------------

describe('child tasks (on_success)', () => {
  it('each child is triggered once per successful parent run; the receiver sees the child callbacks', async () => {
    const triggered: { parent_id: string; child_id: string; run_id: string }[] = [];
    h.scheduler.on('childTriggered', (e) => triggered.push(e));
    const c1 = await h.create({ type: 1, format: '0 0 1 1 *', paused: true, callback: { url: rx.url('/c1'), body: { child: 1 } } });
    const c2 = await h.create({ type: 2, format: String(Math.floor(Date.now() / 1000) + 86_400), callback: { url: rx.url('/c2') } });
    const parent = await h.create({ type: 1, format: '0 0 1 1 *', on_success: [c1, c2], callback: { url: rx.url('/parent') } });
    await finalRun(parent, (await h.trigger(parent)).run_id);
    await rx.waitFor((rs) => rs.some((r) => r.path === '/c1') && rs.some((r) => r.path === '/c2'), 10_000, 'both children after run 1');
    await finalRun(parent, (await h.trigger(parent)).run_id);
    await rx.waitFor((rs) => rs.filter((r) => r.path === '/c1').length >= 2 && rs.filter((r) => r.path === '/c2').length >= 2, 10_000, 'both children after run 2');
    const c1reqs = rx.to('/c1');
    expect(c1reqs.map((r) => header(r, 'x-xcron-task-id'))).toEqual([c1, c1]);
    for (const r of c1reqs) expect(fire(r)).toMatch(new RegExp(`^${c1}:\\d+$`));
    expect(new Set(c1reqs.map(fire)).size).toBe(2);
    expect(JSON.parse(c1reqs[0]!.body)).toEqual({ child: 1 });
    // Child runs are recorded and counted; the paused child stays paused, the one-shot keeps its time.
    await waitUntil(() => h.runs(c1), (rs) => rs.length === 2 && rs.every((r) => r.status === 'SUCCESS'), 10_000, 'child 1 runs SUCCESS');
    expect(await h.query(c1)).toMatchObject({ state: 'paused', run_count: 2 });
    expect(await h.query(c2)).toMatchObject({ state: 'active', run_count: 2 });
    expect(triggered.filter((e) => e.parent_id === parent).map((e) => e.child_id).sort()).toEqual([c1, c1, c2, c2].sort());
    expect(rx.to('/c1')).toHaveLength(2);
    expect(rx.to('/c2')).toHaveLength(2);
  });

  it('a failed parent run triggers nothing; the next successful one triggers the child once', async () => {
    let fail = true;
    rx.on('/parent', () => (fail ? { status: 404 } : { status: 200 }));
    const triggered: string[] = [];
    h.scheduler.on('childTriggered', (e) => triggered.push(e.child_id));
    const child = await h.create({ type: 1, format: '0 0 1 1 *', callback: { url: rx.url('/child') } });
    const parent = await h.create({ type: 1, format: '0 0 1 1 *', on_success: [child], callback: { url: rx.url('/parent') } });
    const failed = await finalRun(parent, (await h.trigger(parent)).run_id);
    expect(failed.status).toBe('FAIL');
    await h.waitAlert((a) => a.run_id === failed.run_id, 10_000, 'the failure handling of the parent run');
    fail = false;
    const okRun = await finalRun(parent, (await h.trigger(parent)).run_id);
    expect(okRun.status).toBe('SUCCESS');
    await rx.waitFor((rs) => rs.some((r) => r.path === '/child'), 10_000, 'the child callback');
    const runs = await waitUntil(() => h.runs(child), (rs) => rs.length >= 1 && rs.every((r) => r.status === 'SUCCESS'), 10_000, 'the child run');
    expect(runs).toHaveLength(1);
    expect(rx.to('/child')).toHaveLength(1);
    expect(triggered).toEqual([child]);
  });

  it('a chain A -> B -> C runs down on success', async () => {
    const c = await h.create({ type: 1, format: '0 0 1 1 *', callback: { url: rx.url('/C') } });
    const b = await h.create({ type: 1, format: '0 0 1 1 *', on_success: [c], callback: { url: rx.url('/B') } });
    const a = await h.create({ type: 1, format: '0 0 1 1 *', on_success: [b], callback: { url: rx.url('/A') } });
    await h.trigger(a);
    const all = await rx.waitFor((rs) => rs.some((r) => r.path === '/C'), 10_000, 'the grandchild callback');
    expect(all.map((r) => r.path)).toEqual(['/A', '/B', '/C']);
  });

  it('the cycle check also holds once children exist: closing A -> B -> C -> A is refused (1009)', async () => {
    const c = await h.create({ type: 1, format: '0 0 1 1 *', callback: { url: rx.url('/C') } });
    const b = await h.create({ type: 1, format: '0 0 1 1 *', on_success: [c], callback: { url: rx.url('/B') } });
    const a = await h.create({ type: 1, format: '0 0 1 1 *', on_success: [b], callback: { url: rx.url('/A') } });
    const r = await h.req('/xcron/updateTask', { task_id: c, on_success: [a] });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe(1009);
    expect(r.body.message).toBe(`invalid 'on_success': it would form a cycle ${c} -> ${a} -> ${b} -> ${c}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('alerts and auto-pause', () => {
  it("a finally failing run POSTs a run_failed alert to the task's alert_url, else to the global webhook", async () => {
    await h.close();
    h = await Harness.start({ alertUrl: rx.url('/global') });
    rx.on('/bad', { status: 500, body: 'boom' });
    const own = await h.create({ type: 1, format: '0 0 1 1 *', name: 'own-alerts', alert_url: rx.url('/own'), retry: { max_attempts: 2, backoff_ms: 10, max_backoff_ms: 20 }, callback: { url: rx.url('/bad') } });
    const glob = await h.create({ type: 1, format: '0 0 1 1 *', retry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 }, callback: { url: rx.url('/bad') } });
    const t1 = await h.trigger(own);
    const a1 = alertOf(await rx.waitForRequest((r) => r.path === '/own', 10_000, 'the alert at alert_url'));
    expect(a1).toMatchObject({ event: 'run_failed', task_id: own, task_name: 'own-alerts', run_id: t1.run_id, scheduled_time: t1.scheduled_time, error: 'HTTP 500', http_status: 500, attempts: 2, node: NODE_ID });
    const t2 = await h.trigger(glob);
    const a2 = alertOf(await rx.waitForRequest((r) => r.path === '/global', 10_000, 'the alert at the global webhook'));
    expect(a2).toMatchObject({ event: 'run_failed', task_id: glob, run_id: t2.run_id, error: 'HTTP 500', attempts: 1 });
    // Each alert went to one place only.
    expect(alertsAt('/global').map((a) => a.task_id)).toEqual([glob]);
    expect(alertsAt('/own').map((a) => a.task_id)).toEqual([own]);
    const alertReq = rx.to('/own')[0]!;
    expect(alertReq.method).toBe('POST');
    expect(header(alertReq, 'content-type')).toBe('application/json');
  });

  it('a successful run sends no alert', async () => {
    const id = await h.create({ type: 1, format: '0 0 1 1 *', alert_url: rx.url('/alerts'), callback: { url: rx.url('/fine') } });
    rx.on('/bad', { status: 404 });
    const bad = await h.create({ type: 1, format: '0 0 1 1 *', alert_url: rx.url('/alerts'), callback: { url: rx.url('/bad') } });
    await finalRun(id, (await h.trigger(id)).run_id);
    await h.trigger(bad);
    await rx.waitFor((rs) => rs.some((r) => r.path === '/alerts'), 10_000, 'the failing task alert');
    expect(alertsAt('/alerts').map((a) => a.task_id)).toEqual([bad]);
  });

  it('max_consecutive_failures=2: the task pauses itself after 2 final failures (a success in between resets the count) and a task_paused alert arrives', async () => {
    let ok = false;
    rx.on('/cb', () => (ok ? { status: 200 } : { status: 404 }));
    const id = await h.create({ type: 1, format: '0 0 1 1 *', max_consecutive_failures: 2, alert_url: rx.url('/alerts'), callback: { url: rx.url('/cb') } });
    const r1 = await h.trigger(id); // FAIL
    await h.waitAlert((a) => a.run_id === r1.run_id, 10_000, 'alert for run 1');
    ok = true;
    await finalRun(id, (await h.trigger(id)).run_id); // SUCCESS resets
    ok = false;
    const r3 = await h.trigger(id); // FAIL (1 consecutive)
    await h.waitAlert((a) => a.run_id === r3.run_id, 10_000, 'alert for run 3');
    expect((await h.query(id)).state).toBe('active');
    const r4 = await h.trigger(id); // FAIL (2 consecutive) -> paused
    const paused = alertOf(await rx.waitForRequest((r) => r.path === '/alerts' && alertOf(r).event === 'task_paused', 10_000, 'the task_paused alert'));
    expect(paused).toMatchObject({ event: 'task_paused', task_id: id, run_id: r4.run_id, consecutive_failures: 2, error: 'HTTP 404' });
    expect(alertsAt('/alerts').filter((a) => a.event === 'task_paused')).toHaveLength(1);
    expect(alertsAt('/alerts').filter((a) => a.event === 'run_failed').map((a) => a.run_id)).toEqual([r1.run_id, r3.run_id, r4.run_id]);
    expect((await h.query(id)).state).toBe('paused');
  });

  it('global [alert] max_consecutive_failures: a failing periodic task pauses itself and alerts the global webhook', async () => {
    await h.close();
    h = await Harness.start({ alertUrl: rx.url('/global'), maxConsecutiveFailures: 2 });
    rx.on('/down', { status: 410 });
    const id = await h.create({ type: 1, format: '* * * * * *', callback: { url: rx.url('/down') } });
    const p = alertOf(await rx.waitForRequest((r) => r.path === '/global' && alertOf(r).event === 'task_paused', 15_000, 'task_paused at the global webhook'));
    expect(p).toMatchObject({ task_id: id, consecutive_failures: 2, http_status: 410 });
    const t = await h.query(id);
    expect(t.state).toBe('paused');
    const failedBefore = alertsAt('/global').filter((a) => a.event === 'run_failed');
    expect(failedBefore.length).toBeGreaterThanOrEqual(2);
    // Paused for good: the runs stop (a run committed before the pause may still finish).
    const runs = await h.runs(id);
    expect(runs.filter((r) => r.status === 'FAIL').length).toBeGreaterThanOrEqual(2);
  });

  it('auto-pause also counts when the next run is already in flight (a slow failing receiver on a per-second task)', async () => {
    // Each callback answers 404 after 1.5 s while the task fires every second, so when a run fails
    // the next one is always in flight. Expected: paused after 2 consecutive final failures.
    rx.on('/slow404', { status: 404, delayMs: 1500 });
    const id = await h.create({ type: 1, format: '* * * * * *', max_consecutive_failures: 2, alert_url: rx.url('/alerts'), timeout_ms: 10_000, callback: { url: rx.url('/slow404') } });
    const events = await rx.waitFor(
      (rs) => {
        const a = rs.filter((r) => r.path === '/alerts').map(alertOf);
        return a.some((x) => x.event === 'task_paused') || a.filter((x) => x.event === 'run_failed').length >= 4;
      },
      25_000,
      'a task_paused alert, or four run_failed alerts',
    );
    const alerts = events.filter((r) => r.path === '/alerts').map(alertOf);
    const failures = alerts.filter((a) => a.event === 'run_failed').length;
    expect(alerts.some((a) => a.event === 'task_paused' && a.task_id === id), `no task_paused alert after ${failures} consecutive final failures`).toBe(true);
  });

  it('auto-pause with manual runs in flight: pauses at the 2nd consecutive failure, not at a later one', async () => {
    const gates = new Map<string, Gate>();
    const gateFor = (f: string): Gate => {
      let g = gates.get(f);
      if (!g) {
        g = gate();
        gates.set(f, g);
      }
      return g;
    };
    rx.on('/held', (r) => ({ status: 404, hold: gateFor(fire(r)).promise }));
    const id = await h.create({ type: 1, format: '0 0 1 1 *', max_consecutive_failures: 2, alert_url: rx.url('/alerts'), timeout_ms: 30_000, callback: { url: rx.url('/held') } });
    const a = await h.trigger(id);
    const b = await h.trigger(id);
    const c = await h.trigger(id);
    await rx.waitFor((rs) => rs.filter((r) => r.path === '/held').length === 3, 10_000, 'three runs in flight');
    gateFor(a.run_id).open();
    await h.waitAlert((x) => x.event === 'run_failed' && x.run_id === a.run_id, 10_000, 'run A failed');
    gateFor(b.run_id).open();
    await h.waitAlert((x) => x.event === 'run_failed' && x.run_id === b.run_id, 10_000, 'run B failed');
    // A and B are two consecutive final failures. C is still in flight.
    gateFor(c.run_id).open();
    await h.waitAlert((x) => x.event === 'run_failed' && x.run_id === c.run_id, 10_000, 'run C failed');
    const paused = await h.waitAlert((x) => x.event === 'task_paused', 10_000, 'the task_paused alert');
    expect(paused.run_id, 'the task should pause at the second consecutive failure (run B)').toBe(b.run_id);
  });
});
