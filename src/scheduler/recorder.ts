/**
 * RunRecorder: run-state writes (RUNNING, attempts, final outcome) are coalesced per run and
 * written in one batch off the hot path. A lost write is safe: an unfinished run is redelivered.
 *
 * With a `backlogged` probe (standalone mode), the writes also wait while callbacks are queued
 * for a connection (a burst being sent): the history yields its CPU to the callbacks still due,
 * for at most MAX_DEFER_MS and MAX_DEFERRED runs, and is written when the queue empties. What the
 * wait risks is only a crash inside it: those runs are unfinished in the store and are delivered
 * again after the restart, with the same fire id (at-least-once). Not in cluster mode: there a
 * node acquiring a slot must find the RUNNING and final states of runs a live node delivered.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock/index.js';
import type { RunUpdate, TaskStore } from '../store/types.js';

const FLUSH_DELAY_MS = 25;
/** How long a failed write waits before it is tried again. */
const RETRY_MS = 1000;
/** The longest a run's write waits for a delivery backlog to clear. */
export const MAX_DEFER_MS = 3000;
/** Runs queued at most before they are written, backlog or not. */
const MAX_DEFERRED = 100_000;
/** Runs per store call when a large deferred batch is written (one message each way). */
const WRITE_CHUNK = 5000;

export class RunRecorder {
  private pending = new Map<string, RunUpdate>();
  /** The batch being written now (its updates are no longer in `pending`). */
  private writing: ReadonlyMap<string, RunUpdate> = new Map();
  private scheduled = false;
  private urgentScheduled = false;
  private flushing: Promise<void> | null = null;
  private retryTimer: TimerHandle | null = null;
  /** When the oldest update queued now was queued. */
  private oldestAt = 0;
  /** Flushes put off because callbacks were queued. */
  deferrals = 0;

  constructor(
    private readonly store: TaskStore,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly onFlushed?: (updates: readonly RunUpdate[]) => void,
    /** True while callbacks wait for a connection (the writes wait too, within the bounds above). */
    private readonly backlogged?: () => boolean,
  ) {}

  /**
   * Queues an update. `urgent` writes it on the next turn instead of after the coalescing delay
   * (async runs: the worker may report within milliseconds, and its report must find the attempt
   * and HTTP status already recorded).
   */
  push(u: RunUpdate, urgent = false): void {
    const prev = this.pending.get(u.run_id);
    if (prev && prev.status !== 'RUNNING' && u.status === 'RUNNING') return; // a final state wins
    if (prev) mergeDefined(prev, u);
    else {
      if (this.pending.size === 0) this.oldestAt = this.clock.now();
      this.pending.set(u.run_id, u);
    }
    if (urgent && !this.urgentScheduled) {
      this.urgentScheduled = true;
      setImmediate(() => {
        this.urgentScheduled = false;
        void this.flush();
      });
    }
    if (!this.scheduled) {
      // A short delay lets a fast run's RUNNING and final state coalesce into one write.
      this.scheduled = true;
      this.clock.setTimer(() => this.onTimer(), FLUSH_DELAY_MS);
    }
  }

  private onTimer(): void {
    if (this.backlogged && this.pending.size > 0 && this.pending.size < MAX_DEFERRED && this.clock.now() - this.oldestAt < MAX_DEFER_MS && this.backlogged()) {
      this.deferrals++;
      this.clock.setTimer(() => this.onTimer(), FLUSH_DELAY_MS);
      return;
    }
    this.scheduled = false;
    void this.flush();
  }

  get size(): number {
    return this.pending.size;
  }

  /** Writes everything queued so far. Concurrent calls share one write at a time. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.writing = this.pending;
    this.pending = new Map();
    this.flushing = (async () => {
      let done = 0;
      try {
        for (; done < batch.length; done += WRITE_CHUNK) await this.store.updateRuns(batch.length <= WRITE_CHUNK ? batch : batch.slice(done, done + WRITE_CHUNK));
        this.onFlushed?.(batch);
      } catch (e) {
        this.log.warn({ err: e, count: batch.length - done }, 'run history write failed; will retry');
        if (this.pending.size === 0) this.oldestAt = this.clock.now();
        // The chunks written already stay written; the rest goes again (a newer update of a run wins).
        for (let i = done; i < batch.length; i++) if (!this.pending.has(batch[i]!.run_id)) this.pending.set(batch[i]!.run_id, batch[i]!);
        if (!this.retryTimer) {
          this.retryTimer = this.clock.setTimer(() => {
            this.retryTimer = null;
            void this.flush();
          }, RETRY_MS);
        }
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
      this.writing = new Map();
    }
  }

  /**
   * True when this node knows the run's final outcome but the store may not have it yet (queued or
   * being written): the run is done, though the outbox still lists it.
   */
  finishedHere(runId: string): boolean {
    const u = this.pending.get(runId) ?? this.writing.get(runId);
    return u !== undefined && u.status !== 'RUNNING';
  }

  /**
   * Queues an update and writes it at once (with everything queued). True once it is in the store;
   * false when the write failed (it stays queued and is retried) or a newer update of the run
   * arrived meanwhile (the caller may ask again).
   */
  async writeNow(u: RunUpdate): Promise<boolean> {
    this.push(u);
    const queued = this.pending.get(u.run_id);
    await this.flush();
    return queued !== undefined && this.pending.get(u.run_id) !== queued && !this.pending.has(u.run_id);
  }

  stop(): void {
    this.retryTimer?.cancel();
    this.retryTimer = null;
  }
}

/** Copies u's defined fields onto the queued update (not written yet: no one else holds it). */
function mergeDefined(into: RunUpdate, u: RunUpdate): void {
  const o = into as unknown as Record<string, unknown>;
  const from = u as unknown as Record<string, unknown>;
  for (const k in from) {
    const v = from[k];
    if (v !== undefined) o[k] = v;
  }
}
