/**
 * The committer: wakes when the earliest loaded task is due, takes the due entries out of the
 * window in batches, plans each fire (planFire) and commits the batch through `store.commitFires`
 * (fencing token + compare-and-set). Commits are coalesced while fires stream in, and wait after a
 * store failure. A committed fire goes to delivery at once, or is held until its due time; a
 * conflict (the task moved under us) re-reads the task.
 */
import type { TimerHandle } from '../clock/index.js';
import type { FireRequest, FireResult } from '../store/types.js';
import type { SchedulerCore } from './core.js';
import { nextTurn } from './core.js';
import type { Dispatcher } from './dispatcher.js';
import type { HeldFires } from './held.js';
import { commitNextAt, planFire } from './plan.js';
import type { Dispatch, Entry } from './types.js';
import type { Window } from './window.js';

/** Batches at least this large mean fires are streaming in: the next commit may wait a little. */
const COALESCE_MIN_BATCH = 4;
/** How long commits wait after the store failed. */
const STORE_BACKOFF_MS = 1000;

export class Committer {
  private timer: TimerHandle | null = null;
  private timerAt = Infinity;
  private firing: Promise<void> | null = null;
  private wakeAgain = false;
  private storeBackoffUntil = 0;
  private lastCommitAt = -Infinity;
  private lastBatchSize = 0;

  /** `reload`: re-reads tasks whose commit conflicted (moved, paused, deleted, or fired elsewhere). */
  constructor(
    private readonly c: SchedulerCore,
    private readonly window: Window,
    private readonly held: HeldFires,
    private readonly dispatcher: Dispatcher,
    private readonly reload: (ids: string[]) => Promise<void>,
  ) {}

  /**
   * Commits are coalesced only while fires stream in (the last batch held several): a lone fire
   * is committed at once, so light loads keep their millisecond lateness.
   */
  private coalesceMs(): number {
    return this.lastBatchSize >= COALESCE_MIN_BATCH ? (this.c.o.commitCoalesceMs ?? 0) : 0;
  }

