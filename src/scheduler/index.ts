/**
 * The scheduler: for the slots this node owns, keeps the tasks due inside the lookahead window in
 * a timer heap, commits due fires in batches through `store.commitFires` (fencing token +
 * compare-and-set), hands committed fires to delivery, and records the outcome.
 *
 * This class wires the parts and is the facade the rest of the service uses:
 * - window.ts: the lookahead window (heap, horizon, scans, safety rescan);
 * - plan.ts: planFire, pure; committer.ts: batches, coalescing, store backoff, conflicts;
 * - held.ts: fires committed ahead and held until due, with one strategy per store
 *   (held-local.ts: undone here; held-claims.ts: undone and claimed in a shared store);
 * - outbox.ts: recovery and single-run delivery; dispatcher.ts and inflight.ts: delivery, overlap;
 * - deadlines.ts: async report deadlines; follow-ups.ts: children, alerts, auto-pause.
 */
import { EventEmitter } from 'node:events';
import type { Run, Task } from '../task/index.js';
import { Committer } from './committer.js';
import { SchedulerCore } from './core.js';
import { Deadlines } from './deadlines.js';
import { Dispatcher } from './dispatcher.js';
import { FollowUps } from './follow-ups.js';
import { StoreClaims } from './held-claims.js';
import { LocalUndo } from './held-local.js';
import type { HeldFires } from './held.js';
import { InFlight } from './inflight.js';
import { Outbox } from './outbox.js';
import type { SchedulerEvents, SchedulerOptions } from './types.js';
import { Window } from './window.js';

export type * from './types.js';

/** The periodic outbox refresh reads runs scheduled at least this long ago (see onAcquired). */
const PERIODIC_OUTBOX_LAG_MS = 10_000;
/** How long a report waits for the callback answer of its run still in progress here. */
const REPORT_WAIT_MS = 1000;

export class Scheduler extends EventEmitter<SchedulerEvents> {
  private readonly c: SchedulerCore;
  private readonly window: Window;
  private readonly committer: Committer;
  private readonly held: HeldFires;
  private readonly dispatcher: Dispatcher;
  private readonly deadlines: Deadlines;
  private readonly outbox: Outbox;
  private stopping: Promise<void> | null = null;

  constructor(o: SchedulerOptions) {
    super();
    const c = (this.c = new SchedulerCore(o, this));
    const inflight = new InFlight(
      (d) => void this.dispatcher.run(d),
      () => c.stopped,
    );
    this.deadlines = new Deadlines(c, inflight, (d) => void this.dispatcher.run(d));
    this.dispatcher = new Dispatcher(c, inflight, this.deadlines, (runId) => this.deliverRun(runId));
    const heldFires = o.store.heldFires;
    // A held fire needs a store that can undo it: here (uncommitFire) or shared (heldFires).
    const aheadMs = o.store.uncommitFire || heldFires ? (o.commitAheadMs ?? 0) : 0;
    this.held = heldFires
      ? new StoreClaims(c, this.dispatcher, aheadMs, heldFires)
      : new LocalUndo(c, this.dispatcher, aheadMs, (task, tick) => {
          this.window.put(this.window.entryFor(task, tick));
          this.committer.arm();
        });
    this.window = new Window(c, this.held, () => this.committer.arm());
    this.committer = new Committer(c, this.window, this.held, this.dispatcher, (ids) => this.reloadConflicts(ids));
    this.outbox = new Outbox(c, this.dispatcher, this.deadlines, this.held);
    new FollowUps(c);
    o.ownership.on('acquired', (slots, periodic) => void this.onAcquired(slots, periodic === true));
    o.ownership.on('lost', (slots) => this.onLost(slots));
  }

  /** Tasks currently held in memory (due inside the lookahead window). */
  loadedCount(): number {
    return this.window.size;
  }
  inflightCount(): number {
    return this.dispatcher.inflight.size;
  }
  /** Fires committed ahead of their due time, waiting for it on this node. */
  heldCount(): number {
    return this.held.count();
  }
  /** Fires waiting on a flow limit on this node, by flow key (`task` for tasks' own limits). */
  flowWaiting(): Map<string, number> {
    return this.dispatcher.pacer.waiting();
  }
  /** Async runs awaiting a report on this node. */
  awaitingCount(): number {
    return this.deadlines.size;
  }

  /** Redelivers the outbox of the owned slots, loads the window, and starts the timers. */
  async start(): Promise<void> {
    this.c.stopped = false;
    this.stopping = null;
    const owned = this.c.o.ownership.ownedSlots();
    if (owned.length > 0) await this.outbox.recover(owned);
    await this.window.scan();
    this.window.scheduleScan();
  }

