/**
 * Flow control and jitter on a standalone node (createXcron: real SQLite file, real HTTP API, a
 * real receiver). Limits are checked on the receiver's arrival times, never on elapsed time:
 * - rate N per period: in every window of (period - TOLERANCE) ms at most N fires arrive (the
 *   sliding window admits at most N per period; TOLERANCE absorbs the spread of the send latency,
 *   which here includes this process's own event loop: the node and the receiver share it),
 *   none is lost, and all arrive in the end;
 * - parallelism K with a slow receiver: never more than K requests open at once;
 * - jitter: each fire of a tick arrives no earlier than the tick plus its offset for the seed,
 *   with the tick's fire id.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { jitterOffset } from '../../src/task/index.js';
import { createXcron, type Xcron } from '../../src/xcron.js';
import { header, Receiver, type ReceivedRequest } from '../helpers/receiver.js';
import { maxInWindow } from '../helpers/windows.js';
import { waitUntil } from '../helpers/wait.js';
import { testConfig } from '../helpers/xcron.js';
import { silentLog as log, tempDir } from './fixtures.js';

const WAIT = 60_000;
/** The documented tolerance of a rate window on the receiver's clock (docs/flow-control.md). */
const TOLERANCE_MS = 500;
const SEED = 'flow-test-seed';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Env {
  x: Xcron;
  rx: Receiver;
  base: string;
}

async function node(raw: Record<string, unknown>): Promise<Env> {
  const rx = await Receiver.start();
  cleanups.push(() => rx.close());
  const t = tempDir('xcron-flow-');
  cleanups.push(() => t.remove());
  const x = await createXcron(testConfig(t.dir, { scheduler: { scan_interval_ms: 200, lookahead_ms: 5000, jitter_seed: SEED }, ...raw }), { log, processMetrics: false });
  cleanups.push(() => x.stop());
  await x.start();
  const { port } = await x.listen();
  return { x, rx, base: `http://127.0.0.1:${port}` };
}

