/**
 * Pacing, between a fire's hand-over and its first attempt: the task's jitter (a periodic fire
 * waits until its tick plus its deterministic offset), then its flow limit (the fires of a flow
 * key wait in order until the limit admits them). A waiting fire is neither dropped nor failed and
 * counts no attempt; fires of slots this node loses are given back, and a stop leaves them in the
 * outbox.
 */
import type { TimerHandle } from '../clock/index.js';
import { flowKeyOf, nextFire, plannedFireTime, TASK_FLOW_PREFIX, type FlowLimit, type Task } from '../task/index.js';
import type { SchedulerCore } from './core.js';
import type { Dispatch, FlowOptions } from './types.js';

/** An admitted fire holding a flow permit: `release` frees it when the run ends. */
export interface Permit {
  release(): void;
}

/** No flow limit applies (or it was admitted without a permit to give back). */
const NO_PERMIT: Permit = { release: () => undefined };
/** The longest wait before the head of a flow queue asks again. */
const MAX_POLL_MS = 1000;
/** How long a flow queue waits after its backend failed (Redis slow or down) before asking again. */
const BACKEND_RETRY_MS = 1000;
/** A parallelism permit outlives a run's own bound by this much before it expires unreleased. */
const LEASE_SLACK_MS = 60_000;

/** A flow key's metric label: a task's own limit counts under `task` (one series for them all). */
const labelOf = (key: string): string => (key.startsWith(TASK_FLOW_PREFIX) ? 'task' : key);

interface Waiter {
  d: Dispatch;
  key: string;
  limit: FlowLimit;
  since: number;
  resolve: (p: Permit | null) => void;
}

export class Pacer {
  private readonly queues = new Map<string, Waiter[]>();
  private readonly pumping = new Set<string>();
  /** Keys asked to pump again while a pump was under way (a permit was freed meanwhile). */
  private readonly again = new Set<string>();
  private readonly timers = new Map<string, TimerHandle>();
  private readonly jittering = new Map<string, { d: Dispatch; timer: TimerHandle; resolve: (ok: boolean) => void }>();
  private readonly warnedKeys = new Set<string>();
  /** The metric labels of every key that had a waiting fire (they stay, at 0, once empty). */
  private readonly labels = new Set<string>();
  private lastBackendWarn = -Infinity;

  constructor(
    private readonly c: SchedulerCore,
    private readonly flow: FlowOptions | undefined,
  ) {}

  /**
   * Waits for the fire's jitter offset and its flow limit. Resolves the flow permit (NO_PERMIT when
   * the task is not flow controlled), or null: the fire was given up here (its slot was lost, the
   * scheduler stopped) and stays in the outbox.
   */
  async admit(d: Dispatch): Promise<Permit | null> {
    if (this.c.stopped || !(await this.jitter(d))) return null;
    const key = flowKeyOf(d.task);
    if (key === null || !this.flow) return NO_PERMIT;
    const limit = this.limitOf(key, d.task);
    if (!limit) return NO_PERMIT;
    this.labels.add(labelOf(key));
    return new Promise<Permit | null>((resolve) => {
      const q = this.queues.get(key) ?? [];
      q.push({ d, key, limit, since: this.c.o.clock.now(), resolve });
      this.queues.set(key, q);
      if (q.length === 1) void this.pump(key);
    });
  }

  /** Fires waiting on a flow limit, by flow key (a task's own limit counts under `task`). */
  waiting(): Map<string, number> {
    const out = new Map<string, number>([...this.labels].map((l) => [l, 0]));
    for (const [key, q] of this.queues) out.set(labelOf(key), (out.get(labelOf(key)) ?? 0) + q.length);
    return out;
  }

  /** Gives up the waiting fires that match (lost slots, a deleted task); returns their run ids. */
  drop(match: (d: Dispatch) => boolean): string[] {
    const out: string[] = [];
    for (const [id, j] of this.jittering) {
      if (!match(j.d)) continue;
      j.timer.cancel();
      this.jittering.delete(id);
      j.resolve(false);
      out.push(id);
    }
    for (const [key, q] of this.queues) {
      const keep = q.filter((w) => !match(w.d));
      for (const w of q) {
        if (keep.includes(w)) continue;
        w.resolve(null);
        out.push(w.d.run_id);
      }
      if (keep.length === 0) {
        this.queues.delete(key);
        this.timers.get(key)?.cancel();
        this.timers.delete(key);
      } else if (keep.length !== q.length) this.queues.set(key, keep);
    }
    return out;
  }

  /** The scheduler stops: every waiting fire is left in the outbox (delivered after a restart). */
  stop(): void {
    this.drop(() => true);
  }