  /**
   * Stops timers and waits for a commit in progress, then undoes the fires committed ahead and
   * still held, so a stopped server leaves no fire committed before its time (an export then sees
   * those tasks as not fired yet; a restart fires them when due). Deliveries are drained by the caller.
   * Safe to call twice: returns the same promise.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    this.c.stopped = true;
    const committing = this.committer.stop();
    const scanning = this.window.stop();
    // Held fires are undone below; those recovered from the outbox stay there and go out at
    // their time after the next start.
    this.held.stopTimer();
    this.deadlines.stop();
    this.dispatcher.pacer.stop();
    await committing;
    await scanning;
    await this.held.undoAtStop();
  }

  /** Writes queued run updates (called after deliveries drain, before the store closes). */
  async flush(): Promise<void> {
    await this.c.recorder.flush();
    this.c.recorder.stop();
  }

  // ---- notifications from the API (and, in a cluster, from other nodes) ----

  /** A task was created or changed: (re)load it if it is ours and due inside the horizon. */
  taskChanged(task: Task): void {
    if (this.c.stopped) return;
    this.window.taskChanged(task);
  }

  /** A task was deleted (its runs with it): a fire held for it is dropped. */
  taskRemoved(id: string): void {
    this.window.remove(id);
    this.dispatcher.inflight.dropQueued(id);
    this.dispatcher.pacer.drop((d) => d.task.id === id);
    this.held.taskRemoved(id);
  }

  /**
   * Called before the API changes or deletes a task: a fire of it committed ahead and still held
   * (not yet due) is undone, so the change applies to that tick as if the fire had not been
   * committed (see the held-fire strategies).
   */
  cancelAhead(taskId: string): Promise<void> {
    return this.held.cancelAhead(taskId);
  }

  /**
   * The task as the API shows it: while a fire of it is committed ahead and held (not yet due), the
   * task is shown as before that commit (its tick still next, a one-shot still active).
   */
  viewOf(task: Task): Task {
    return this.held.viewOf(task);
  }

  /** A manual fire (triggerTask) was recorded, or a run left to this node: deliver it if this node owns the slot. */
  deliverRun(runId: string): Promise<void> {
    return this.outbox.deliverRun(runId);
  }

  /**
   * Reads the outbox of every owned slot again and redelivers what is not in flight here (after
   * the store thread was replaced: a commit may have landed without its answer).
   */
  async redeliverOutbox(): Promise<void> {
    if (this.c.stopped) return;
    const owned = this.c.o.ownership.ownedSlots();
    if (owned.length > 0) await this.outbox.recover(owned);
  }

  /** Extends the horizon to now + lookahead (see Window.scan). */
  scan(): Promise<void> {
    return this.window.scan();
  }

  /** The safety net (see Window.safetyRescan). */
  safetyRescan(): Promise<void> {
    return this.window.safetyRescan();
  }

  // ---- async completion ----

  /** A report for `runId` arrived: waits (at most `maxWaitMs`) for its callback answer still in progress here. */
  beforeReport(runId: string, maxWaitMs = REPORT_WAIT_MS): Promise<void> {
    return this.deadlines.beforeReport(runId, maxWaitMs);
  }

  /** A report closed a run that this node may be waiting on: stop its deadline, end its in-flight state. */
  releaseReported(runId: string): void {
    this.deadlines.releaseReported(runId);
  }

  /** A run was closed by a report (or its deadline) on this node: children, alerts and stats act on it. */
  reported(run: Run, task: Task | null, token?: number): void {
    this.deadlines.reported(run, task, token);
  }

  // ---- ownership ----

  private async onAcquired(slots: number[], periodic: boolean): Promise<void> {
    if (this.c.stopped || slots.length === 0) return; // before start(): start() recovers and scans
    if (periodic) {
      // A safety net for runs left by a node that went unnoticed, on slots loaded already (the
      // safety rescan re-checks their window). Runs scheduled in the last PERIODIC_OUTBOX_LAG_MS
      // are in flight on the nodes that fired them: reading them all (a burst's whole outbox, and
      // each run's task) found nothing to send, and cost a node as much as the burst's commits.
      // A run left among them is found by the next refresh.
      await this.outbox.recover(slots, this.c.o.clock.now() - PERIODIC_OUTBOX_LAG_MS);
      this.committer.arm();
      return;
    }
    // Load the new slots up to the current horizon, then redeliver their outbox.
    await this.window.loadSlots(slots);
    await this.outbox.recover(slots);
    this.dispatcher.acquired(slots);
    this.committer.arm();
  }

  private onLost(slots: number[]): void {
    const lost = new Set(slots);
    this.deadlines.dropSlots(lost);
    this.window.dropSlots(lost);
    this.dispatcher.giveBack(lost);
    this.held.dropSlots(lost);
  }

  /** The stored task moved under us (updated, paused, deleted, or fired elsewhere): re-read it. */
  private async reloadConflicts(ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        const t = await this.c.o.store.get(id);
        if (t) this.taskChanged(t);
        else this.taskRemoved(id);
      } catch (e) {
        this.c.storeError(e);
      }
    }
  }
}
