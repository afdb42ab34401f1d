/**
 * Scheduler + LocalOwnership + SqliteTaskStore (temp file) + ManualClock + a recording Deliverer.
 *
 * Time only moves when the test moves it: `runUntil(t)` steps the clock from one pending timer to
 * the next (as real time would), letting the scheduler's promises settle between steps. Nothing
 * here sleeps on the wall clock or asserts durations.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock, type TimerHandle } from '../../src/clock/index.js';
import { LocalOwnership } from '../../src/cluster/index.js';
import type { DeliveryHooks, DeliveryJob, DeliveryResult } from '../../src/delivery/index.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { RELEASE_CHUNK } from '../../src/scheduler/held.js';
import { Scheduler, type Deliverer, type FiredEvent, type FinishedEvent, type ReleasedEvent, type SchedulerOptions } from '../../src/scheduler/index.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { fireId, type Task } from '../../src/task/index.js';
import { SLOTS, T0, makeTask, oneShot, silentLog, tempDir } from './fixtures.js';

// ---------------------------------------------------------------- test doubles

/** A ManualClock that also remembers every requested delay and knows its next pending timer. */
class SteppingClock extends ManualClock {
  readonly delays: number[] = [];
  private readonly live = new Set<{ at: number }>();

  override setTimer(fn: () => void, ms: number): TimerHandle {
    const rec = { at: this.now() + Math.max(0, ms) };
    this.delays.push(ms);
    this.live.add(rec);
    const h = super.setTimer(() => {
      this.live.delete(rec);
      fn();
    }, ms);
    return {
      cancel: () => {
        this.live.delete(rec);
        h.cancel();
      },
    };
  }

  nextAt(): number | undefined {
    let m: number | undefined;
    for (const r of this.live) if (m === undefined || r.at < m) m = r.at;
    return m;
  }
}

type Mode = 'ok' | 'fail' | 'hang' | 'wait';
/** 'wait': queued behind others, not started (no attempt yet); hangs until given back or released. */

/** Records every job; resolves ok (or fails, or hangs until released). */
class RecordingDeliverer implements Deliverer {
  readonly jobs: DeliveryJob[] = [];
  mode: (job: DeliveryJob) => Mode = () => 'ok';
  private readonly hung = new Map<string, (r: DeliveryResult) => void>();

  deliver(job: DeliveryJob, hooks?: DeliveryHooks): Promise<DeliveryResult> {
    this.jobs.push(job);
    const m = this.mode(job);
    if (m !== 'wait') hooks?.onAttempt?.(job.first_attempt);
    if (m === 'wait') {
      return new Promise((resolve) => this.waiting.set(job.run_id, { job, resolve }));
    }
    if (m === 'hang') return new Promise((resolve) => this.hung.set(job.run_id, resolve));
    return Promise.resolve(result(job, m === 'ok'));
  }

  private readonly waiting = new Map<string, { job: DeliveryJob; resolve: (r: DeliveryResult) => void }>();

  hanging(): string[] {
    return [...this.hung.keys()];
  }

  waitingIds(): string[] {
    return [...this.waiting.keys()];
  }

  /** Deliverer.cancelWaiting: gives back the matching deliveries not started yet (aborted). */
  giveBack(match: (job: DeliveryJob) => boolean): number {
    let n = 0;
    for (const [id, w] of this.waiting) {
      if (!match(w.job)) continue;
      this.waiting.delete(id);
      w.resolve({ ...result(w.job, false), attempts: w.job.first_attempt - 1, aborted: true });
      n++;
    }
    return n;
  }

  /** Finishes a hung delivery. */
  release(runId: string, ok = true): void {
    const r = this.hung.get(runId);
    if (!r) throw new Error(`no hung delivery ${runId}`);
    this.hung.delete(runId);
    r(result(this.jobs.find((j) => j.run_id === runId)!, ok));
  }

  /** Ends every hung delivery as interrupted (nothing gets recorded). */
  abortAll(): void {
    this.giveBack(() => true);
    for (const [id, r] of this.hung) r({ ...result(this.jobs.find((j) => j.run_id === id)!, false), aborted: true });
    this.hung.clear();
  }
}

function result(job: DeliveryJob, ok: boolean): DeliveryResult {
  return {
    ok,
    status: ok ? 200 : 500,
    error: ok ? null : 'HTTP 500',
    body: ok ? 'ok' : null,
    attempts: job.first_attempt,
    start_time: job.scheduled_time,
    end_time: job.scheduled_time,
    duration_ms: 0,
    aborted: false,
  };
}

// ---------------------------------------------------------------- harness

