/**
 * Async completion: a run whose callback answered 202 (or a task with completion 'async') stays
 * RUNNING until the worker reports its outcome. Its report deadline is enforced here: past it, the
 * run is retried (same run id, next attempt) or closed as FAIL 'timeout'.
 */
import type { TimerHandle } from '../clock/index.js';
import type { DeliveryResult } from '../delivery/index.js';
import type { Run, Task } from '../task/index.js';
import type { SchedulerCore } from './core.js';
import type { InFlight } from './inflight.js';
import type { Dispatch } from './types.js';

/** How soon an expiry the store could not answer is tried again. */
const EXPIRE_RETRY_MS = 1000;

interface Awaiting {
  d: Dispatch;
  deadline: number;
  attempts: number;
  timer: TimerHandle | null;
}

export class Deadlines {
  /** Async runs awaiting their report on this node: run_id → deadline timer. */
  private readonly awaiting = new Map<string, Awaiting>();
  /** Runs closed by a report while their HTTP exchange was still in progress here. */
  private readonly closedEarly = new Set<string>();
  private readonly answerWaiters = new Map<string, (() => void)[]>();

  /** `retry`: delivers the next attempt of a run whose deadline passed. */
  constructor(
    private readonly c: SchedulerCore,
    private readonly inflight: InFlight,
    private readonly retry: (d: Dispatch) => void,
  ) {}

  get size(): number {
    return this.awaiting.size;
  }
  has(runId: string): boolean {
    return this.awaiting.has(runId);
  }

  /** Arms the report deadline of an async run (timers never sleep longer than maxSleepMs). */
  await(d: Dispatch, deadline: number, attempts: number): void {
    const prev = this.awaiting.get(d.run_id);
    prev?.timer?.cancel();
    const w: Awaiting = { d, deadline, attempts, timer: null };
    this.awaiting.set(d.run_id, w);
    const arm = (): void => {
      if (this.awaiting.get(d.run_id) !== w) return;
      const wait = deadline - this.c.o.clock.now();
      if (wait <= 0) {
        w.timer = null;
        void this.expire(d.run_id);
        return;
      }
      w.timer = this.c.o.clock.setTimer(arm, Math.min(wait, this.c.o.maxSleepMs));
    };
    arm();
  }

  /** A run found awaiting its report in the store (recovered, or left by another node): its deadline is enforced here. */
  adopt(task: Task, run: Run, token: number): void {
    this.inflight.acquire(task.id, run.run_id);
    this.await({ task, run_id: run.run_id, scheduled: run.scheduled_time, first_attempt: run.attempts, token, request: run.request }, run.deadline!, run.attempts);
  }

  /** Cancels every deadline timer (stop). */
  stop(): void {
    for (const w of this.awaiting.values()) w.timer?.cancel();
    this.awaiting.clear();
  }

  /** The deadlines of lost slots are the slot owner's to enforce now (this node too, if it owns the slot again). */
  dropSlots(lost: ReadonlySet<number>): void {
    const letGo: string[] = [];
    for (const [runId, w] of this.awaiting) {
      if (lost.has(w.d.task.slot)) {
        w.timer?.cancel();
        this.awaiting.delete(runId);
        this.inflight.releaseOnly(w.d.task.id, runId);
        letGo.push(runId);
      }
    }
    if (letGo.length > 0) void Promise.resolve(this.c.o.store.givenBack?.(letGo)).catch(() => undefined);
  }

  /**
   * A report for `runId` arrived. If this node is still waiting for that run's callback answer (the
   * worker reported before its 202 reached the scheduler), wait for the answer (at most
   * `maxWaitMs`) and write it first, so the run records the callback's HTTP status and attempt
   * before the report closes it.
   */
  async beforeReport(runId: string, maxWaitMs: number): Promise<void> {
    if (this.inflight.has(runId) && !this.awaiting.has(runId) && !this.c.stopped) {
      await new Promise<void>((resolve) => {
        const timer = this.c.o.clock.setTimer(done, maxWaitMs);
        const waiters = this.answerWaiters.get(runId) ?? [];
        waiters.push(done);
        this.answerWaiters.set(runId, waiters);
        function done(): void {
          timer.cancel();
          resolve();
        }
      });
    }
    if (this.c.recorder.size > 0) await this.c.recorder.flush();
  }

  /** The callback of `runId` answered (whatever the outcome): a report waiting for it goes on. */
  answered(runId: string): void {
    const w = this.answerWaiters.get(runId);
    if (!w) return;
    this.answerWaiters.delete(runId);
    for (const f of w) f();
  }

