/**
 * Sends a fire of a task routed to an executor group: each attempt reads the group's live
 * instances (LiveGroups) and picks by the task's route (ExecutorRouting); once one is picked the
 * fire goes out as any routed fire (./fanout.ts: retries to the same instance, failover over the
 * live ones in order, broadcast as one shard per live instance). An attempt that finds no live
 * instance (or, busy_over, none free) fails with a clear error and is retried with the task's
 * backoff, reading the group again each time; the last one fails the run, which alerts as usual.
 */
import { sleep, type Clock } from '../clock/index.js';
import type { RouteStrategy } from '../task/index.js';
import { sendRouted, type RoutedResult, type Sender } from './fanout.js';
import { backoffDelay, type DeliveryHooks, type DeliveryJob, type DeliveryResult } from './index.js';
import type { ExecutorRouting, LiveGroups } from './executors.js';

export interface ExecutorSendOptions {
  sender: Sender;
  groups: LiveGroups;
  routing: ExecutorRouting;
  clock: Clock;
  /** True once the scheduler stopped: a wait between attempts ends, and the run is left unfinished. */
  stopped: () => boolean;
  random?: () => number;
}

/** A backoff is slept in steps of at most this (ms), checking `stopped` between them. */
const STEP_MS = 250;

export class ExecutorSender {
  constructor(private readonly o: ExecutorSendOptions) {}

  /** Delivers `job` (its url `executor:<group>`) to the group's live instances. Never throws. */
  async send(job: DeliveryJob, group: string, route: RouteStrategy, hooks: Pick<DeliveryHooks, 'onAttempt' | 'beforeAttempt'>): Promise<RoutedResult> {
    const { clock } = this.o;
    const start = clock.now();
    const last = Math.max(job.retry.max_attempts, job.first_attempt);
    for (let n = job.first_attempt; ; n++) {
      if (n > 1 && hooks.beforeAttempt && !(await hooks.beforeAttempt(n))) return this.ended(start, n - 1, 'not sent: lease lapsed', true);
      let error: string;
      try {
        const addrs = await this.o.groups.live(group);
        const picked = addrs.length === 0 ? null : this.o.routing.pick(job.task_id, route, addrs);
        if (picked !== null) {
          if (picked.mode === 'single') this.o.routing.started(job.task_id, job.run_id, picked.urls[0]!);
          return await sendRouted(this.o.sender, { ...job, first_attempt: n }, picked, hooks);
        }
        error = addrs.length === 0 ? `no live executor in group ${JSON.stringify(group)}` : `all ${addrs.length} live executors in group ${JSON.stringify(group)} are busy with this task (busy_over)`;
      } catch (e) {
        error = `executor registry unavailable for group ${JSON.stringify(group)}: ${e instanceof Error ? e.message : String(e)}`;
      }
      hooks.onAttempt?.(n);
      if (n >= last) return { result: this.failed(start, n, error), shards: null };
      const wait = backoffDelay(job.retry, n - job.first_attempt + 1, this.o.random ?? Math.random);
      for (let left = wait; left > 0 && !this.o.stopped(); left -= STEP_MS) await sleep(clock, Math.min(left, STEP_MS));
      if (this.o.stopped()) return this.ended(start, n, error, false);
    }
  }

  private failed(start: number, attempts: number, error: string): DeliveryResult {
    const end = this.o.clock.now();
    return { ok: false, status: null, error, body: null, attempts, start_time: start, end_time: end, duration_ms: end - start, aborted: false };
  }

  /** Ended without an outcome (stopped, or the lease lapsed): the run stays unfinished. */
  private ended(start: number, attempts: number, error: string, lapsed: boolean): RoutedResult {
    return { result: { ...this.failed(start, attempts, error), aborted: true, ...(lapsed ? { lapsed: true } : {}) }, shards: null };
  }
}
