/**
 * The dispatcher: hands a fire to delivery along its route (overlap 'queue' waits behind the run
 * in flight), records its attempts and outcome, and starts its async deadline or its follow-ups.
 * A fire whose lease lapsed before it was sent is left to its slot's owner.
 */
import { randomBytes } from 'node:crypto';
import { sendRouted } from '../delivery/fanout.js';
import type { DeliveryJob } from '../delivery/index.js';
import { Router } from '../delivery/routing.js';
import { ExecutorSender } from '../delivery/executor-send.js';
import { ExecutorRouting, LiveGroups } from '../delivery/executors.js';
import { slotOf } from '../cluster/index.js';
import { parseExecutorUrl, reportToken, withRunHeaders } from '../task/index.js';
import type { SchedulerCore } from './core.js';
import type { Deadlines } from './deadlines.js';
import type { InFlight } from './inflight.js';
import { Pacer } from './pacing.js';
import type { Dispatch } from './types.js';
import { hasFollowUps } from './follow-ups.js';

/** The report deadline of an async run when neither the task nor the options set one. */
const DEFAULT_ASYNC_TIMEOUT_MS = 3_600_000;
/** How long an attempt's record waits after the store failed, before it is written again. */
const RECORD_RETRY_MS = 1000;

export class Dispatcher {
  private readonly router = new Router();
  /** Fires of tasks routed to an executor group (`callback.executor`). */
  private readonly executors: ExecutorSender;
  private readonly reportSecret: string;
  /** Jitter and flow control: what a fire waits for before its first attempt. */
  readonly pacer: Pacer;

  /** `deliverRun`: takes a run back from the outbox (when this node owns its slot). */
  constructor(
    private readonly c: SchedulerCore,
    readonly inflight: InFlight,
    private readonly deadlines: Deadlines,
    private readonly deliverRun: (runId: string) => Promise<void>,
  ) {
    this.reportSecret = c.o.reportSecret ?? randomBytes(32).toString('hex');
    this.pacer = new Pacer(c, c.o.flow);
    this.executors = new ExecutorSender({
      sender: c.o.delivery,
      groups: new LiveGroups(c.o.store.executors, c.o.clock),
      routing: new ExecutorRouting((runId) => inflight.has(runId)),
      clock: c.o.clock,
      stopped: () => c.stopped,
    });
  }

  /**
   * Delivers a fire, or queues it behind the run of its task in flight here (overlap 'queue').
   * Recovered runs queue too: an unreported async run of the task (re-armed first, since the
   * outbox is read oldest first) keeps the later runs waiting, as before the restart.
   */
  dispatch(d: Dispatch): void {
    if (this.inflight.busy(d.task.id) && d.task.overlap === 'queue') {
      this.inflight.enqueue(d);
      return;
    }
    void this.run(d);
  }

  jobOf(d: Dispatch): DeliveryJob {
    const { task } = d;
    return {
      run_id: d.run_id,
      task_id: task.id,
      scheduled_time: d.scheduled,
      url: task.callback.url,
      method: task.callback.method,
      headers: withRunHeaders(task.callback.headers, d.request?.headers ?? null),
      body: d.request?.body ?? task.callback.body_text ?? JSON.stringify(task.callback.body),
      timeout_ms: task.timeout_ms ?? this.c.o.defaultTimeoutMs,
      retry: task.retry ?? this.c.o.defaultRetry,
      first_attempt: Math.max(1, d.first_attempt),
      extra_headers: { 'x-xcron-run-id': d.run_id, 'x-xcron-report-token': reportToken(this.reportSecret, d.run_id) },
      slot: task.slot,
      token: d.token,
    };
  }

  /**
   * Deliveries of lost slots that have not started are given back: the new owner (or this node,
   * once it owns the slot again) delivers them from the outbox, so they are not sent twice. Those
   * already in an HTTP exchange go on (at least once).
   */
  giveBack(lost: ReadonlySet<number>): void {
    const { delivery, store, log, ownership } = this.c.o;
    const given = new Set<string>(this.pacer.drop((d) => lost.has(d.task.slot)));
    delivery.cancelWaiting?.((job) => {
      if (!lost.has(slotOf(job.task_id, ownership.slotCount))) return false;
      given.add(job.run_id);
      return true;
    });
    if (given.size === 0) return;
    void Promise.resolve(store.givenBack?.([...given])).catch((err: unknown) =>
      log.warn({ err: err instanceof Error ? err.message : String(err), runs: given.size }, 'could not mark runs given back; the new owner delivers them once this node leaves the cluster'),
    );
    log.info({ runs: given.size, slots: lost.size }, 'deliveries not started yet given back with their lost slots');
  }

