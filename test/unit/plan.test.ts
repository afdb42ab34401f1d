import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commitAt, commitNextAt, planFire, type PlanContext } from '../../src/scheduler/plan.js';
import { fireId, type Task } from '../../src/task/index.js';
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