const settle = async (): Promise<void> => {
  for (let i = 0; i < 6; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

interface Harness {
  file: string;
  clock: SteppingClock;
  store: SqliteTaskStore;
  ownership: LocalOwnership;
  sched: Scheduler;
  deliverer: RecordingDeliverer;
  fired: FiredEvent[];
  finished: FinishedEvent[];
  fenced: number[];
  storeErrors: Error[];
  /** Moves time to `to`, stepping through every timer on the way. */
  runUntil(to: number): Promise<void>;
  /** Creates tasks in the store (and tells the scheduler when it is running). */
  add(...tasks: Task[]): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface SetupOptions {
  start?: number;
  tasks?: Task[];
  opts?: Partial<SchedulerOptions>;
  /** Reuse a file (a restart). */
  file?: string;
  clock?: SteppingClock;
  /** Another ownership than every slot (e.g. a cluster node's share). */
  ownership?: (epoch: number) => LocalOwnership;
}

async function setup(o: SetupOptions = {}): Promise<Harness> {
  let file = o.file;
  if (!file) {
    const tmp = tempDir('xcron-sched-');
    cleanups.push(() => Promise.resolve(tmp.remove()));
    file = join(tmp.dir, 'xcron.db');
  }
  const clock = o.clock ?? new SteppingClock(o.start ?? T0);
  const store = new SqliteTaskStore({ file, synchronous: 'normal' });
  const epoch = store.claimEpoch();
  const ownership = o.ownership ? o.ownership(epoch) : new LocalOwnership('node-a', SLOTS, epoch);
  const deliverer = new RecordingDeliverer();
  for (const t of o.tasks ?? []) await store.create(t);
  const sched = new Scheduler({ ...schedulerOptions(store, ownership, deliverer, clock), ...o.opts });
  const h: Harness = {
    file,
    clock,
    store,
    ownership,
    sched,
    deliverer,
    fired: [],
    finished: [],
    fenced: [],
    storeErrors: [],
    runUntil: async (to) => {
      for (let guard = 0; ; guard++) {
        if (guard > 200_000) throw new Error('runUntil: timers never stop firing');
        await settle();
        const n = clock.nextAt();
        if (n === undefined || n > to) break;
        clock.advanceTo(Math.max(n, clock.now()));
      }
      clock.advanceTo(to);
      await settle();
    },
    add: async (...tasks) => {
      for (const t of tasks) {
        expect((await store.create(t)).created).toBe(true);
        sched.taskChanged(t);
      }
    },
  };
  sched.on('fired', (e) => h.fired.push(e));
  sched.on('finished', (e) => h.finished.push(e));
  sched.on('fenced', (s) => h.fenced.push(s));
  sched.on('storeError', (e) => h.storeErrors.push(e));
  cleanups.push(async () => {
    deliverer.abortAll();
    await sched.stop();
    await settle();
    await sched.flush().catch(() => undefined);
    await store.close();
  });
  await ownership.start();
  await sched.start();
  await settle();
  return h;
}

const SEC = 1000;
const MIN = 60_000;

// ---------------------------------------------------------------- tests

describe('Scheduler', () => {
  it('a one-shot fires exactly once, at its time', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [oneShot('once', at, T0)] });

    await h.runUntil(at - 1);
    expect(h.fired).toEqual([]);
    expect(h.deliverer.jobs).toEqual([]);

    await h.runUntil(at);
    expect(h.fired).toEqual([{ task_id: 'once', run_id: `once:${at}`, scheduled_time: at, committed_at: at, status: 'PENDING' }]);
    expect(h.deliverer.jobs).toHaveLength(1);
    expect(h.deliverer.jobs[0]).toMatchObject({ run_id: `once:${at}`, task_id: 'once', scheduled_time: at, url: 'http://127.0.0.1:9/hook', method: 'POST', body: '{"id":"once"}', first_attempt: 1 });

    await h.runUntil(at + 10 * MIN);
    expect(h.fired).toHaveLength(1);
    expect(h.deliverer.jobs).toHaveLength(1);

    const task = (await h.store.get('once'))!;
    expect(task).toMatchObject({ state: 'completed', next_fire_time: null, run_count: 1, last_fire_time: at, last_status: 'SUCCESS' });
    expect(await h.store.getRun(`once:${at}`)).toMatchObject({ status: 'SUCCESS', attempts: 1, node: 'node-a', http_status: 200 });
  });

  it('fires due at the same ms are committed in one commitFires call', async () => {
    const at = T0 + 5 * SEC;
    const tasks = [
      ...Array.from({ length: 15 }, (_, i) => oneShot(`same-${i}`, at, T0)),
      ...Array.from({ length: 5 }, (_, i) => makeTask({ id: `cron-${i}`, format: '*/5 * * * * *' })), // next: T0+5s
    ];
    const h = await setup({ tasks });
    const spy = vi.spyOn(h.store, 'commitFires');

    await h.runUntil(at);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]![0]).toHaveLength(20);
    expect(h.fired).toHaveLength(20);
    expect(new Set(h.fired.map((f) => f.committed_at))).toEqual(new Set([at]));
    expect(h.deliverer.jobs).toHaveLength(20);
  });

  it('a periodic task fires every tick with fire ids <id>:<tick>, and run_count follows', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'every', format: '@every 10s', createdAt: T0 + 3 * SEC })] });
    const ticks = [13, 23, 33, 43].map((s) => T0 + s * SEC);

    await h.runUntil(T0 + 45 * SEC);
    expect(h.fired.map((f) => f.run_id)).toEqual(ticks.map((t) => `every:${t}`));
    expect(h.fired.map((f) => f.committed_at)).toEqual(ticks); // on time, to the ms
    expect(h.deliverer.jobs.map((j) => j.run_id)).toEqual(ticks.map((t) => fireId('every', t)));
    const task = (await h.store.get('every'))!;
    expect(task.run_count).toBe(4);
    expect(task.next_fire_time).toBe(T0 + 53 * SEC);
    expect(task.last_fire_time).toBe(ticks[3]);
    expect((await h.store.listRuns('every', 10)).map((r) => r.status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS']);
  });

  it('a failed delivery is recorded FAIL and the schedule goes on', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'failing', format: '@every 10s' })] });
    h.deliverer.mode = () => 'fail';
    await h.runUntil(T0 + 20 * SEC);
    expect(h.finished.map((f) => f.result.ok)).toEqual([false, false]);
    expect(await h.store.getRun(`failing:${T0 + 10 * SEC}`)).toMatchObject({ status: 'FAIL', http_status: 500, error: 'HTTP 500' });
    const t = (await h.store.get('failing'))!;
    expect(t.last_status).toBe('FAIL');
    expect(t.run_count).toBe(2);
    expect(t.next_fire_time).toBe(T0 + 30 * SEC);
  });

  it('a cron task in a timezone fires at the calendar time', async () => {
    // 09:00 Asia/Shanghai = 01:00Z
    const h = await setup({ tasks: [makeTask({ id: 'sh', format: '0 9 * * *', body: { timezone: 'Asia/Shanghai' } })], opts: { lookaheadMs: 2 * 3_600_000 } });
    await h.runUntil(T0 + 3_600_000 - 1);
    expect(h.fired).toEqual([]);
    await h.runUntil(T0 + 3_600_000);
    expect(h.fired.map((f) => f.scheduled_time)).toEqual([T0 + 3_600_000]);
    expect((await h.store.get('sh'))!.next_fire_time).toBe(T0 + 25 * 3_600_000);
  });

  it('the timer never sleeps longer than maxSleepMs', async () => {
    const at = T0 + 3_600_000;
    const h = await setup({ tasks: [oneShot('far', at, T0)], opts: { lookaheadMs: 2 * 3_600_000, maxSleepMs: 5000 } });
    // the task is loaded (inside the 2 h window), yet the scheduler wakes at most 5 s from now
    expect(h.sched.loadedCount()).toBe(1);
    expect(h.clock.nextAt()).toBeLessThanOrEqual(T0 + 5000);

    await h.runUntil(at);
    expect(h.fired.map((f) => [f.scheduled_time, f.committed_at])).toEqual([[at, at]]);
    expect(Math.max(...h.clock.delays)).toBeLessThanOrEqual(5000);
    // it woke (and re-armed) at least once per 5 s across the hour
    expect(h.clock.delays.filter((d) => d > 1000).length).toBeGreaterThanOrEqual(3_600_000 / 5000 - 1);
  });

  it('after a forward clock jump the due task fires within one maxSleep wake', async () => {
    const at = T0 + 3_600_000;
    const h = await setup({ tasks: [oneShot('jump', at, T0)], opts: { lookaheadMs: 2 * 3_600_000, scanIntervalMs: 50_000, maxSleepMs: 5000 } });
    h.clock.jumpTo(at + 30 * SEC); // time leaps 30 s past the task; no timer ran
    await h.runUntil(at + 30 * SEC); // the pending (<= 5 s) wake runs now
    expect(h.fired).toHaveLength(1);
    expect(h.fired[0]).toMatchObject({ run_id: `jump:${at}`, scheduled_time: at, committed_at: at + 30 * SEC, status: 'PENDING' });
  });

  it('a clock jump backwards does not fire a tick twice', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'back', format: '@every 10s' })] });
    await h.runUntil(T0 + 10 * SEC);
    expect(h.fired.map((f) => f.scheduled_time)).toEqual([T0 + 10 * SEC]);

    h.clock.jumpTo(T0 - MIN); // the clock goes back a minute
    await h.sched.scan(); // a scan while the clock is behind
    await h.runUntil(T0 + 25 * SEC);

    const times = h.fired.map((f) => f.scheduled_time);
    expect(times).toEqual([T0 + 10 * SEC, T0 + 20 * SEC]);
    expect(new Set(h.fired.map((f) => f.run_id)).size).toBe(times.length);
    expect((await h.store.get('back'))!.run_count).toBe(2);
    expect(await h.store.listRuns('back', 10)).toHaveLength(2);
  });

  it('a task created for now+50ms is fired via taskChanged without waiting for a scan', async () => {
    const h = await setup({ opts: { scanIntervalMs: 30_000 } });
    const at = T0 + 50;
    await h.add(oneShot('notified', at, T0)); // store.create + taskChanged

    await h.runUntil(at);
    expect(h.fired.map((f) => f.task_id)).toEqual(['notified']);
    expect(h.fired[0]!.committed_at).toBe(at);
  });

  // A task written inside the already-scanned window without a taskChanged notification (a lost
  // pub/sub message, another process) is found by the periodic safety rescan, and fires late.
  it('a task written inside the window without a notification is picked up by a later scan', async () => {
    const h = await setup({ opts: { scanIntervalMs: 1000 } });
    const at = T0 + 50;
    expect((await h.store.create(oneShot('silent', at, T0))).created).toBe(true); // no taskChanged
    await h.runUntil(T0 + 10 * MIN);
    expect(h.fired.map((f) => f.task_id)).toEqual(['silent']);
    expect(h.fired[0]).toMatchObject({ scheduled_time: at, status: 'PENDING' });
  });

  // A cluster node owns a share of the slots: its rescan reads slot by slot, and loads only its own.
  it('a node owning some slots: the rescan finds the silent tasks of its own slots only, and commits batchPerSlot fires per owned slot at a time', async () => {
    /** Owns the even slots (a cluster node's share). */
    class EvenSlots extends LocalOwnership {
      override tokenFor(slot: number): number | null {
        return slot % 2 === 0 ? super.tokenFor(slot) : null;
      }
      override ownedSlots(): number[] {
        return super.ownedSlots().filter((s) => s % 2 === 0);
      }
    }
    const h = await setup({ ownership: (epoch) => new EvenSlots('node-a', SLOTS, epoch), opts: { scanIntervalMs: 1000, batchSize: 1, batchPerSlot: 1 } });
    const sizes: number[] = [];
    const commit = h.store.commitFires.bind(h.store);
    h.store.commitFires = (reqs) => {
      sizes.push(reqs.length);
      return commit(reqs);
    };
    const at = T0 + 5 * SEC;
    const tasks = Array.from({ length: 400 }, (_, i) => oneShot(`silent-${i}`, at, T0));
    for (const t of tasks) expect((await h.store.create(t)).created).toBe(true); // no taskChanged
    const mine = tasks.filter((t) => t.slot % 2 === 0).map((t) => t.id);
    expect(mine.length).toBeGreaterThan(100);
    expect(mine.length).toBeLessThan(300);
    await h.runUntil(T0 + 10 * MIN);
    expect(h.fired.map((f) => f.task_id).sort()).toEqual([...mine].sort());
    // every commit but the last of the burst is full: one fire per owned slot (batchSize is 1)
    const full = h.ownership.ownedSlots().length;
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes.slice(0, -1).every((n) => n === full)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(mine.length);
  });

  // The periodic re-announce (cluster: every 30 s) is a safety net for runs left by a node that went
  // unnoticed: it reads only runs scheduled PERIODIC_OUTBOX_LAG_MS (10 s) ago or earlier; a real
  // acquisition reads the whole outbox.
  it('a periodic re-announce redelivers only outbox runs older than 10 s; an acquisition redelivers all', async () => {
    const h = await setup({ opts: { scanIntervalMs: 1000 } });
    const old = oneShot('outbox-old', T0 - 60 * SEC, T0 - MIN);
    const recent = oneShot('outbox-recent', T0 - 2 * SEC, T0 - MIN);
    for (const t of [old, recent]) expect((await h.store.create(t)).created).toBe(true);
    // committed by another process (not in flight here), as a node that left would leave them
    const res = await h.store.commitFires(
      [old, recent].map((t) => ({ slot: t.slot, token: h.ownership.tokenFor(t.slot)!, task_id: t.id, expected: t.next_fire_time!, next: null, now: t.next_fire_time!, run: { run_id: fireId(t.id, t.next_fire_time!), node: 'gone', status: 'PENDING' as const, error: null } })),
    );
    expect(res).toEqual(['committed', 'committed']);
    h.ownership.emit('acquired', h.ownership.ownedSlots(), true);
    await settle();
    expect(h.deliverer.jobs.map((j) => j.run_id)).toEqual([fireId(old.id, old.next_fire_time!)]);
    await h.runUntil(T0 + SEC); // its outcome is written (the run leaves the outbox)
    h.ownership.emit('acquired', h.ownership.ownedSlots());
    await settle();
    expect(h.deliverer.jobs.map((j) => j.run_id).sort()).toEqual([fireId(old.id, old.next_fire_time!), fireId(recent.id, recent.next_fire_time!)].sort());
  });

  it('taskChanged for a task beyond the lookahead window does not load it early', async () => {
    const h = await setup({ opts: { lookaheadMs: 60_000, scanIntervalMs: 1000 } });
    const at = T0 + 10 * MIN;
    await h.add(oneShot('later', at, T0));
    expect(h.sched.loadedCount()).toBe(0);
    await h.runUntil(at);
    expect(h.fired.map((f) => f.run_id)).toEqual([`later:${at}`]);
  });

  describe('misfire after downtime', () => {
    // the process starts about an hour after the stored next fire time (between two minute ticks)
    const now = T0 + 3_600_000 + 30 * SEC;
    const nextTick = T0 + 3_600_000 + MIN;
    const overdue = (misfire: 'fire_once' | 'skip') =>
      makeTask({ id: `late-${misfire}`, format: '* * * * *', createdAt: T0 - 86_400_000, next_fire_time: T0, body: { misfire } });

    it('fire_once: fires the overdue tick once, then continues from the next future tick', async () => {
      const h = await setup({ start: now, tasks: [overdue('fire_once')] });
      await h.runUntil(now);
      expect(h.fired).toEqual([{ task_id: 'late-fire_once', run_id: `late-fire_once:${T0}`, scheduled_time: T0, committed_at: now, status: 'PENDING' }]);
      expect(h.deliverer.jobs).toHaveLength(1);
      const t = (await h.store.get('late-fire_once'))!;
      expect(t.next_fire_time).toBe(nextTick);
      expect(t.run_count).toBe(1);
      expect(await h.store.listRuns('late-fire_once', 100)).toHaveLength(1);

      await h.runUntil(nextTick);
      expect(h.fired.map((f) => [f.scheduled_time, f.status])).toEqual([
        [T0, 'PENDING'],
        [nextTick, 'PENDING'],
      ]);
    });

    it('skip: records MISSED (not delivered, not counted) and advances to the next future tick', async () => {
      const h = await setup({ start: now, tasks: [overdue('skip')] });
      await h.runUntil(now);
      expect(h.fired).toEqual([{ task_id: 'late-skip', run_id: `late-skip:${T0}`, scheduled_time: T0, committed_at: now, status: 'MISSED' }]);
      expect(h.deliverer.jobs).toEqual([]);
      const t = (await h.store.get('late-skip'))!;
      expect(t.next_fire_time).toBe(nextTick);
      expect(t.run_count).toBe(0);
      const run = (await h.store.getRun(`late-skip:${T0}`))!;
      expect(run.status).toBe('MISSED');
      expect(run.error).toMatch(/missed/);

      await h.runUntil(nextTick);
      expect(h.fired.map((f) => f.status)).toEqual(['MISSED', 'PENDING']);
      expect(h.deliverer.jobs.map((j) => j.run_id)).toEqual([`late-skip:${nextTick}`]);
    });

    it('a tick late by less than the threshold fires normally under skip', async () => {
      const h = await setup({ start: T0 + 4 * SEC, tasks: [makeTask({ id: 'slightly', format: '* * * * *', createdAt: T0 - MIN, next_fire_time: T0, body: { misfire: 'skip' } })] });
      await h.runUntil(T0 + 4 * SEC);
      expect(h.fired.map((f) => [f.scheduled_time, f.status])).toEqual([[T0, 'PENDING']]);
      expect((await h.store.get('slightly'))!.next_fire_time).toBe(T0 + MIN);
    });

    it('overdue one-shots all fire, late, whatever their misfire policy', async () => {
      const times = [now - 3_000_000, now - 60_000, now - 1];
      const h = await setup({
        start: now,
        tasks: [
          oneShot('os-1', times[0]!, T0 - MIN),
          oneShot('os-2', times[1]!, T0 - MIN, { body: { misfire: 'skip' } }),
          oneShot('os-3', times[2]!, T0 - MIN),
        ],
      });
      await h.runUntil(now);
      expect(h.fired.map((f) => [f.task_id, f.scheduled_time, f.status])).toEqual([
        ['os-1', times[0], 'PENDING'],
        ['os-2', times[1], 'PENDING'],
        ['os-3', times[2], 'PENDING'],
      ]);
      expect(h.deliverer.jobs).toHaveLength(3);
      for (const id of ['os-1', 'os-2', 'os-3']) expect((await h.store.get(id))!.state).toBe('completed');
    });
  });

  describe('overlap', () => {
    it("'skip' records SKIPPED while the previous delivery hangs", async () => {
      const h = await setup({ tasks: [makeTask({ id: 'ov-skip', format: '@every 10s', body: { overlap: 'skip' } })] });
      h.deliverer.mode = () => 'hang';
      await h.runUntil(T0 + 10 * SEC);
      expect(h.deliverer.hanging()).toEqual([`ov-skip:${T0 + 10 * SEC}`]);

      await h.runUntil(T0 + 20 * SEC);
      expect(h.fired.map((f) => f.status)).toEqual(['PENDING', 'SKIPPED']);
      expect(h.deliverer.jobs).toHaveLength(1);
      const skipped = (await h.store.getRun(`ov-skip:${T0 + 20 * SEC}`))!;
      expect(skipped.status).toBe('SKIPPED');
      expect(skipped.error).toMatch(/in flight/);

      h.deliverer.mode = () => 'ok';
      h.deliverer.release(`ov-skip:${T0 + 10 * SEC}`);
      await h.runUntil(T0 + 30 * SEC);
      expect(h.fired.map((f) => f.status)).toEqual(['PENDING', 'SKIPPED', 'PENDING']);
      expect(h.deliverer.jobs.map((j) => j.scheduled_time)).toEqual([T0 + 10 * SEC, T0 + 30 * SEC]);
      expect((await h.store.get('ov-skip'))!.run_count).toBe(2);
    });

    it("'queue' delays the next delivery until the previous finishes", async () => {
      const h = await setup({ tasks: [makeTask({ id: 'ov-q', format: '@every 10s', body: { overlap: 'queue' } })] });
      h.deliverer.mode = () => 'hang';
      await h.runUntil(T0 + 20 * SEC);
      // both ticks are committed (PENDING), but only the first has been handed to delivery
      expect(h.fired.map((f) => f.status)).toEqual(['PENDING', 'PENDING']);
      expect(h.deliverer.jobs.map((j) => j.run_id)).toEqual([`ov-q:${T0 + 10 * SEC}`]);
      expect((await h.store.getRun(`ov-q:${T0 + 20 * SEC}`))!.status).toBe('PENDING');

      h.deliverer.release(`ov-q:${T0 + 10 * SEC}`);
      await settle();
      expect(h.deliverer.jobs.map((j) => j.run_id)).toEqual([`ov-q:${T0 + 10 * SEC}`, `ov-q:${T0 + 20 * SEC}`]);
      h.deliverer.release(`ov-q:${T0 + 20 * SEC}`);
      await settle();
      expect(h.finished.map((f) => f.run_id)).toEqual([`ov-q:${T0 + 10 * SEC}`, `ov-q:${T0 + 20 * SEC}`]);
    });

    it("'allow' (default) delivers overlapping runs concurrently", async () => {
      const h = await setup({ tasks: [makeTask({ id: 'ov-a', format: '@every 10s' })] });
      h.deliverer.mode = () => 'hang';
      await h.runUntil(T0 + 20 * SEC);
      expect(h.deliverer.hanging()).toEqual([`ov-a:${T0 + 10 * SEC}`, `ov-a:${T0 + 20 * SEC}`]);
    });
  });

  it('a lost slot gives back its deliveries not started yet: nothing recorded, redelivered from the outbox with the same fire id', async () => {
    const at = T0 + SEC;
    const first = await setup({ tasks: [oneShot('given-0', at, T0), oneShot('given-1', at, T0), oneShot('started', at, T0)] });
    (first.deliverer as Deliverer).cancelWaiting = (m) => first.deliverer.giveBack(m);
    first.deliverer.mode = (j) => (j.task_id === 'started' ? 'hang' : 'wait');
    await first.runUntil(at + 100);
    expect(first.deliverer.waitingIds().sort()).toEqual([`given-0:${at}`, `given-1:${at}`]);
    expect(first.deliverer.hanging()).toEqual([`started:${at}`]);
    first.ownership.reportFenced(0); // the slots are lost (another process took the file over)
    await first.runUntil(at + 200);
    expect(first.deliverer.waitingIds()).toEqual([]); // given back
    expect(first.deliverer.hanging()).toEqual([`started:${at}`]); // an exchange under way goes on
    expect(first.finished).toEqual([]);
    for (const id of ['given-0', 'given-1']) expect(await first.store.getRun(`${id}:${at}`)).toMatchObject({ status: 'PENDING', attempts: 0 });
    await first.sched.stop();

    const second = await setup({ file: first.file, clock: first.clock });
    await second.runUntil(at + SEC);
    // Attempt numbers count every attempt that may have reached the receiver: a due fire left in
    // the outbox may have been sent once (its first attempt is not recorded before it goes out),
    // so its redelivery is attempt 2, also for these two that never left (src/scheduler/attempts.ts).
    expect(second.deliverer.jobs.map((j) => [j.run_id, j.first_attempt]).sort()).toEqual([
      [`given-0:${at}`, 2],
      [`given-1:${at}`, 2],
      [`started:${at}`, 2],
    ]);
    for (const id of ['given-0', 'given-1']) expect(await second.store.getRun(`${id}:${at}`)).toMatchObject({ status: 'SUCCESS', attempts: 2 });
  });

  it('outbox: a committed PENDING run is redelivered with the same run_id after a restart', async () => {
    const at = T0 + SEC;
    const first = await setup({ tasks: [oneShot('outbox', at, T0)] });
    first.deliverer.mode = () => 'hang';
    await first.runUntil(at + 100); // run-state writes are coalesced for a few ms before they land
    expect(first.deliverer.hanging()).toEqual([`outbox:${at}`]);
    expect((await first.store.getRun(`outbox:${at}`))!.status).toBe('RUNNING'); // attempt 1 recorded
    await first.sched.stop(); // the process dies with the delivery in flight

    const second = await setup({ file: first.file, clock: first.clock });
    await second.runUntil(at + SEC);
    expect(second.deliverer.jobs).toHaveLength(1);
    expect(second.deliverer.jobs[0]).toMatchObject({ run_id: `outbox:${at}`, task_id: 'outbox', scheduled_time: at, first_attempt: 2 });
    expect(second.fired).toEqual([]); // redelivered, not fired again
    expect(await second.store.getRun(`outbox:${at}`)).toMatchObject({ status: 'SUCCESS', attempts: 2, node: 'node-a' });
    const task = (await second.store.get('outbox'))!;
    expect(task.run_count).toBe(1);
    expect(task.last_status).toBe('SUCCESS');
  });

  it('fencing: after another store claims a newer epoch, the commit is fenced and firing stops', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'fence', format: '@every 10s' })] });
    const spy = vi.spyOn(h.store, 'commitFires');
    await h.runUntil(T0 + 10 * SEC);
    expect(h.fired).toHaveLength(1);
    expect(h.ownership.isMember()).toBe(true);

    const intruder = new SqliteTaskStore({ file: h.file, synchronous: 'normal' });
    cleanups.push(() => intruder.close());
    intruder.claimEpoch();

    await h.runUntil(T0 + 20 * SEC);
    expect(h.fenced.length).toBeGreaterThanOrEqual(1);
    expect(h.fenced[0]).toBe(makeTask({ id: 'fence' }).slot);
    expect(h.ownership.isMember()).toBe(false);
    expect(h.ownership.ownedSlots()).toEqual([]);
    const callsAtFence = spy.mock.calls.length;

    await h.runUntil(T0 + 2 * MIN);
    expect(h.fired).toHaveLength(1);
    expect(spy.mock.calls.length).toBe(callsAtFence); // no more commits attempted
    expect(h.sched.loadedCount()).toBe(0);
    const t = (await h.store.get('fence'))!;
    expect(t.run_count).toBe(1);
    expect(t.next_fire_time).toBe(T0 + 20 * SEC); // the fenced tick was not taken
    expect(await h.store.getRun(`fence:${T0 + 20 * SEC}`)).toBeNull();
  });

  it('deleting a task (store.delete + taskRemoved) stops its fires', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'del', format: '@every 10s' }), makeTask({ id: 'stay', format: '@every 10s' })] });
    await h.runUntil(T0 + 10 * SEC);
    expect(h.fired.map((f) => f.task_id).sort()).toEqual(['del', 'stay']);

    await h.store.delete('del');
    h.sched.taskRemoved('del');
    await h.runUntil(T0 + MIN);
    expect(h.fired.filter((f) => f.task_id === 'del')).toHaveLength(1);
    expect(h.fired.filter((f) => f.task_id === 'stay')).toHaveLength(6);
    expect(h.deliverer.jobs.filter((j) => j.task_id === 'del')).toHaveLength(1);
  });

  it('a task deleted without a notification does not fire either (compare-and-set)', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'del2', format: '@every 10s' })] });
    await h.runUntil(T0 + 10 * SEC);
    await h.store.delete('del2');
    await h.runUntil(T0 + MIN);
    expect(h.fired).toHaveLength(1);
    expect(h.storeErrors).toEqual([]);
  });

  it('a paused task (re-read after a conflict) stops firing', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'p', format: '@every 10s' })] });
    await h.runUntil(T0 + 10 * SEC);
    const t = (await h.store.get('p'))!;
    // pause it behind the scheduler's back: delete + recreate paused with the same tick
    await h.store.delete('p');
    await h.store.create({ ...t, state: 'paused' });
    await h.runUntil(T0 + MIN);
    expect(h.fired).toHaveLength(1);
  });

  it('a store failure does not crash the scheduler; it emits storeError', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'sf', format: '@every 10s' })] });
    await h.runUntil(T0 + 10 * SEC);
    expect(h.fired).toHaveLength(1);

    await h.store.close();
    await h.runUntil(T0 + 40 * SEC);
    expect(h.storeErrors.length).toBeGreaterThanOrEqual(1);
    expect(h.storeErrors.every((e) => e instanceof StoreUnavailableError)).toBe(true);
    expect(h.fired).toHaveLength(1); // nothing could be committed
    // still alive: it keeps waking (and keeps reporting) rather than dying
    const before = h.storeErrors.length;
    await h.runUntil(T0 + 60 * SEC);
    expect(h.storeErrors.length).toBeGreaterThan(before);
  });
});