  /** True (once) when a report closed the run before its callback answered here. */
  closedByReport(runId: string): boolean {
    return this.closedEarly.delete(runId);
  }

  /** The deadline passed without a report: retry (same run id, next attempt) or close as FAIL 'timeout'. */
  private async expire(runId: string): Promise<void> {
    const w = this.awaiting.get(runId);
    if (!w || this.c.stopped) return;
    const { d, attempts } = w;
    const { ownership, store, log, clock } = this.c.o;
    if (!ownership.holds(d.task.slot, d.token)) {
      // The lease lapsed (a pause) or moved: the slot's new owner enforces the deadline.
      w.timer?.cancel();
      this.awaiting.delete(runId);
      this.inflight.releaseOnly(d.task.id, runId);
      log.info({ task_id: d.task.id, fire_id: runId, slot: d.task.slot }, 'async deadline not enforced here: the lease lapsed; left to the slot owner');
      void Promise.resolve(store.givenBack?.([runId]))
        .catch(() => undefined)
        .then(() => this.c.o.onRunQueued?.(runId, d.task.slot));
      return;
    }
    const policy = d.task.retry ?? this.c.o.defaultRetry;
    try {
      const current = await store.getRun(runId);
      if (!current || (current.status !== 'PENDING' && current.status !== 'RUNNING')) {
        // Reported meanwhile (perhaps through another node): just let go of it here.
        this.releaseReported(runId);
        return;
      }
      if (attempts < policy.max_attempts) {
        this.awaiting.delete(runId);
        this.c.recorder.push({ run_id: runId, task_id: d.task.id, status: 'RUNNING', attempts, error: `timeout: no report within the deadline (attempt ${attempts})`, deadline: null });
        await this.c.recorder.flush();
        this.inflight.releaseOnly(d.task.id, runId);
        log.warn({ task_id: d.task.id, fire_id: runId, attempt: attempts }, 'async run not reported in time; retrying');
        this.retry({ ...d, first_attempt: attempts + 1, job: undefined, token: ownership.tokenFor(d.task.slot) ?? d.token });
        return;
      }
      await this.c.recorder.flush();
      const res = await store.reportRun({ run_id: runId, status: 'FAIL', message: null, output: null, now: clock.now(), expire: true });
      if (res.result === 'closed' && res.run) {
        log.warn({ task_id: d.task.id, fire_id: runId }, 'async run not reported in time: FAIL (timeout)');
        this.reported(res.run, d.task, d.token);
      } else if (res.result !== 'not_open') {
        this.releaseReported(runId);
      } else {
        // Still open with a later deadline (re-armed elsewhere): look again then.
        this.await(d, res.run?.deadline ?? clock.now() + EXPIRE_RETRY_MS, attempts);
      }
    } catch (e) {
      this.c.storeError(e);
      // Try again shortly: the deadline must still be enforced.
      this.await(d, clock.now() + EXPIRE_RETRY_MS, attempts);
    }
  }

  /** A report closed a run that this node may be waiting on: stop its deadline, end its in-flight state. */
  releaseReported(runId: string): void {
    const w = this.awaiting.get(runId);
    if (!w) {
      // Reported before this node saw the callback's answer: the dispatcher must neither start a
      // deadline for it nor record or act on a second outcome.
      if (this.inflight.has(runId)) this.closedEarly.add(runId);
      return;
    }
    w.timer?.cancel();
    this.awaiting.delete(runId);
    this.inflight.release(w.d.task.id, runId);
  }

  /**
   * A run was closed by a report (or its deadline) on this node: children, alerts and stats act on
   * the reported outcome exactly as for a synchronous run. Called once per run, by the node that
   * closed it. `token`: the lease it was closed under by its deadline (undefined: by a report).
   */
  reported(run: Run, task: Task | null, token?: number): void {
    this.releaseReported(run.run_id);
    const end = run.end_time ?? this.c.o.clock.now();
    const start = run.start_time ?? run.scheduled_time;
    const result: DeliveryResult = {
      ok: run.status === 'SUCCESS',
      status: run.http_status,
      error: run.error,
      body: null,
      attempts: run.attempts,
      start_time: start,
      end_time: end,
      duration_ms: end - start,
      aborted: false,
    };
    this.c.finished({ task_id: run.task_id, task, run_id: run.run_id, scheduled_time: run.scheduled_time, result, token });
  }
}
