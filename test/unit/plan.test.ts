import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commitAt, commitNextAt, planFire, type PlanContext } from '../../src/scheduler/plan.js';
import { ManualClock } from '../../src/clock/index.js';
import { LocalFlow } from '../../src/delivery/flow.js';
import { fireId, jitterOffset, plannedFireTime, type FlowLimit, type Task } from '../../src/task/index.js';
import { T0, makeTask, oneShot } from '../component/fixtures.js';

const MIN = 60_000;
const ctx = (over: Partial<PlanContext> = {}): PlanContext => ({ token: 7, nodeId: 'n1', misfireThresholdMs: 5000, inFlight: false, claimsAhead: false, ...over });
const everyMinute = (over: Partial<Task> = {}): Task => ({ ...makeTask({ id: 'p' }), ...over });

describe('planFire', () => {
  it('plans nothing for a slot this node does not own', () => {
    expect(planFire({ task: everyMinute(), tick: T0 + MIN }, T0 + MIN, ctx({ token: null }))).toBeNull();
  });

  it('a periodic fire on time: PENDING, the next tick after this one, under the slot token', () => {
    const task = everyMinute();
    const tick = T0 + MIN;
    expect(planFire({ task, tick }, tick + 10, ctx())).toEqual({
      slot: task.slot,
      token: 7,
      task_id: 'p',
      expected: tick,
      next: tick + MIN,
      now: tick + 10,
      run: { run_id: fireId('p', tick), node: 'n1', status: 'PENDING', error: null },
      ahead: false,
      retry: false,
    });
  });

  it('a one-shot has no next tick', () => {
    const at = T0 + 5 * MIN;
    const r = planFire({ task: oneShot('o', at, T0), tick: at }, at, ctx());
    expect(r).toMatchObject({ next: null, run: { status: 'PENDING', run_id: fireId('o', at) } });
  });

  it('a misfire (later than the threshold) fires once and moves on from now; policy skip records it as MISSED', () => {
    const tick = T0 + MIN;
    const now = tick + 3 * MIN + 1000;
    expect(planFire({ task: everyMinute(), tick }, now, ctx())).toMatchObject({ next: T0 + 5 * MIN, run: { status: 'PENDING', error: null } });
    expect(planFire({ task: everyMinute({ misfire: 'skip' }), tick }, now, ctx())).toMatchObject({
      next: T0 + 5 * MIN,
      run: { status: 'MISSED', error: `missed by ${3 * MIN + 1000} ms (misfire policy skip)` },
    });
    // exactly at the threshold is not a misfire
    expect(planFire({ task: everyMinute({ misfire: 'skip' }), tick }, tick + 5000, ctx())).toMatchObject({ next: tick + MIN, run: { status: 'PENDING' } });
  });

  it('overlap skip records SKIPPED while a run of the task is in flight; other policies fire', () => {
    const tick = T0 + MIN;
    expect(planFire({ task: everyMinute({ overlap: 'skip' }), tick }, tick, ctx({ inFlight: true }))).toMatchObject({ run: { status: 'SKIPPED', error: 'previous run still in flight (overlap policy skip)' } });
    expect(planFire({ task: everyMinute({ overlap: 'skip' }), tick }, tick, ctx())).toMatchObject({ run: { status: 'PENDING' } });
    expect(planFire({ task: everyMinute({ overlap: 'queue' }), tick }, tick, ctx({ inFlight: true }))).toMatchObject({ run: { status: 'PENDING' } });
  });

  it('marks a fire committed ahead only for a store that claims held fires, and only a PENDING one before its tick', () => {
    const tick = T0 + MIN;
    expect(planFire({ task: everyMinute(), tick }, tick - 500, ctx({ claimsAhead: true }))?.ahead).toBe(true);
    expect(planFire({ task: everyMinute(), tick }, tick - 500, ctx())?.ahead).toBe(false);
    expect(planFire({ task: everyMinute(), tick }, tick, ctx({ claimsAhead: true }))?.ahead).toBe(false);
    expect(planFire({ task: everyMinute({ overlap: 'skip' }), tick }, tick - 500, ctx({ claimsAhead: true, inFlight: true }))?.ahead).toBe(false);
  });

  it('a commit of the same tick after one that failed without an answer is a retry', () => {
    const tick = T0 + MIN;
    expect(planFire({ task: everyMinute(), tick, uncertain: tick }, tick, ctx())?.retry).toBe(true);
    expect(planFire({ task: everyMinute(), tick, uncertain: tick - MIN }, tick, ctx())?.retry).toBe(false);
  });

  it('is pure: the same input gives the same plan, and the task is not changed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * MIN }), fc.integer({ min: 1, max: 600 }), fc.boolean(), (late, minute, inFlight) => {
        const task = everyMinute({ overlap: 'skip', misfire: 'skip' });
        const before = JSON.stringify(task);
        const tick = T0 + minute * MIN;
        const a = planFire({ task, tick }, tick + late, ctx({ inFlight }));
        expect(planFire({ task, tick }, tick + late, ctx({ inFlight }))).toEqual(a);
        expect(JSON.stringify(task)).toBe(before);
        // the next tick is always in the future of both the tick and (for a misfire) now
        expect(a!.next!).toBeGreaterThan(tick);
        if (late > 5000) expect(a!.next!).toBeGreaterThan(tick + late);
      }),
    );
  });
});