  /**
   * Records that attempt `n` of a run may reach the receiver, before it is sent (a retry, or the
   * first attempt of a redelivery): a redelivery after a crash then counts on from it. Waits for
   * the store (retrying each second) while this node still holds the run's lease; false when the
   * lease lapsed or the scheduler stopped (the attempt is not sent).
   */
  private async recordAttempt(d: Dispatch, n: number, start: number): Promise<boolean> {
    for (;;) {
      if (this.c.stopped || !this.c.o.ownership.holds(d.task.slot, d.token)) return false;
      if (await this.c.recorder.writeNow({ run_id: d.run_id, task_id: d.task.id, status: 'RUNNING', attempts: n, node: this.c.o.nodeId, start_time: start })) return true;
      await this.c.sleep(RECORD_RETRY_MS);
    }
  }

  /**
   * A fire was not sent because its lease lapsed before the request was written (this node was
   * paused, or lost the slot): it stays in the outbox, no longer in flight here, and the slot's
   * owner is told to deliver it (this node, if it owns the slot again under a new lease).
   */
  private leftToOwner(d: Dispatch, attempts: number, answered = false): void {
    const slot = d.task.slot;
    const { log, store, ownership, onRunQueued } = this.c.o;
    log.info(
      { task_id: d.task.id, fire_id: d.run_id, slot, attempts },
      answered ? 'run answered after its lease lapsed: left to the slot owner, who delivers it again and follows up' : 'fire not sent: the lease lapsed before the request was written; left to the slot owner',
    );
    void (async () => {
      try {
        // The attempts sent before are recorded first: the owner counts on from them.
        await this.c.recorder.flush();
        await store.givenBack?.([d.run_id]);
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err), fire_id: d.run_id }, 'could not mark a run given back; its slot owner delivers it once this node leaves the cluster');
      }
      if (this.c.stopped) return;
      if (ownership.tokenFor(slot) === null) {
        // No lease on the slot here at all (it lapsed locally, e.g. a stall): the owner's
        // notification may find no owner, or this node before it takes the slot back.
        const set = this.leftWithoutOwner.get(slot) ?? new Set<string>();
        if (set.size < 100_000) set.add(d.run_id);
        this.leftWithoutOwner.set(slot, set);
      }
      if (onRunQueued) onRunQueued(d.run_id, slot);
      else if (ownership.tokenFor(slot) !== null) await this.deliverRun(d.run_id);
    })();
  }

  /**
   * Runs this node left to the slot owner while it held no lease on the slot: delivered (if still
   * open, and not started by another node meanwhile) when this node acquires the slot again.
   */
  private readonly leftWithoutOwner = new Map<number, Set<string>>();

  /** The slots were acquired (after their outbox was read): delivers what was left without an owner. */
  acquired(slots: readonly number[]): void {
    for (const slot of slots) {
      const left = this.leftWithoutOwner.get(slot);
      this.leftWithoutOwner.delete(slot);
      for (const runId of left ?? []) {
        void Promise.resolve(this.c.o.store.getRun(runId)).then(
          (r) => (r && (r.node === null || r.node === this.c.o.nodeId) ? this.deliverRun(runId) : undefined),
          () => undefined,
        );
      }
    }
  }

  /**
   * The follow-ups of an outcome (children, alert, auto-pause) are this node's while it holds the
   * run's lease or owns the slot again; false when the lease lapsed and the outcome has follow-ups.
   */
  private followUpsElsewhere(d: Dispatch): boolean {
    const { ownership } = this.c.o;
    if (ownership.mayAct(d.task.slot, d.token) || ownership.tokenFor(d.task.slot) !== null) return false;
    return hasFollowUps(d.task, this.c.o);
  }

  /** Delivers a fire now (in flight until it ends, or, async, until it is reported). */
  async run(d: Dispatch): Promise<void> {
    const { task } = d;
    const { recorder } = this.c;
    const node = this.c.o.nodeId;
    this.inflight.acquire(task.id, d.run_id);
    // Jitter and flow control: the fire waits here (in flight, no attempt counted). Given up (its
    // slot lost, or a stop): it stays in the outbox for the slot's owner or the next start.
    const permit = await this.pacer.admit(d);
    if (!permit) {
      this.inflight.releaseOnly(task.id, d.run_id);
      return;
    }
    // The permit is held while the run is in flight (an async run: until its report or deadline).
    this.inflight.whenEnded(d.run_id, () => permit.release());
    let awaitingReport = false;
    const start = this.c.o.clock.now();
    const onAttempt = (n: number): void => recorder.push({ run_id: d.run_id, task_id: task.id, status: 'RUNNING', attempts: n, node, start_time: start }, task.completion === 'async');
    // Attempts numbered 2 or more go out once the run record counts them (one write per number,
    // shared by a broadcast's shards).
    const recording = new Map<number, Promise<boolean>>();
    const beforeAttempt = (n: number): Promise<boolean> => {
      let p = recording.get(n);
      if (!p) {
        p = this.recordAttempt(d, n, start);
        recording.set(n, p);
      }
      return p;
    };
    try {
      const job = d.job ?? this.jobOf(d);
      const group = parseExecutorUrl(task.callback.url);
      const { result, shards } =
        group === null
          ? await sendRouted(this.c.o.delivery, job, this.router.route(task), { onAttempt, beforeAttempt })
          : await this.executors.send(job, group, task.callback.route ?? 'round_robin', { onAttempt, beforeAttempt });
      if (result.lapsed === true) {
        this.leftToOwner(d, result.attempts);
      } else if (this.deadlines.closedByReport(d.run_id)) {
        // The worker's report already closed this run (and children/alerts/stats acted on it).
      } else if (!result.aborted && result.ok && (task.completion === 'async' || result.status === 202)) {
        // Async completion: the run stays RUNNING until the worker reports (or the deadline).
        const deadline = this.c.o.clock.now() + (task.async_timeout_ms ?? this.c.o.defaultAsyncTimeoutMs ?? DEFAULT_ASYNC_TIMEOUT_MS);
        recorder.push({ run_id: d.run_id, task_id: task.id, status: 'RUNNING', attempts: result.attempts, node, start_time: start, http_status: result.status, deadline }, true);
        awaitingReport = true;
        this.deadlines.await(d, deadline, result.attempts);
      } else if (!result.aborted) {
        if (this.followUpsElsewhere(d)) {
          // The lease lapsed during the exchange (a pause) and the follow-ups are not this node's:
          // the run stays in the outbox with this attempt counted, and the slot's owner delivers it
          // again and follows up on its own outcome (recording this outcome could close the run
          // before the owner read the outbox, and then nobody would follow up).
          recorder.push({ run_id: d.run_id, task_id: task.id, status: 'RUNNING', attempts: result.attempts, node, start_time: start, http_status: result.status });
          this.leftToOwner(d, result.attempts, true);
          return;
        }
        recorder.push({
          run_id: d.run_id,
          task_id: task.id,
          status: result.ok ? 'SUCCESS' : 'FAIL',
          attempts: result.attempts,
          node,
          start_time: start,
          end_time: result.end_time,
          http_status: result.status,
          error: result.error,
          duration_ms: result.end_time - start,
          response_body: result.body,
          shards,
        });
        this.c.finished({ task_id: task.id, task, run_id: d.run_id, scheduled_time: d.scheduled, result, token: d.token });
      }
    } catch (err) {
      this.c.o.log.error({ err, task_id: task.id, fire_id: d.run_id }, 'delivery failed unexpectedly; run left for redelivery');
    } finally {
      this.deadlines.answered(d.run_id);
      // An async run stays in flight (overlap skip/queue) until it is reported or times out.
      if (!awaitingReport) this.inflight.release(task.id, d.run_id);
    }
  }
}