  /** Sets the timer for the earliest due entry (or keeps an earlier one). */
  arm(): void {
    if (this.c.stopped) return;
    if (this.firing) {
      this.wakeAgain = true;
      return;
    }
    const top = this.window.peek();
    if (!top) {
      this.timer?.cancel();
      this.timer = null;
      this.timerAt = Infinity;
      return;
    }
    const now = this.c.o.clock.now();
    const at = Math.max(top.at, this.storeBackoffUntil, this.lastCommitAt + this.coalesceMs());
    const delay = Math.min(Math.max(0, at - now), this.c.o.maxSleepMs);
    const wakeAt = now + delay;
    if (this.timer && this.timerAt <= wakeAt) return; // an earlier (or equal) wake is already set
    this.timer?.cancel();
    this.timerAt = wakeAt;
    this.timer = this.c.o.clock.setTimer(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.onTimer();
    }, delay);
  }

  /** Cancels the timer and waits for a commit in progress. */
  async stop(): Promise<void> {
    this.timer?.cancel();
    this.timer = null;
    if (this.firing) await this.firing;
  }

  private onTimer(): void {
    if (this.c.stopped || this.firing) return;
    this.firing = this.fireDue().finally(() => {
      this.firing = null;
      const again = this.wakeAgain;
      this.wakeAgain = false;
      if (again) this.arm();
      this.arm();
    });
  }

  /** Fires per commit: batchSize, or batchPerSlot per owned slot when that is more. */
  private batchLimit(): number {
    const { batchSize, batchPerSlot, ownership } = this.c.o;
    const per = batchPerSlot ?? 0;
    return per > 0 ? Math.max(batchSize, per * ownership.ownedSlots().length) : batchSize;
  }

  /** Commits every due entry, batch by batch. Each wake re-reads the clock (early and late wakes). */
  private async fireDue(): Promise<void> {
    for (;;) {
      if (this.c.stopped) return;
      const now = this.c.o.clock.now();
      if (now < this.storeBackoffUntil) return;
      if (now < this.lastCommitAt + this.coalesceMs()) return; // arm wakes us then
      const limit = this.batchLimit();
      const batch = this.window.takeDue(now, limit);
      if (batch.length === 0) return; // woke early: arm sets the next wake
      await this.commitBatch(batch, now);
      this.lastCommitAt = batch.length === limit ? -Infinity : this.c.o.clock.now();
      this.lastBatchSize = batch.length;
      // Let I/O (deliveries, API requests) run between batches of a large burst.
      if (batch.length === limit) await nextTurn();
    }
  }

  private plan(batch: Entry[], now: number): { reqs: FireRequest[]; planned: Entry[] } {
    const reqs: FireRequest[] = [];
    const planned: Entry[] = [];
    const { ownership, nodeId, misfireThresholdMs } = this.c.o;
    for (const e of batch) {
      let r: FireRequest | null;
      try {
        const ctx = { token: ownership.tokenFor(e.task.slot), nodeId, misfireThresholdMs, inFlight: this.dispatcher.inflight.busy(e.task.id), claimsAhead: this.held.claimsAhead };
        r = planFire(e, now, ctx);
      } catch (err) {
        this.c.o.log.error({ err, task_id: e.id }, 'cannot compute next fire; task skipped');
        continue;
      }
      if (!r) continue;
      reqs.push(r);
      planned.push(e);
      this.window.committing.add(e.id);
    }
    return { reqs, planned };
  }

  private async commitBatch(batch: Entry[], now: number): Promise<void> {
    const { reqs, planned } = this.plan(batch, now);
    let results: FireResult[];
    try {
      results = await this.c.o.store.commitFires(reqs);
    } catch (err) {
      // Nothing known committed: put the entries back and retry after a pause. The commit may
      // still stand in the store (its reply was lost, or the replicas did not confirm it in time):
      // the retry says so, and the store then answers 'committed' for it instead of 'conflict',
      // so the fire goes out once the store answers again, not after an outbox re-read.
      for (const e of planned) {
        e.uncertain = e.tick;
        this.window.committing.delete(e.id);
        if (!this.window.has(e.id)) this.window.put(e);
      }
      this.storeBackoffUntil = this.c.o.clock.now() + STORE_BACKOFF_MS;
      this.c.storeError(err);
      return;
    }
    this.storeBackoffUntil = 0;
    const conflicts: string[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i]!;
      const e = planned[i]!;
      this.window.committing.delete(e.id);
      const res = results[i];
      if (res === 'fenced') {
        this.c.o.log.warn({ slot: r.slot, task_id: r.task_id }, 'fencing token refused: slot lost, not firing');
        this.c.fenced(r.slot);
        continue;
      }
      if (res === 'conflict') {
        conflicts.push(r.task_id);
        continue;
      }
      this.committed(r, e, now);
    }
    if (conflicts.length > 0) await this.reload(conflicts);
  }

  /** A fire was committed: the task snapshot moves on, and the fire is held or delivered. */
  private committed(r: FireRequest, e: Entry, now: number): void {
    const counted = r.run.status === 'PENDING';
    // The snapshot is updated in place and its entry reused: a task firing every second would
    // otherwise leave two objects a second for the old generation of the heap to collect.
    const task = e.task;
    const lastBefore = task.last_fire_time;
    task.next_fire_time = r.next;
    if (r.next === null) task.state = 'completed';
    if (counted) task.run_count++;
    task.last_fire_time = r.expected;
    if (r.next !== null && !this.window.has(task.id) && this.window.covers(r.next, task.id)) {
      e.tick = r.next;
      e.at = commitNextAt(task, r.expected, r.next, this.held.aheadMs);
      this.window.put(e);
    }
    this.c.events.emit('fired', { task_id: r.task_id, run_id: r.run.run_id, scheduled_time: r.expected, committed_at: now, status: r.run.status });
    if (!counted) return;
    const runId = r.run.run_id;
    // A retried commit whose fire is on its way here already (an outbox re-read found it in the
    // meantime): not sent twice.
    if (r.retry === true && (this.dispatcher.inflight.has(runId) || this.held.has(runId))) return;
    // The same fire held here from an earlier commit: that commit was undone (a run is committed
    // again only after its undo), so the earlier one must not go out as well.
    this.held.supersede(runId);
    const d: Dispatch = { task, run_id: runId, scheduled: r.expected, first_attempt: 1, token: r.token };
    if (r.expected > now) this.held.holdCommitted(d, { next: r.next, last_fire_time: lastBefore }, r.ahead === true);
    else {
      this.c.events.emit('released', { task_id: r.task_id, run_id: runId, scheduled_time: r.expected, released_at: now });
      this.dispatcher.dispatch(d);
    }
  }
}
