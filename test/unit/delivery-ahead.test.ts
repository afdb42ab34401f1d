/**
 * Deliveries handed over ahead of their due time (DeliveryJob.not_before): the DueGate they wait
 * at, their sends against a real receiver (never before the due time), the connections opened
 * ahead for them ([delivery] prewarm_connections) and a stop before the due time.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, SystemClock } from '../../src/clock/index.js';
import { DueGate } from '../../src/delivery/due-gate.js';
import { Delivery, type DeliveryJob, type DeliveryOptions } from '../../src/delivery/index.js';
import { Receiver, header } from '../helpers/receiver.js';

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(): Promise<Receiver> {
  const r = await Receiver.start();
  cleanups.push(() => r.close());
  return r;
}

function delivery(over: Partial<DeliveryOptions> = {}): Delivery {
  const d = new Delivery({ clock: new SystemClock(), log, userAgent: 'xcron/test', globalConcurrency: 64, perOriginConcurrency: 8, maxResponseBytes: 65_536, signingSecrets: [], random: () => 0, ...over });
  cleanups.push(() => d.close());
  return d;
}

function job(url: string, i: number, notBefore: number): DeliveryJob {
  return {
    run_id: `t${i}:${notBefore}`,
    task_id: `t${i}`,
    scheduled_time: notBefore,
    url,
    method: 'POST',
    headers: null,
    body: JSON.stringify({ i }),
    timeout_ms: 10_000,
    retry: { max_attempts: 3, backoff_ms: 10, max_backoff_ms: 10 },
    first_attempt: 1,
    not_before: notBefore,
  };
}

describe('DueGate', () => {
  it('opens at the due time, not before; one timer per due time however many wait', async () => {
    const clock = new ManualClock();
    const gate = new DueGate(clock, new AbortController().signal);
    const at = clock.now() + 500;
    let opened = 0;
    for (let i = 0; i < 100; i++) void gate.until(at).then(() => opened++);
    void gate.until(at + 1).then(() => opened++);
    expect(clock.pending()).toBe(2);
    clock.advance(499);
    await Promise.resolve();
    expect(opened).toBe(0);
    clock.advance(1);
    await vi.waitFor(() => expect(opened).toBe(100));
    clock.advance(1);
    await vi.waitFor(() => expect(opened).toBe(101));
    expect(gate.size()).toBe(0);
  });

  it('a due time already reached resolves at once; stopping opens every gate', async () => {
    const clock = new ManualClock();
    const stop = new AbortController();
    const gate = new DueGate(clock, stop.signal);
    await gate.until(clock.now());
    let opened = false;
    void gate.until(clock.now() + 60_000).then(() => (opened = true));
    stop.abort();
    await vi.waitFor(() => expect(opened).toBe(true));
    expect(clock.pending()).toBe(0);
    await gate.until(clock.now() + 60_000); // stopped: nothing waits any more
  });
});

describe('Delivery: jobs handed over ahead (not_before)', () => {
  it('sends each at its due time, never before, with its attempt and start time from then', async () => {
    const r = await receiver();
    const d = delivery();
    const due = Date.now() + 400;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => d.deliver(job(r.url('/hook'), i, due))));
    expect(results.every((x) => x.ok && x.attempts === 1)).toBe(true);
    expect(r.requests).toHaveLength(20);
    for (const q of r.requests) {
      expect(q.arrivedAt).toBeGreaterThanOrEqual(due);
      expect(header(q, 'x-xcron-attempt')).toBe('1');
    }
    for (const x of results) expect(x.start_time).toBeGreaterThanOrEqual(due);
  });

  it('opens up to prewarm_connections connections ahead, no more than the fires waiting, and uses them', async () => {
    const r = await receiver();
    const d = delivery({ prewarmConnections: 3 });
    const due = Date.now() + 60_000; // far enough to look at the connections before anything is sent
    const one = d.deliver(job(r.url('/one'), 0, due));
    await vi.waitFor(() => expect(r.connectionsAccepted).toBe(1), { timeout: 10_000 });
    const more = Array.from({ length: 9 }, (_, i) => d.deliver(job(r.url('/hook'), i + 1, due)));
    await vi.waitFor(() => expect(r.connectionsAccepted).toBe(3), { timeout: 10_000 });
    expect(r.requests).toHaveLength(0);
    // nothing else opens ahead: the cap is 3, though 10 fires wait
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.connectionsAccepted).toBe(3);
    // stopping before the due time: nothing is sent, each delivery resolves as aborted with no attempt
    expect(await d.drain(5000)).toBe(true);
    const results = await Promise.all([one, ...more]);
    expect(results.every((x) => x.aborted && !x.ok && x.attempts === 0)).toBe(true);
    expect(r.requests).toHaveLength(0);
  });

  it('the pre-opened connections carry the first callbacks at the due time (no new handshake for them)', async () => {
    const r = await receiver();
    const clock = new ManualClock(Date.now());
    const d = delivery({ prewarmConnections: 4, perOriginConcurrency: 4, clock });
    const due = clock.now() + 1000;
    const p = Array.from({ length: 4 }, (_, i) => d.deliver(job(r.url('/hook'), i, due)));
    await vi.waitFor(() => expect(r.connectionsAccepted).toBe(4), { timeout: 10_000 });
    expect(r.requests).toHaveLength(0);
    clock.advanceTo(due);
    const results = await Promise.all(p);
    expect(results.every((x) => x.ok && x.attempts === 1)).toBe(true);
    expect(r.requests).toHaveLength(4);
    // the 4 requests went over the 4 connections opened ahead: none was opened for them
    expect(r.connectionsAccepted).toBe(4);
  });

  it('fires spread over time open no more than one connection ahead (they do not need them in parallel)', async () => {
    const r = await receiver();
    const clock = new ManualClock(Date.now());
    const d = delivery({ prewarmConnections: 3, clock });
    const t = clock.now() + 1000;
    const p = Array.from({ length: 5 }, (_, i) => d.deliver(job(r.url('/hook'), i, t + i * 100)));
    await vi.waitFor(() => expect(r.connectionsAccepted).toBe(1), { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.connectionsAccepted).toBe(1);
    clock.advanceTo(t + 400);
    expect((await Promise.all(p)).every((x) => x.ok)).toBe(true);
  });

  it('prewarm_connections = 0 opens nothing ahead', async () => {
    const r = await receiver();
    const clock = new ManualClock(Date.now());
    const d = delivery({ prewarmConnections: 0, clock });
    const due = clock.now() + 1000;
    const p = d.deliver(job(r.url('/hook'), 0, due));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.connectionsAccepted).toBe(0);
    clock.advanceTo(due);
    expect((await p).ok).toBe(true);
    expect(r.connectionsAccepted).toBe(1);
  });
});