async function post(base: string, path: string, body: unknown): Promise<{ code: number; message: string; data: Record<string, unknown> }> {
  const res = await fetch(`${base}/xcron/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return (await res.json()) as { code: number; message: string; data: Record<string, unknown> };
}

async function create(base: string, body: Record<string, unknown>): Promise<string> {
  const r = await post(base, 'createTask', body);
  expect(r, r.message).toMatchObject({ code: 0 });
  return r.data.task_id as string;
}


/** One-shot tasks due together at `at` (unix ms), each with `extra` fields. */
async function burst(e: Env, n: number, path: string, at: number, extra: Record<string, unknown>): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await create(e.base, { type: 2, format: String(at), callback: { url: e.rx.url(path), body: { i } }, ...extra }));
  return ids;
}

describe('flow control (standalone)', () => {
  it('a rate of N per period: fires over it wait; none is lost, none failed, and the delay shows in /metrics', async () => {
    const e = await node({ flow: { partner: { rate: 3, period_ms: 2000 } } });
    const ids = await burst(e, 12, '/rate', Date.now() + 2000, { flow_key: 'partner' });
    const got = await e.rx.waitFor((r) => r.filter((q) => q.path === '/rate').length >= 12, WAIT, '12 callbacks through the rate limit');
    const arrivals = got.filter((q) => q.path === '/rate');
    expect(new Set(arrivals.map((q) => header(q, 'x-xcron-task-id'))).size).toBe(12);
    expect(new Set(arrivals.map((q) => header(q, 'x-xcron-task-id')))).toEqual(new Set(ids));
    const t0 = Math.min(...arrivals.map((q) => q.arrivedAt));
    const trace = arrivals.map((q) => q.arrivedAt - t0).join(' ');
    expect(maxInWindow(arrivals.map((q) => q.arrivedAt), 2000 - TOLERANCE_MS), trace).toBeLessThanOrEqual(3);
    // Every run succeeded on its first attempt (waiting counts no attempt).
    // (The outcome is recorded shortly after the callback's answer: wait for it.)
    for (const id of ids) {
      const q = await waitUntil(
        async () => (await fetch(`${e.base}/xcron/queryTask?task_id=${id}`)).json() as Promise<{ data?: { last_status?: string | null } }>,
        (r) => r.data?.last_status != null,
        WAIT,
        `the outcome of ${id} recorded`,
      );
      expect(q, JSON.stringify(q)).toMatchObject({ code: 0, data: { flow_key: 'partner', last_status: 'SUCCESS' } });
    }
    for (const q of arrivals) expect(header(q, 'x-xcron-attempt')).toBe('1');
    const metrics = await (await fetch(`${e.base}/metrics`)).text();
    expect(metrics).toMatch(/xcron_flow_delay_seconds_count\{key="partner"\} 12/);
    // 12 fires at 3 per 2 s: at least the last 9 waited (the delay sum says so: > 2 s in all).
    const sum = Number(/xcron_flow_delay_seconds_sum\{key="partner"\} ([\d.e+-]+)/.exec(metrics)?.[1]);
    expect(sum).toBeGreaterThan(2);
    expect(metrics).toMatch(/xcron_flow_waiting_fires\{key="partner"\} 0/);
  }, 120_000);

  it('a parallelism of K with a slow receiver: never more than K callbacks open at once, all delivered', async () => {
    const e = await node({ flow: { slow: { parallelism: 2 } } });
    const HOLD = 400;
    e.rx.on('/slow', { delayMs: HOLD });
    await burst(e, 8, '/slow', Date.now() + 1500, { flow_key: 'slow' });
    const got = (await e.rx.waitFor((r) => r.filter((q) => q.path === '/slow').length >= 8, WAIT, '8 slow callbacks')).filter((q) => q.path === '/slow');
    // A request is open from its arrival until its answer (at least HOLD ms later); the next one
    // under the cap is sent only after an answer came back.
    const open = (t: number): number => got.filter((q) => q.arrivedAt <= t && t < q.arrivedAt + HOLD).length;
    expect(Math.max(...got.map((q) => open(q.arrivedAt)))).toBeLessThanOrEqual(2);
    expect(Math.max(...got.map((q) => open(q.arrivedAt)))).toBe(2);
  }, 120_000);

  it('an async run holds its parallelism permit until it is reported', async () => {
    const e = await node({ flow: { jobs: { parallelism: 1 } } });
    e.rx.on('/job', { status: 202 });
    await burst(e, 2, '/job', Date.now() + 1500, { flow_key: 'jobs' });
    const [first] = (await e.rx.waitFor((r) => r.some((q) => q.path === '/job'), WAIT, 'the first async job')).filter((q) => q.path === '/job');
    // The first run is RUNNING (awaiting its report): the second waits on the permit, visibly.
    const waiting = async (): Promise<string> => (await (await fetch(`${e.base}/metrics`)).text()).match(/xcron_flow_waiting_fires\{key="jobs"\} (\d+)/)?.[1] ?? '';
    const deadline = Date.now() + WAIT;
    while ((await waiting()) !== '1' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await waiting()).toBe('1');
    expect(e.rx.to('/job')).toHaveLength(1);
    const r = await post(e.base, 'reportRun', { run_id: header(first!, 'x-xcron-run-id'), token: header(first!, 'x-xcron-report-token'), status: 'SUCCESS' });
    expect(r, r.message).toMatchObject({ code: 0 });
    // The report frees the permit: the second job goes out.
    await e.rx.waitFor((q) => q.filter((x) => x.path === '/job').length >= 2, WAIT, 'the second async job after the report');
  }, 120_000);

  it("a task's own limit (flow): a periodic task's fires wait on it", async () => {
    const e = await node({});
    const id = await create(e.base, { type: 1, format: '* * * * * *', callback: { url: e.rx.url('/own') }, flow: { rate: 1, period_ms: 2500 } });
    const got = (await e.rx.waitFor((r) => r.filter((q) => q.path === '/own').length >= 3, WAIT, '3 callbacks of a task with its own limit')).filter((q) => q.path === '/own');
    expect(maxInWindow(got.map((q) => q.arrivedAt), 2500 - TOLERANCE_MS)).toBe(1);
    const q = await (await fetch(`${e.base}/xcron/queryTask?task_id=${id}`)).json();
    expect(q).toMatchObject({ data: { flow: { rate: 1, period_ms: 2500, parallelism: 0 } } });
    const metrics = await (await fetch(`${e.base}/metrics`)).text();
    expect(metrics).toMatch(/xcron_flow_delay_seconds_count\{key="task"\} [1-9]/);
  }, 120_000);

  it('refuses bad flow and jitter fields with 1009 naming the field', async () => {
    const e = await node({ flow: { partner: { rate: 3 } } });
    const url = e.rx.url('/x');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ type: 1, format: '* * * * *', callback: { url }, flow_key: 'nope' }, /invalid 'flow_key': no flow limit named "nope".*configured: partner/],
      [{ type: 1, format: '* * * * *', callback: { url }, flow_key: 'partner', flow: { rate: 1 } }, /invalid 'flow': a task has either/],
      [{ type: 1, format: '* * * * *', callback: { url }, flow: {} }, /invalid 'flow': sets neither a rate nor a parallelism/],
      [{ type: 1, format: '* * * * *', callback: { url }, flow: { rate: 1, burst: 2 } }, /invalid 'flow.burst': unknown field/],
      [{ type: 1, format: '* * * * *', callback: { url }, flow: { rate: -1 } }, /invalid 'flow.rate': must be an integer from 0/],
      [{ type: 1, format: '* * * * *', callback: { url }, jitter_ms: 3_600_001 }, /invalid 'jitter_ms': must be an integer from 0 to 3600000/],
      [{ type: 2, format: String(Math.floor(Date.now() / 1000) + 600), callback: { url }, jitter_ms: 1000 }, /invalid 'jitter_ms': applies to periodic tasks/],
    ];
    for (const [body, msg] of cases) {
      const r = await post(e.base, 'createTask', body);
      expect(r.code, JSON.stringify(body)).toBe(1009);
      expect(r.message).toMatch(msg);
    }
    const r = await post(e.base, 'createTask', { type: 1, format: '* * * * *', callback: { url }, jitter_ms: 'x' });
    expect(r).toMatchObject({ code: 1000 });
    expect(r.message).toMatch(/field 'jitter_ms' must be an integer/);
    // An update can switch from a named limit to the task's own by clearing the other.
    const id = await create(e.base, { type: 1, format: '0 0 1 1 *', callback: { url }, flow_key: 'partner', jitter_ms: 500 });
    expect(await post(e.base, 'updateTask', { task_id: id, flow: { parallelism: 1 } })).toMatchObject({ code: 1009 });
    expect(await post(e.base, 'updateTask', { task_id: id, flow_key: null, flow: { parallelism: 1 }, jitter_ms: null })).toMatchObject({ code: 0 });
    const q = (await (await fetch(`${e.base}/xcron/queryTask?task_id=${id}`)).json()) as { data: Record<string, unknown> };
    expect(q.data.flow).toEqual({ rate: 0, period_ms: 1000, parallelism: 1 });
    expect(q.data.flow_key).toBeUndefined();
    expect(q.data.jitter_ms).toBeUndefined();
  }, 60_000);
});

describe('jitter (standalone)', () => {
  it("spreads a periodic task's fires after each tick by the seeded offset; the fire id stays the tick's", async () => {
    const e = await node({});
    const JITTER = 800;
    const id = await create(e.base, { type: 1, format: '* * * * * *', callback: { url: e.rx.url('/jit') }, jitter_ms: JITTER });
    const got: ReceivedRequest[] = (await e.rx.waitFor((r) => r.filter((q) => q.path === '/jit').length >= 6, WAIT, '6 jittered callbacks')).filter((q) => q.path === '/jit');
    const offsets: number[] = [];
    for (const q of got) {
      const tick = Number(header(q, 'x-xcron-scheduled-time'));
      expect(tick % 1000).toBe(0); // the tick, not the jittered time
      expect(header(q, 'x-xcron-fire-id')).toBe(`${id}:${tick}`);
      const off = jitterOffset(id, tick, JITTER, SEED);
      offsets.push(off);
      // never before its planned time (the receiver and the node share this machine's clock)
      expect(q.arrivedAt).toBeGreaterThanOrEqual(tick + off);
    }
    // the offsets differ from tick to tick (six equal draws in [0, 800) would be a broken hash)
    expect(new Set(offsets).size).toBeGreaterThan(1);
    const q = await (await fetch(`${e.base}/xcron/queryTask?task_id=${id}`)).json();
    expect(q).toMatchObject({ data: { jitter_ms: JITTER } });
  }, 120_000);
});