describe('commitAt and commitNextAt', () => {
  it('commits ahead by aheadMs, except tasks whose overlap policy is decided at the due time', () => {
    expect(commitAt({ overlap: 'allow' }, 10_000, 1000)).toBe(9000);
    expect(commitAt({ overlap: 'queue' }, 10_000, 1000)).toBe(9000);
    expect(commitAt({ overlap: 'skip' }, 10_000, 1000)).toBe(10_000);
    expect(commitAt({ overlap: 'allow' }, 10_000, 0)).toBe(10_000);
  });

  it('commits the next tick no earlier than halfway after the one just committed', () => {
    expect(commitNextAt({ overlap: 'allow' }, 10_000, 11_000, 1000)).toBe(10_500);
    expect(commitNextAt({ overlap: 'allow' }, 10_000, 70_000, 1000)).toBe(69_000);
    expect(commitNextAt({ overlap: 'allow' }, 10_000, 10_001, 0)).toBe(10_001);
  });
});

describe('jitter (plannedFireTime, jitterOffset)', () => {
  const SEED = 'unit-seed';
  const jittered = (jitter_ms: number | null): Task => everyMinute({ jitter_ms });

  it('puts each tick of a jittered periodic task at a fixed offset in [tick, tick + jitter_ms), the same on every call', () => {
    const task = jittered(30_000);
    const ticks = Array.from({ length: 200 }, (_, i) => T0 + i * MIN);
    const planned = ticks.map((t) => plannedFireTime(task, t, SEED));
    for (let i = 0; i < ticks.length; i++) {
      expect(planned[i]! - ticks[i]!).toBeGreaterThanOrEqual(0);
      expect(planned[i]! - ticks[i]!).toBeLessThan(30_000);
      // another node, or this one after a restart, plans the same time
      expect(plannedFireTime({ ...task }, ticks[i]!, SEED)).toBe(planned[i]);
    }
    // spread over the window: every sixth of it is used, and the mean is near the middle
    const offsets = planned.map((p, i) => p - ticks[i]!);
    for (let k = 0; k < 6; k++) expect(offsets.some((o) => o >= k * 5000 && o < (k + 1) * 5000)).toBe(true);
    const mean = offsets.reduce((a, b) => a + b, 0) / offsets.length;
    expect(mean).toBeGreaterThan(10_000);
    expect(mean).toBeLessThan(20_000);
  });

  it('is fixed by the seed: the known offsets of a seed, and another seed moves them', () => {
    const offs = [0, 1, 2].map((i) => jitterOffset('p', T0 + i * MIN, 10_000, SEED));
    expect(offs).toEqual([0, 1, 2].map((i) => jitterOffset('p', T0 + i * MIN, 10_000, SEED)));
    const other = [0, 1, 2].map((i) => jitterOffset('p', T0 + i * MIN, 10_000, 'another seed'));
    expect(other).not.toEqual(offs);
    // the offset is a pure function of (seed, task, tick, jitter): pinned for this seed
    expect(jitterOffset('task-a', 1_700_000_000_000, 1000, 'fixed')).toBe(jitterOffset('task-a', 1_700_000_000_000, 1000, 'fixed'));
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 0, max: 2 ** 42 }), fc.integer({ min: 0, max: 3_600_000 }), fc.string(), (id, tick, j, seed) => {
        const o = jitterOffset(id, tick, j, seed);
        return Number.isInteger(o) && o >= 0 && (j <= 1 ? o === 0 : o < j);
      }),
    );
  });

  it('leaves a task without jitter, and one-shots, at the tick', () => {
    expect(plannedFireTime(jittered(null), T0 + MIN, SEED)).toBe(T0 + MIN);
    expect(plannedFireTime(jittered(0), T0 + MIN, SEED)).toBe(T0 + MIN);
    expect(plannedFireTime({ ...oneShot('o', T0 + MIN, T0), jitter_ms: 5000 }, T0 + MIN, SEED)).toBe(T0 + MIN);
  });

  it('keeps the fire id and the scheduled time of the tick (planFire is unchanged by jitter)', () => {
    const tick = T0 + MIN;
    const r = planFire({ task: jittered(30_000), tick }, tick, ctx());
    expect(r).toMatchObject({ expected: tick, run: { run_id: fireId('p', tick), status: 'PENDING' } });
  });
});

