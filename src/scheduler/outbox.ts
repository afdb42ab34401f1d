/**
 * The outbox: committed runs not finished yet. Recovery reads it for the owned slots (at start, on
 * acquiring slots, periodically, after the store thread was replaced) and redelivers what is not on
 * its way here, with the same fire id and the attempt count carried on; a single run (a manual
 * trigger, or one left by a node whose lease lapsed) is delivered with deliverRun.
 */
import type { DueKey } from '../store/types.js';
import type { Run, Task } from '../task/index.js';
import { redeliveryAttempt } from './attempts.js';
import type { SchedulerCore } from './core.js';
import type { Deadlines } from './deadlines.js';
import type { Dispatcher } from './dispatcher.js';
import type { HeldFires } from './held.js';
import type { Dispatch } from './types.js';

/** Runs read per outbox query. */
const OUTBOX_PAGE = 1000;

export class Outbox {
  /** Runs a deliverRun call is reading (a second call for the same run returns at once). */
  private readonly delivering = new Set<string>();

  constructor(
    private readonly c: SchedulerCore,
    private readonly dispatcher: Dispatcher,
    private readonly deadlines: Deadlines,
    private readonly held: HeldFires,
  ) {}

  /** The run is on its way here already: in flight, awaiting its report, or held. */
  private onItsWay(runId: string): boolean {
    return this.dispatcher.inflight.has(runId) || this.deadlines.has(runId) || this.held.isHeld(runId);
  }

  /** Redelivers committed but unfinished runs (the outbox) of the given slots, same fire id. */
  async recover(slots: number[], upTo?: number): Promise<void> {
    const { ownership, store, log } = this.c.o;
    const filter = slots.length === ownership.slotCount ? null : slots;
    let after: DueKey | null = null;
    let count = 0;
    try {
      for (;;) {
        const rows = await store.unfinishedRuns({ slots: filter, after, limit: OUTBOX_PAGE, ...(upTo === undefined ? {} : { upTo }) });
        for (const { run, task } of rows) {
          const token = ownership.tokenFor(run.slot);
          if (this.onItsWay(run.run_id) || token === null) continue;
          if (this.c.recorder.finishedHere(run.run_id)) continue; // delivered here, its outcome not written yet
          if (run.status === 'RUNNING' && run.deadline !== null) {
            // An async run awaiting its report: not redelivered; its deadline is enforced here now.
            this.deadlines.adopt(task, run, token);
            continue;
          }
          count++;
          this.redeliver(run, task, token);
        }
        if (rows.length < OUTBOX_PAGE) break;
        const last = rows[rows.length - 1]!.run;
        after = { time: last.scheduled_time, id: last.run_id };
      }
    } catch (e) {
      this.c.storeError(e);
    }
    if (count > 0) log.info({ count }, 'redelivering unfinished runs from the outbox');
  }

  /** A run from the outbox: held until its time if it was committed ahead, delivered otherwise. */
  private redeliver(run: Run, task: Task, token: number): void {
    const marker = this.c.o.store.heldFires?.heldOf(task) ?? null;
    // Counts on from every attempt that may have reached the receiver (src/scheduler/attempts.ts).
    const d: Dispatch = { task, run_id: run.run_id, scheduled: run.scheduled_time, first_attempt: redeliveryAttempt(run, marker, this.c.o.clock.now()), token, request: run.request };
    if (!this.held.holdRecovered(d, run, marker)) this.dispatcher.dispatch(d);
  }

  /** A run was recorded (a manual trigger) or left to this node: deliver it if this node owns its slot. */
  async deliverRun(runId: string): Promise<void> {
    if (this.c.stopped || this.dispatcher.inflight.has(runId) || this.held.isHeld(runId) || this.delivering.has(runId)) return;
    this.delivering.add(runId);
    const { store, ownership, clock } = this.c.o;
    try {
      const first = await store.getRun(runId);
      if (!first || (first.status !== 'PENDING' && first.status !== 'RUNNING')) return;
      const task = await store.get(first.task_id);
      if (!task) return;
      // The run is read again last, and checked in the same turn as it is handed over: a delivery of
      // it here that ended meanwhile has its outcome written (the read says so) or queued
      // (finishedHere), and one still going is in flight. Either way it is not sent twice.
      const run = await store.getRun(runId);
      if (!run || (run.status !== 'PENDING' && run.status !== 'RUNNING')) return;
      const token = ownership.tokenFor(run.slot);
      if (this.c.stopped || token === null || this.onItsWay(runId) || this.c.recorder.finishedHere(runId)) return;
      if (this.dispatcher.inflight.isQueued(task.id, runId)) return; // waiting behind a run of its task (overlap queue)
      if (run.status === 'RUNNING' && run.deadline !== null) {
        // An async run awaiting its report, left by a node whose lease lapsed: its deadline is enforced here.
        this.deadlines.adopt(task, run, token);
        return;
      }
      this.c.events.emit('fired', { task_id: task.id, run_id: runId, scheduled_time: run.scheduled_time, committed_at: run.scheduled_time, status: 'PENDING' });
      this.c.events.emit('released', { task_id: task.id, run_id: runId, scheduled_time: run.scheduled_time, released_at: Math.max(run.scheduled_time, clock.now()) });
      this.dispatcher.dispatch({ task, run_id: runId, scheduled: run.scheduled_time, first_attempt: run.attempts + 1, token, request: run.request });
    } catch (e) {
      this.c.storeError(e);
    } finally {
      this.delivering.delete(runId);
    }
  }
}
