/**
 * The lease check before a send (issue 27): the lease table shared with the delivery thread, and
 * `Delivery` refusing to write a request whose lease lapsed (first attempt, retry after backoff,
 * and right before the write), and waiting for an attempt 2+ to be recorded before sending it.
 * Real HTTP receiver on a free port; the lease clock is a number the test moves.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { LeaseGate, LeaseTable } from '../../src/cluster/lease-table.js';
import { Delivery, type DeliveryJob } from '../../src/delivery/index.js';
import { redeliveryAttempt } from '../../src/scheduler/attempts.js';
import { Receiver } from '../helpers/receiver.js';

const log = pino({ level: 'silent' });

describe('LeaseTable / LeaseGate', () => {
  it('holds a lease only with its token and until its deadline; another thread reads the same buffer', () => {
    let now = 1000;
    const t = new LeaseTable(4, () => now);
    const reader = new LeaseGate(t.buffer, () => now);
    expect(reader.holds(1, 7)).toBe(false);
    t.set(1, 7, 2000);
    expect(reader.holds(1, 7)).toBe(true);
    expect(reader.holds(1, 8)).toBe(false);
    expect(reader.holds(2, 7)).toBe(false);
    now = 2001;
    expect(reader.holds(1, 7)).toBe(false); // lapsed: no renewal in time
    t.set(1, 9, 5000); // taken again under a new token: the old one stays invalid
    expect(reader.holds(1, 7)).toBe(false);
    expect(reader.holds(1, 9)).toBe(true);
    t.drop(1);
    expect(reader.holds(1, 9)).toBe(false);
    expect(reader.handedBack(1, 9)).toBe(false);
    t.set(3, 4, 5000);
    t.drop(3, true);
    expect(reader.holds(3, 4)).toBe(false);
    expect(reader.handedBack(3, 4)).toBe(true);
    expect(reader.holds(99, 4)).toBe(false);
  });
});

describe('Delivery with a lease gate', () => {
  let rx: Receiver;
  let d: Delivery | null = null;
  beforeEach(async () => {
    rx = await Receiver.start();
  });
  afterEach(async () => {
    await d?.close();
    d = null;
    await rx.close();
  });

  const job = (path: string, o: Partial<DeliveryJob> = {}): DeliveryJob => ({
    run_id: `t1:${path}`,
    task_id: 't1',
    scheduled_time: 1,
    url: rx.url(path),
    method: 'POST',
    headers: null,
    body: '{}',
    timeout_ms: 5000,
    retry: { max_attempts: 3, backoff_ms: 0, max_backoff_ms: 0 },
    first_attempt: 1,
    slot: 2,
    token: 5,
    ...o,
  });
  const make = (table: LeaseTable): Delivery =>
    (d = new Delivery({ clock: new SystemClock(), log, userAgent: 'test', globalConcurrency: 8, perOriginConcurrency: 8, maxResponseBytes: 4096, signingSecrets: [], leases: new LeaseGate(table.buffer), random: () => 0 }));

  it('sends while the lease is held; a lapsed lease sends nothing and ends the delivery as lapsed', async () => {
    const table = new LeaseTable(4);
    table.set(2, 5, Number.MAX_VALUE);
    const del = make(table);
    expect((await del.deliver(job('/ok'))).ok).toBe(true);
    table.drop(2);
    const r = await del.deliver(job('/lapsed'));
    expect(r).toMatchObject({ ok: false, aborted: true, lapsed: true, attempts: 0 });
    expect(rx.to('/lapsed')).toEqual([]);
    // A job that names no lease is not checked (alerts after a graceful hand-back, standalone).
    expect((await del.deliver(job('/free', { slot: -1 }))).ok).toBe(true);
  });

  it('a retry after its backoff is not sent once the lease lapsed', async () => {
    const table = new LeaseTable(4);
    table.set(2, 5, Number.MAX_VALUE);
    const del = make(table);
    rx.on('/retry', () => {
      table.drop(2); // the lease lapses while attempt 1 is answered
      return { status: 503 };
    });
    const r = await del.deliver(job('/retry'));
    expect(rx.to('/retry')).toHaveLength(1);
    expect(r).toMatchObject({ aborted: true, lapsed: true, attempts: 1 });
  });

  it('an attempt 2+ goes out only once recorded: the hook sees it first, and a refusal sends nothing', async () => {
    const table = new LeaseTable(4);
    table.set(2, 5, Number.MAX_VALUE);
    const del = make(table);
    const seen: string[] = [];
    rx.on('/rec', (_req, n) => {
      seen.push(`sent ${n}`);
      return n === 1 ? { status: 503 } : { status: 200 };
    });
    const r = await del.deliver(job('/rec'), {
      beforeAttempt: (n) => {
        seen.push(`recorded ${n}`);
        return Promise.resolve(true);
      },
    });
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    expect(seen).toEqual(['sent 1', 'recorded 2', 'sent 2']);
    // A redelivery starting at attempt 3 records it before its first request; refused: nothing sent.
    const refused = await del.deliver(job('/refused', { first_attempt: 3 }), { beforeAttempt: () => Promise.resolve(false) });
    expect(refused).toMatchObject({ aborted: true, lapsed: true, attempts: 2 });
    expect(rx.to('/refused')).toEqual([]);
  });
});

describe('redeliveryAttempt', () => {
  it('counts the first attempt once the fire is due (whatever the record says), never a fire still held unclaimed', () => {
    expect(redeliveryAttempt({ run_id: 'r', attempts: 0, scheduled_time: 100 }, null, 200)).toBe(2);
    expect(redeliveryAttempt({ run_id: 'r', attempts: 0, scheduled_time: 300 }, null, 200)).toBe(1);
    expect(redeliveryAttempt({ run_id: 'r', attempts: 1, scheduled_time: 100 }, null, 200)).toBe(2);
    expect(redeliveryAttempt({ run_id: 'r', attempts: 4, scheduled_time: 100 }, null, 200)).toBe(5);
    expect(redeliveryAttempt({ run_id: 'r', attempts: 0, scheduled_time: 100 }, { run_id: 'r', tick: 100, last_fire_time: null }, 200)).toBe(1);
    // A held fire of another run of the task does not count.
    expect(redeliveryAttempt({ run_id: 'r', attempts: 0, scheduled_time: 100 }, { run_id: 'other', tick: 50, last_fire_time: null }, 200)).toBe(2);
  });
});
