/**
 * Held fires undone here: a store of this process (standalone) undoes a fire committed ahead with
 * uncommitFire when the API changes or deletes its task before the fire is due, and at stop.
 */
import type { Task } from '../task/index.js';
import type { SchedulerCore } from './core.js';
import { HeldFires, type Held, type HeldDelivery } from './held.js';
import type { Dispatch } from './types.js';

export class LocalUndo extends HeldFires {
  readonly claimsAhead = false;

  /** `requeue`: puts the task back in the window at `tick` (its fire was undone). */
  constructor(
    c: SchedulerCore,
    delivery: HeldDelivery,
    aheadMs: number,
    private readonly requeue: (task: Task, tick: number) => void,
  ) {
    super(c, delivery, aheadMs);
  }

  holdCommitted(d: Dispatch, undo: NonNullable<Held['undo']>): void {
    this.hold({ tick: d.scheduled, id: d.run_id, d, undo, claim: false });
  }

  protected claim(h: Held): void {
    // Only a store with claims holds fires for a claim; here a due held fire just goes out.
    this.delivery.dispatch(h.d);
  }

  protected inClaim(): Held | undefined {
    return undefined;
  }

  /**
   * The fire is undone in the store (run removed, tick and counters restored), and the task goes
   * back into the window at its tick (not ahead), so the change can land first. A held fire that
   * cannot be undone (its run moved on, or it was recovered from the outbox) goes out as committed.
   */
  async cancelAhead(taskId: string): Promise<void> {
    const h = this.byTask.get(taskId);
    const uncommit = this.c.o.store.uncommitFire?.bind(this.c.o.store);
    if (!h || !h.undo || !uncommit || this.c.stopped) return;
    this.unhold(h);
    const task = h.d.task;
    let undone = false;
    try {
      undone = await uncommit({ task_id: taskId, run_id: h.id, tick: h.tick, next: h.undo.next, last_fire_time: h.undo.last_fire_time });
    } catch (e) {
      this.c.storeError(e);
    }
    if (!undone) {
      this.hold(h);
      return;
    }
    task.next_fire_time = h.tick;
    task.state = 'active';
    task.run_count--;
    task.last_fire_time = h.undo.last_fire_time;
    if (!this.c.stopped && this.c.o.ownership.tokenFor(task.slot) !== null) this.requeue(task, h.tick);
    this.c.o.log.debug({ task_id: taskId, fire_id: h.id }, 'fire committed ahead undone before the task changed');
  }

  viewOf(task: Task): Task {
    const h = this.byTask.get(task.id);
    if (!h || !h.undo || task.last_fire_time !== h.tick || task.next_fire_time !== h.undo.next) return task;
    return { ...task, state: task.state === 'completed' ? 'active' : task.state, next_fire_time: h.tick, run_count: task.run_count - 1, last_fire_time: h.undo.last_fire_time };
  }

  /** Undoes every held fire that can be undone here; those recovered from the outbox stay there. */
  override async undoAtStop(): Promise<void> {
    const uncommit = this.c.o.store.uncommitFire?.bind(this.c.o.store);
    let undone = 0;
    for (const h of [...this.byRun.values()]) {
      this.unhold(h);
      if (!h.undo || !uncommit) continue; // recovered from the outbox: delivered after the next start
      try {
        if (await uncommit({ task_id: h.d.task.id, run_id: h.id, tick: h.tick, next: h.undo.next, last_fire_time: h.undo.last_fire_time })) undone++;
      } catch (e) {
        this.c.storeError(e);
        break; // the store is gone: the rest stay in the outbox and go out after the next start
      }
    }
    if (undone > 0) this.c.o.log.info({ undone }, 'fires committed ahead of their due time undone at stop');
  }
}