describe('Scheduler: fires committed ahead (commitAheadMs)', () => {
  const AHEAD = { opts: { commitAheadMs: 1000 } };
  /** The clock time at which each run's delivery started. */
  const deliveredAt = (h: Harness): Map<string, number> => {
    const m = new Map<string, number>();
    h.deliverer.mode = (job) => {
      m.set(job.run_id, h.clock.now());
      return 'ok';
    };
    return m;
  };

  it('commits a one-shot up to 1 s early but delivers it at its due time, once', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [oneShot('early', at, T0)], ...AHEAD });
    const sent = deliveredAt(h);
    const released: ReleasedEvent[] = [];
    h.sched.on('released', (e) => released.push(e));

    await h.runUntil(at - 1001);
    expect(h.fired).toEqual([]);
    await h.runUntil(at - 1000);
    expect(h.fired).toEqual([{ task_id: 'early', run_id: `early:${at}`, scheduled_time: at, committed_at: at - 1000, status: 'PENDING' }]);
    expect(await h.store.getRun(`early:${at}`)).toMatchObject({ status: 'PENDING', scheduled_time: at, attempts: 0 });
    expect(h.sched.heldCount()).toBe(1);

    await h.runUntil(at - 1);
    expect(h.deliverer.jobs).toEqual([]);
    expect(released).toEqual([]);
    await h.runUntil(at);
    expect([...sent]).toEqual([[`early:${at}`, at]]);
    expect(h.sched.heldCount()).toBe(0);
    // lateness (metrics, stats) is taken here, at the hand-over: 0 ms
    expect(released).toEqual([{ task_id: 'early', run_id: `early:${at}`, scheduled_time: at, released_at: at }]);

    await h.runUntil(at + MIN);
    expect(h.deliverer.jobs).toHaveLength(1);
    expect(await h.store.get('early')).toMatchObject({ state: 'completed', run_count: 1, last_fire_time: at, last_status: 'SUCCESS' });
  });

  it('a burst of held fires due at one ms is handed over in paced chunks: each once, none before its time', async () => {
    const at = T0 + 10 * SEC;
    const n = 1000; // many times RELEASE_CHUNK: several 1 ms continuations (on the scheduler's clock)
    const chunks = Math.ceil(n / RELEASE_CHUNK);
    const tasks = Array.from({ length: n }, (_, i) => oneShot(`b${String(i).padStart(4, '0')}`, at, T0));
    const h = await setup({ tasks, ...AHEAD });
    const sent = deliveredAt(h);
    await h.runUntil(at - 1);
    expect(h.sched.heldCount()).toBe(n);
    expect(h.deliverer.jobs).toEqual([]);
    await h.runUntil(at);
    expect(h.deliverer.jobs.length).toBe(RELEASE_CHUNK); // the first chunk; the next one after 1 ms
    await h.runUntil(at + chunks);
    await vi.waitFor(() => expect(h.deliverer.jobs.length).toBe(n), { timeout: 20_000, interval: 5 });
    expect(new Set(h.deliverer.jobs.map((j) => j.run_id)).size).toBe(n);
    // one chunk per ms from the due time on: none before it
    const times = [...sent.values()];
    expect(Math.min(...times)).toBe(at);
    expect(Math.max(...times)).toBe(at + chunks - 1);
    for (let k = 0; k < chunks; k++) expect(times.filter((t) => t === at + k).length).toBe(Math.min(RELEASE_CHUNK, n - k * RELEASE_CHUNK));
    expect(h.sched.heldCount()).toBe(0);
    await h.runUntil(at + MIN);
    expect(h.deliverer.jobs).toHaveLength(n);
  });

  it('a periodic task holds one fire at a time: the next tick is committed halfway between its ticks', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'every', format: '@every 1s' })], ...AHEAD });
    const sent = deliveredAt(h);
    await h.runUntil(T0 + 10 * SEC);
    // ticks T0+1s .. T0+10s: each committed at max(tick - 1 s, halfway from the previous tick), sent at its tick
    const ticks = Array.from({ length: 10 }, (_, i) => T0 + (i + 1) * SEC);
    expect([...sent]).toEqual(ticks.map((t) => [`every:${t}`, t]));
    expect(h.fired.map((f) => [f.scheduled_time, f.committed_at])).toEqual([[ticks[0], T0], ...ticks.slice(1).map((t) => [t, t - 500])]);
    expect(h.sched.heldCount()).toBe(0);
    await h.runUntil(T0 + 10 * SEC + 500);
    expect(h.sched.heldCount()).toBe(1);
  });

  it('overlap skip decides at the due time: such tasks are not committed ahead', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [makeTask({ id: 'skipper', type: 2, format: String(at), createdAt: T0, body: { overlap: 'skip' } })], ...AHEAD });
    await h.runUntil(at - 1);
    expect(h.fired).toEqual([]);
    await h.runUntil(at);
    expect(h.fired).toHaveLength(1);
    expect(h.fired[0]!.committed_at).toBe(at);
  });

  it('cancelAhead undoes a held fire: run gone, task back at its tick; it then fires at its time, once', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [oneShot('undo', at, T0)], ...AHEAD });
    const sent = deliveredAt(h);
    await h.runUntil(at - 500);
    expect(await h.store.get('undo')).toMatchObject({ state: 'completed', next_fire_time: null, run_count: 1, last_fire_time: at });

    await h.sched.cancelAhead('undo');
    expect(h.sched.heldCount()).toBe(0);
    expect(await h.store.getRun(`undo:${at}`)).toBeNull();
    expect(await h.store.get('undo')).toMatchObject({ state: 'active', next_fire_time: at, run_count: 0, last_fire_time: null });
    expect((await h.store.stats()).tasks).toMatchObject({ active: 1, completed: 0 });

    // nobody changed the task after all: it fires at its time, committed then (not ahead)
    await h.runUntil(at - 1);
    expect(h.deliverer.jobs).toEqual([]);
    await h.runUntil(at + MIN);
    expect([...sent]).toEqual([[`undo:${at}`, at]]);
    expect(h.fired.map((f) => f.committed_at)).toEqual([at - 1000, at]);
    expect(await h.store.get('undo')).toMatchObject({ state: 'completed', run_count: 1, last_fire_time: at });
  });

  it('a pause after cancelAhead holds: the held fire never goes out', async () => {
    const h = await setup({ tasks: [makeTask({ id: 'pz', format: '@every 10s' })], ...AHEAD });
    const sent = deliveredAt(h);
    await h.runUntil(T0 + 9500); // tick T0+10s committed ahead and held
    expect(h.sched.heldCount()).toBe(1);
    await h.sched.cancelAhead('pz');
    const cur = (await h.store.get('pz'))!;
    expect(cur).toMatchObject({ next_fire_time: T0 + 10 * SEC, run_count: 0 });
    const paused = await h.store.updateTask('pz', { state: 'paused', update_time: h.clock.now() }, { state: cur.state, next_fire_time: cur.next_fire_time });
    expect(paused).not.toBe('conflict');
    h.sched.taskChanged(paused as Task);
    await h.runUntil(T0 + MIN);
    expect(sent.size).toBe(0);
    expect(await h.store.listRuns('pz', 10)).toEqual([]);
  });

  it('a fire whose delivery started is not undone', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [oneShot('started', at, T0)], ...AHEAD });
    h.deliverer.mode = () => 'hang';
    await h.runUntil(at);
    expect(h.deliverer.hanging()).toEqual([`started:${at}`]);
    await h.sched.cancelAhead('started'); // nothing held any more
    expect(await h.store.get('started')).toMatchObject({ state: 'completed', run_count: 1 });
    h.deliverer.release(`started:${at}`);
    await h.runUntil(at + SEC);
    expect(await h.store.getRun(`started:${at}`)).toMatchObject({ status: 'SUCCESS' });
  });

  it('handoffAheadMs: a held fire goes to delivery that long before its tick, due at the tick (not_before), and is no longer undone', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [oneShot('handed', at, T0), oneShot('late', at + 100, T0)], opts: { commitAheadMs: 1000, handoffAheadMs: 250 } });
    const sent = deliveredAt(h);
    const released: ReleasedEvent[] = [];
    h.sched.on('released', (e) => released.push(e));
    await h.runUntil(at - 251);
    expect(h.deliverer.jobs).toEqual([]);
    expect(h.sched.heldCount()).toBe(2);
    await h.runUntil(at - 250);
    // handed over 250 ms ahead, the job carrying its tick: delivery sends it then, not before
    expect([...sent]).toEqual([[`handed:${at}`, at - 250]]);
    expect(h.deliverer.jobs[0]).toMatchObject({ run_id: `handed:${at}`, scheduled_time: at, not_before: at });
    // lateness is taken from the tick, not from the hand-over
    expect(released).toEqual([{ task_id: 'handed', run_id: `handed:${at}`, scheduled_time: at, released_at: at }]);
    // handed over: an undo no longer reaches it (it goes out as committed); the other is still held
    await h.sched.cancelAhead('handed');
    expect(await h.store.getRun(`handed:${at}`)).toMatchObject({ scheduled_time: at }); // not undone
    expect(h.sched.heldCount()).toBe(1);
    await h.sched.cancelAhead('late');
    expect(await h.store.getRun(`late:${at + 100}`)).toBeNull();
    await h.runUntil(at + MIN);
    // the undone one fires at its tick, committed then (no hand-over ahead: it was not held)
    expect(sent.get(`late:${at + 100}`)).toBe(at + 100);
    expect(h.deliverer.jobs.find((j) => j.run_id === `late:${at + 100}`)?.not_before).toBeUndefined();
    expect(await h.store.getRun(`handed:${at}`)).toMatchObject({ status: 'SUCCESS', attempts: 1 });
  });

  it('a deleted task drops its held fire', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [oneShot('gone', at, T0)], ...AHEAD });
    await h.runUntil(at - 500);
    expect(h.sched.heldCount()).toBe(1);
    await h.store.delete('gone');
    h.sched.taskRemoved('gone');
    await h.runUntil(at + MIN);
    expect(h.deliverer.jobs).toEqual([]);
  });

  it('after a restart, a fire committed ahead is delivered at its time, not before, with the same fire id', async () => {
    const at = T0 + 10 * SEC;
    const h1 = await setup({ tasks: [oneShot('restart', at, T0)], ...AHEAD });
    await h1.runUntil(at - 600);
    expect(h1.sched.heldCount()).toBe(1);
    await h1.store.close(); // the process dies with the fire held (no stop: a crash)

    const clock = new SteppingClock(at - 500);
    const h2 = await setup({ file: h1.file, clock, ...AHEAD });
    const sent = deliveredAt(h2);
    expect(h2.sched.heldCount()).toBe(1); // read back from the outbox
    await h2.runUntil(at - 1);
    expect(sent.size).toBe(0);
    await h2.runUntil(at + MIN);
    expect([...sent]).toEqual([[`restart:${at}`, at]]);
    expect(h2.fired).toEqual([]); // not committed again
  });

  it('a graceful stop undoes the held fires: the store shows them not fired, and the next start fires them when due', async () => {
    const at = T0 + 10 * SEC;
    const h1 = await setup({ tasks: [oneShot('stopped', at, T0), makeTask({ id: 'per-stop', format: '@every 10s' })], ...AHEAD });
    await h1.runUntil(at - 600);
    expect(h1.sched.heldCount()).toBe(2);
    await h1.sched.stop();
    expect(h1.sched.heldCount()).toBe(0);
    expect(await h1.store.get('stopped')).toMatchObject({ state: 'active', next_fire_time: at, run_count: 0 });
    expect(await h1.store.get('per-stop')).toMatchObject({ state: 'active', next_fire_time: at, run_count: 0 });
    expect(await h1.store.unfinishedRuns({ slots: null, after: null, limit: 10 })).toEqual([]);
    await h1.store.close();

    const h2 = await setup({ file: h1.file, clock: new SteppingClock(at - 500), ...AHEAD });
    const sent = deliveredAt(h2);
    await h2.runUntil(at + SEC);
    expect([...sent]).toEqual([
      [`per-stop:${at}`, at],
      [`stopped:${at}`, at],
    ]);
  });

  it('without uncommitFire in the store, fires are committed at their due time', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [oneShot('plain', at, T0)], ...AHEAD });
    await h.sched.stop();
    // the same store, seen through an object without uncommitFire (as the Redis store is)
    const bare = new Proxy(h.store, {
      get: (t, k) => {
        if (k === 'uncommitFire') return undefined;
        const v = Reflect.get(t, k) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const sched = new Scheduler({ ...schedulerOptions(bare, h.ownership, h.deliverer, h.clock), commitAheadMs: 1000 });
    const fired: FiredEvent[] = [];
    sched.on('fired', (e) => fired.push(e));
    await sched.start();
    cleanups.push(() => sched.stop());
    await h.runUntil(at - 1);
    expect(fired).toEqual([]);
    await h.runUntil(at);
    expect(fired.map((f) => f.committed_at)).toEqual([at]);
  });
});

