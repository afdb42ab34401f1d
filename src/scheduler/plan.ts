/**
 * Fire planning, pure: what committing a task's due tick does (its run's status, the next tick),
 * and when a tick is committed. No I/O, no clock, no state: every input is an argument.
 */
import type { FireRequest } from '../store/types.js';
import { PERIODIC, fireId, nextFire, type Task } from '../task/index.js';

export interface PlanInput {
  task: Task;
  /** The tick to fire (the task's next_fire_time as loaded). */
  tick: number;
  /** The tick of a commit that failed without a usable answer: committing it again is a retry. */
  uncertain?: number | undefined;
}

export interface PlanContext {
  /** This node's fencing token for the task's slot (null: not owned, nothing is planned). */
  token: number | null;
  nodeId: string;
  /** A periodic fire later than this is a misfire (its policy decides). */
  misfireThresholdMs: number;
  /** A run of the task is in flight on this node (overlap 'skip' skips this one). */
  inFlight: boolean;
  /** The store holds fires committed ahead for a claim (HeldFireStore): mark them `ahead`. */
  claimsAhead: boolean;
}

/** The commit request for a due tick of a task at `now`, or null when this node does not own it. */
export function planFire(e: PlanInput, now: number, c: PlanContext): FireRequest | null {
  const { task } = e;
  if (c.token === null) return null;
  let status: FireRequest['run']['status'] = 'PENDING';
  let error: string | null = null;
  let next: number | null = null;
  if (task.type === PERIODIC) {
    const late = now - e.tick;
    if (late > c.misfireThresholdMs) {
      next = nextFire(task, now);
      if (task.misfire === 'skip') {
        status = 'MISSED';
        error = `missed by ${late} ms (misfire policy skip)`;
      }
    } else {
      next = nextFire(task, e.tick);
    }
    if (status === 'PENDING' && task.overlap === 'skip' && c.inFlight) {
      status = 'SKIPPED';
      error = 'previous run still in flight (overlap policy skip)';
    }
  }
  return {
    slot: task.slot,
    token: c.token,
    task_id: task.id,
    expected: e.tick,
    next,
    now,
    run: { run_id: fireId(task.id, e.tick), node: c.nodeId, status, error },
    ahead: c.claimsAhead && status === 'PENDING' && e.tick > now,
    retry: e.uncertain === e.tick,
  };
}

/** When to commit a task's tick: `aheadMs` before it, unless its overlap policy is decided at the due time. */
export function commitAt(task: Pick<Task, 'overlap'>, tick: number, aheadMs: number): number {
  return aheadMs > 0 && task.overlap !== 'skip' ? tick - aheadMs : tick;
}

/**
 * When to commit the next tick of a task whose tick `prev` was just committed: no earlier than
 * halfway between the two, so there is one held fire per task, and a task firing every second does
 * not commit its next tick in the same moment its current one goes out.
 */
export function commitNextAt(task: Pick<Task, 'overlap'>, prev: number, next: number, aheadMs: number): number {
  return Math.max(commitAt(task, next, aheadMs), prev + Math.floor((next - prev) / 2));
}