  /** A periodic fire waits until its tick plus its jitter offset (false: given up meanwhile). */
  private jitter(d: Dispatch): Promise<boolean> {
    const { task } = d;
    if (!task.jitter_ms || d.first_attempt > 1 || d.request) return Promise.resolve(true);
    const at = plannedFireTime(task, d.scheduled, this.c.o.jitterSeed ?? '');
    const wait = at - this.c.o.clock.now();
    // A manual run (triggerTask, a child) is not a tick: it goes out at once.
    if (wait <= 0 || nextFire(task, d.scheduled - 1) !== d.scheduled) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      // Never one long sleep (DESIGN: each wake re-reads the clock, so a clock jump is followed).
      const arm = (): void => {
        const left = at - this.c.o.clock.now();
        if (left <= 0 || this.c.stopped) {
          this.jittering.delete(d.run_id);
          resolve(!this.c.stopped);
          return;
        }
        const timer = this.c.o.clock.setTimer(arm, Math.min(left, this.c.o.maxSleepMs));
        this.jittering.set(d.run_id, { d, timer, resolve });
      };
      arm();
    });
  }

  private limitOf(key: string, task: Task): FlowLimit | null {
    if (key.startsWith(TASK_FLOW_PREFIX) && task.flow) return task.flow;
    const limit = this.flow?.limits[key];
    if (limit) return limit;
    if (!this.warnedKeys.has(key)) {
      this.warnedKeys.add(key);
      this.c.o.log.warn({ flow_key: key, task_id: task.id }, 'a task names a flow key that is not configured: its fires are not limited');
    }
    return null;
  }

  /** How long a parallelism permit may be held unreleased: the run's own bound plus a margin. */
  private leaseMs(task: Task): number {
    const o = this.c.o;
    const retry = task.retry ?? o.defaultRetry;
    const sync = ((task.timeout_ms ?? o.defaultTimeoutMs) + retry.max_backoff_ms) * retry.max_attempts;
    const async = task.completion === 'async' ? (task.async_timeout_ms ?? o.defaultAsyncTimeoutMs ?? 3_600_000) : 0;
    return sync + async + LEASE_SLACK_MS;
  }

  /** Admits the head of a key's queue while the limit allows, then waits as long as it says. */
  private async pump(key: string): Promise<void> {
    if (this.pumping.has(key)) {
      this.again.add(key);
      return;
    }
    this.pumping.add(key);
    try {
      for (;;) {
        const q = this.queues.get(key);
        const w = q?.[0];
        if (!q || !w || this.c.stopped) return;
        let wait: number;
        try {
          wait = await this.flow!.backend.tryAcquire(key, w.limit, w.d.run_id, this.leaseMs(w.d.task));
        } catch (err) {
          wait = BACKEND_RETRY_MS;
          const now = this.c.o.clock.now();
          if (now - this.lastBackendWarn > 10_000) {
            this.lastBackendWarn = now;
            this.c.o.log.warn({ err: err instanceof Error ? err.message : String(err), flow_key: key, waiting: q.length }, 'flow limit unavailable: fires of this key wait until it answers');
          }
        }
        if (this.queues.get(key)?.[0] !== w) {
          // Given up while asking: a permit it took is given back.
          if (wait === 0) this.release(key, w.d.run_id);
          continue;
        }
        if (wait > 0) {
          if (this.again.delete(key)) continue;
          this.arm(key, wait);
          return;
        }
        q.shift();
        if (q.length === 0) this.queues.delete(key);
        const waited = this.c.o.clock.now() - w.since;
        this.c.events.emit('flowAdmitted', { key: labelOf(key), task_id: w.d.task.id, run_id: w.d.run_id, waited_ms: waited });
        const holder = w.d.run_id;
        let released = false;
        w.resolve(
          w.limit.parallelism > 0
            ? {
                release: () => {
                  if (released) return;
                  released = true;
                  this.release(key, holder);
                },
              }
            : NO_PERMIT,
        );
      }
    } finally {
      this.pumping.delete(key);
      this.again.delete(key);
    }
  }

  private arm(key: string, ms: number): void {
    if (this.timers.has(key)) return;
    this.timers.set(
      key,
      this.c.o.clock.setTimer(
        () => {
          this.timers.delete(key);
          void this.pump(key);
        },
        Math.min(ms, MAX_POLL_MS),
      ),
    );
  }

  /** Frees a permit, and lets the key's queue ask again at once. */
  private release(key: string, holder: string): void {
    void Promise.resolve()
      .then(() => this.flow!.backend.release(key, holder))
      .catch((err: unknown) => this.c.o.log.warn({ err: err instanceof Error ? err.message : String(err), flow_key: key }, 'could not release a flow permit; it expires with its lease'))
      .then(() => {
        if (!this.queues.has(key)) return;
        this.timers.get(key)?.cancel();
        this.timers.delete(key);
        void this.pump(key);
      });
  }
}