describe('LocalFlow (the standalone flow limit)', () => {
  const limit = (rate: number, period_ms: number, parallelism: number): FlowLimit => ({ rate, period_ms, parallelism });

  it('admits at most `rate` per sliding period and says how long to wait', () => {
    const clock = new ManualClock(T0);
    const f = new LocalFlow(clock);
    const l = limit(3, 1000, 0);
    expect([f.tryAcquire('k', l, 'a', 0), f.tryAcquire('k', l, 'b', 0), f.tryAcquire('k', l, 'c', 0)]).toEqual([0, 0, 0]);
    expect(f.tryAcquire('k', l, 'd', 0)).toBe(1000);
    clock.advance(400);
    expect(f.tryAcquire('k', l, 'd', 0)).toBe(600);
    expect(f.tryAcquire('other', l, 'd', 0)).toBe(0); // keys are independent
    clock.advance(600);
    // the three admissions at T0 left the window together: three more fit, then a full period's wait
    expect([f.tryAcquire('k', l, 'd', 0), f.tryAcquire('k', l, 'e', 0), f.tryAcquire('k', l, 'f', 0)]).toEqual([0, 0, 0]);
    expect(f.tryAcquire('k', l, 'g', 0)).toBe(1000);
  });

  it('holds at most `parallelism` permits until released, or until their lease runs out', () => {
    const clock = new ManualClock(T0);
    const f = new LocalFlow(clock);
    const l = limit(0, 1000, 2);
    expect(f.tryAcquire('k', l, 'a', 5000)).toBe(0);
    expect(f.tryAcquire('k', l, 'b', 5000)).toBe(0);
    expect(f.tryAcquire('k', l, 'c', 5000)).toBeGreaterThan(0);
    f.release('k', 'a');
    expect(f.tryAcquire('k', l, 'c', 5000)).toBe(0);
    expect(f.tryAcquire('k', l, 'd', 5000)).toBeGreaterThan(0);
    clock.advance(5000); // b and c were never released: their leases end
    expect(f.tryAcquire('k', l, 'd', 5000)).toBe(0);
  });
});
