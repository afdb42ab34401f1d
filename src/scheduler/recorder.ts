/**
 * RunRecorder: run-state writes (RUNNING, attempts, final outcome) are coalesced per run and
 * written in one batch off the hot path. A lost write is safe: an unfinished run is redelivered.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock/index.js';
import type { RunUpdate, TaskStore } from '../store/types.js';

const FLUSH_DELAY_MS = 25;

export class RunRecorder {
  private pending = new Map<string, RunUpdate>();
  private scheduled = false;
  private urgentScheduled = false;
  private flushing: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: TaskStore,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly onFlushed?: (updates: readonly RunUpdate[]) => void,
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
    else this.pending.set(u.run_id, u);
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
      this.clock.setTimer(() => {
        this.scheduled = false;
        void this.flush();
      }, FLUSH_DELAY_MS);
    }
  }

  get size(): number {
    return this.pending.size;
  }

  /** Writes everything queued so far. Concurrent calls share one write at a time. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.flushing = (async () => {
      try {
        await this.store.updateRuns(batch);
        this.onFlushed?.(batch);
      } catch (e) {
        this.log.warn({ err: e, count: batch.length }, 'run history write failed; will retry');
        for (const u of batch) if (!this.pending.has(u.run_id)) this.pending.set(u.run_id, u);
        if (!this.retryTimer) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            void this.flush();
          }, 1000);
        }
      }
    })();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
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