/** The options every scheduler in these tests starts from. */
function schedulerOptions(store: SchedulerOptions['store'], ownership: LocalOwnership, delivery: Deliverer, clock: SteppingClock): SchedulerOptions {
  return {
    store,
    ownership,
    delivery,
    clock,
    log: silentLog,
    nodeId: 'node-a',
    lookaheadMs: 60_000,
    scanIntervalMs: 1000,
    maxSleepMs: 5000,
    misfireThresholdMs: 5000,
    batchSize: 500,
    maxLoaded: 100_000,
    defaultTimeoutMs: 1000,
    defaultRetry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 },
  };
}

describe('Scheduler.viewOf: a held fire is shown as not made yet', () => {
  it('a one-shot committed ahead reads as active at its tick until it is due; after that as stored', async () => {
    const at = T0 + 10 * SEC;
    const h = await setup({ tasks: [oneShot('shown', at, T0)], opts: { commitAheadMs: 1000 } });
    await h.runUntil(at - 500);
    const stored = (await h.store.get('shown'))!;
    expect(stored).toMatchObject({ state: 'completed', next_fire_time: null, run_count: 1, last_fire_time: at });
    expect(h.sched.viewOf(stored)).toMatchObject({ state: 'active', next_fire_time: at, run_count: 0, last_fire_time: null });
    await h.runUntil(at);
    const after = (await h.store.get('shown'))!;
    expect(h.sched.viewOf(after)).toEqual(after);
  });
});
