/**
 * Flow control across a 3-node cluster of real ./xcron_server processes on one real redis-server:
 * one-shot tasks spread over every node's slots all name the same flow key, so the limit is only
 * kept if the nodes share it (in Redis). Checked on the receiver's arrival times with the
 * documented tolerance (docs/flow-control.md), never on elapsed time: at most `rate` arrivals in
 * any window of (period - tolerance), never more than `parallelism` callbacks open, none lost, and
 * the fires were delivered by more than one node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { header, Receiver, type ReceivedRequest } from '../helpers/receiver.js';
import { maxInWindow } from '../helpers/windows.js';
import { clusterSuite } from './suite.js';
import { api, until } from './procs.js';

const SLOTS = 32;
/** Three node processes and their delivery threads on a loaded machine: a wider send-latency spread than standalone. */
const TOLERANCE_MS = 500;
const PERIOD_MS = 2000;
const RATE = 4;
const PAR = 2;
let rx: Receiver;
const { nodes } = clusterSuite({ tag: 'flow', slots: SLOTS, toml: `[flow.shared]\nrate = ${RATE}\nperiod_ms = ${PERIOD_MS}\n\n[flow.par]\nparallelism = ${PAR}\n` });
beforeAll(async () => {
  rx = await Receiver.start();
});
afterAll(() => rx?.close());

/** One-shot tasks due together, created round-robin through the nodes. */
async function burst(n: number, path: string, at: number, flowKey: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await api<{ task_id: string }>(nodes[i % nodes.length]!.base, 'POST', '/xcron/createTask', { type: 2, format: String(at), callback: { url: rx.url(path), body: { i } }, flow_key: flowKey });
    expect(r.body.code, r.body.message).toBe(0);
    ids.push(r.body.data.task_id);
  }
  return ids;
}

const nodeOf = (q: ReceivedRequest): string => (header(q, 'user-agent') ?? '').replace(/^xcron-test\//, '');


describe('flow control across nodes', () => {
  it(`a shared rate of ${RATE} per ${PERIOD_MS} ms holds over three nodes; every fire arrives once`, async () => {
    const N = 20;
    const ids = await burst(N, '/shared', Date.now() + 3000, 'shared');
    const got = (await rx.waitFor((r) => r.filter((q) => q.path === '/shared').length >= N, 90_000, `${N} callbacks through the shared rate`)).filter((q) => q.path === '/shared');
    expect(new Set(got.map((q) => header(q, 'x-xcron-task-id')))).toEqual(new Set(ids));
    expect(got).toHaveLength(N);
    expect(new Set(got.map(nodeOf)).size).toBeGreaterThan(1);
    const t0 = Math.min(...got.map((q) => q.arrivedAt));
    const trace = got.map((q) => `${q.arrivedAt - t0}@${nodeOf(q)}`).join(' ');
    expect(maxInWindow(got.map((q) => q.arrivedAt), PERIOD_MS - TOLERANCE_MS), trace).toBeLessThanOrEqual(RATE);
    // each node reports its own waits; together they cover every fire
    let admitted = 0;
    for (const n of nodes) {
      const text = await (await fetch(`${n.base}/metrics`)).text();
      admitted += Number(/xcron_flow_delay_seconds_count\{key="shared"\} (\d+)/.exec(text)?.[1] ?? 0);
    }
    expect(admitted).toBe(N);
  }, 180_000);

  it(`a shared parallelism of ${PAR}: never more open at once over three nodes, with a slow receiver`, async () => {
    const N = 9;
    const HOLD = 500;
    rx.on('/par', { delayMs: HOLD });
    await burst(N, '/par', Date.now() + 3000, 'par');
    const got = (await rx.waitFor((r) => r.filter((q) => q.path === '/par').length >= N, 90_000, `${N} callbacks through the shared parallelism`)).filter((q) => q.path === '/par');
    expect(new Set(got.map(nodeOf)).size).toBeGreaterThan(1);
    // A request is open from its arrival until at least HOLD ms later; another node sees the freed
    // permit only after the answer reached the sender and its release reached Redis.
    const open = (t: number): number => got.filter((q) => q.arrivedAt <= t && t < q.arrivedAt + HOLD).length;
    expect(Math.max(...got.map((q) => open(q.arrivedAt)))).toBeLessThanOrEqual(PAR);
  }, 180_000);
});
