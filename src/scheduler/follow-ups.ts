/**
 * The follow-ups of a finished run, a listener on its outcome: a success triggers the task's child
 * tasks (on_success); a final failure sends an alert and, after too many consecutive failures,
 * pauses the task (both through the task operations of the service layer).
 */
import type { DeliveryResult } from '../delivery/index.js';
import { StoreUnavailableError } from '../errors.js';
import type { Task } from '../task/index.js';
import type { Outcome, SchedulerCore } from './core.js';
import type { AlertEvent } from './types.js';

/** An alert webhook's timeout and retries. */
const ALERT_TIMEOUT_MS = 10_000;
const ALERT_RETRY = { max_attempts: 3, backoff_ms: 1000, max_backoff_ms: 10_000 };

export class FollowUps {
  constructor(private readonly c: SchedulerCore) {
    c.outcomes.on('outcome', (o) => this.onOutcome(o));
  }

  private onOutcome({ task, run_id, scheduled_time, result, token }: Outcome): void {
    if (!task) return;
    // Closed by the deadline or delivered here: the follow-ups need the lease still (see
    // followUp). Closed by a report (through any node): the store closed it once, and this node acts on it.
    const lease = token === undefined ? undefined : this.followUp(task, run_id, token);
    if (lease === null) return;
    if (result.ok) void this.triggerChildren(task, run_id, lease);
    else void this.onFinalFailure(task, run_id, scheduled_time, result, lease);
  }

  /**
   * The follow-ups of a run's outcome (children, alert, auto-pause) are this node's only while it
   * still holds the lease the run went out under, handed it back on purpose, or owns the slot
   * again: the lease token they go on under, or null. When the lease lapsed (a pause) and another
   * node owns the slot, they are left out here: that node read the outbox when it took the slot
   * over, while this one was paused, so it redelivers the run and acts on the outcome of its own delivery.
   */
  private followUp(task: Task, runId: string, token: number): number | null {
    const { ownership, log, alertUrl, maxConsecutiveFailures } = this.c.o;
    if (ownership.mayAct(task.slot, token)) return token;
    // It owns the slot again under a new lease: no other node redelivers what it recorded.
    const now = ownership.tokenFor(task.slot);
    if (now !== null) return now;
    if ((task.on_success?.length ?? 0) > 0 || task.alert_url || alertUrl || (task.max_consecutive_failures ?? maxConsecutiveFailures ?? 0) > 0) {
      log.info({ task_id: task.id, fire_id: runId, slot: task.slot }, 'follow-ups of a run not started here: the lease lapsed; left to the slot owner');
    }
    return null;
  }

  /** XXL-JOB child tasks: a successful run triggers each on_success task once (a manual run, through the service). */
  private async triggerChildren(parent: Task, parentRunId: string, token?: number): Promise<void> {
    const { taskOps: ops, ownership, log } = this.c.o;
    if (!ops) return;
    for (const childId of parent.on_success ?? []) {
      try {
        if (token !== undefined && !ownership.mayAct(parent.slot, token)) {
          log.info({ task_id: parent.id, child_id: childId, fire_id: parentRunId }, 'child task not triggered: the lease of the parent run lapsed; left to the slot owner');
          return;
        }
        const run = await ops.trigger(childId);
        if (!run) {
          log.warn({ task_id: parent.id, child_id: childId }, 'child task not found; skipped');
          continue;
        }
        this.c.events.emit('childTriggered', { parent_id: parent.id, child_id: childId, run_id: run.run_id });
      } catch (e) {
        log.warn({ err: e, task_id: parent.id, child_id: childId, fire_id: parentRunId }, 'could not trigger child task');
      }
    }
  }

  /** A run failed for good: alert, and pause the task after too many consecutive failures. */
  private async onFinalFailure(task: Task, runId: string, scheduled: number, result: DeliveryResult, token?: number): Promise<void> {
    const { o } = this.c;
    const base: AlertEvent = {
      event: 'run_failed',
      task_id: task.id,
      task_name: task.name,
      run_id: runId,
      scheduled_time: scheduled,
      error: result.error,
      http_status: result.status,
      attempts: result.attempts,
      node: o.nodeId,
      time: o.clock.now(),
    };
    this.sendAlert(task, base, token);
    const limit = task.max_consecutive_failures ?? o.maxConsecutiveFailures ?? 0;
    const ops = o.taskOps;
    if (limit <= 0 || !ops) return;
    try {
      await this.c.recorder.flush(); // the run just finished counts
      if (token !== undefined && !o.ownership.mayAct(task.slot, token)) return; // the slot's owner decides
      const paused = await ops.pauseAfterFailures(task.id, limit);
      if (!paused) return;
      o.log.warn({ task_id: task.id, consecutive_failures: limit }, 'task paused after consecutive failures');
      this.sendAlert(task, { ...base, event: 'task_paused', consecutive_failures: limit, time: o.clock.now() }, token);
    } catch (e) {
      if (e instanceof StoreUnavailableError) this.c.storeError(e);
      else o.log.warn({ err: e, task_id: task.id }, 'could not pause the task after consecutive failures');
    }
  }

  private sendAlert(task: Task, ev: AlertEvent, token?: number): void {
    const { ownership, alertUrl, delivery, log } = this.c.o;
    if (token !== undefined && !ownership.mayAct(task.slot, token)) return;
    this.c.events.emit('alert', ev);
    const url = task.alert_url ?? (alertUrl ? alertUrl : null);
    if (!url) return;
    // While the lease is held, the alert goes out only under it (a pause right now drops it);
    // after a graceful hand-back it goes as it is.
    const lease = token !== undefined && ownership.holds(task.slot, token) ? { slot: task.slot, token } : {};
    void delivery
      .deliver({
        run_id: `alert:${ev.event}:${ev.run_id}`,
        task_id: task.id,
        scheduled_time: ev.scheduled_time,
        url,
        method: 'POST',
        headers: null,
        body: JSON.stringify(ev),
        timeout_ms: ALERT_TIMEOUT_MS,
        retry: { ...ALERT_RETRY },
        first_attempt: 1,
        ...lease,
      })
      .then((r) => {
        if (!r.ok && !r.aborted) log.warn({ task_id: task.id, url, error: r.error }, 'alert webhook failed');
      });
  }
}
