/**
 * Fires committed ahead of their due time, held on this node until it (the callback still goes
 * out at the due time): their queue, built delivery jobs, and their release in paced chunks.
 * How a held fire is undone and made sure of is a strategy (a subclass):
 * - LocalUndo (held-local.ts): a store of this process undoes it here (uncommitFire);
 * - StoreClaims (held-claims.ts): a store shared by nodes (HeldFireStore) undoes it from any node,
 *   and the owner claims it shortly before its due time and delivers it only if claimed.
 */
import type { TimerHandle } from '../clock/index.js';
import type { DeliveryJob } from '../delivery/index.js';
import type { HeldFire, UncommitRequest } from '../store/types.js';
import type { Run, Task } from '../task/index.js';
import type { SchedulerCore } from './core.js';
import { TimeBuckets } from './heap.js';
import type { Dispatch } from './types.js';

/** A fire committed ahead of its due time, held here until then. */
export interface Held {
  /** Heap key: when it leaves the held heap (its tick minus the hand-off lead; for a claim, CLAIM_LEAD_MS before it). */
  at: number;
  /** The tick: the callback goes out at this time. */
  tick: number;
  /** The run id. */
  id: string;
  d: Dispatch;
  /** What committing changed, to undo it here (null: not undoable here). */
  undo: Pick<UncommitRequest, 'next' | 'last_fire_time'> | null;
  /** Claimed in the store CLAIM_LEAD_MS before its tick, and delivered only if claimed. */
  claim: boolean;
  /** The same fire was committed again (its earlier commit was undone): this one is not sent. */
  superseded?: boolean;
  /** Claimed ahead of its tick, held until it: reported as released when it goes out. */
  claimed?: boolean;
}

/** What the held fires need of delivery. */
export interface HeldDelivery {
  dispatch(d: Dispatch): void;
  jobOf(d: Dispatch): DeliveryJob;
}

/** Held fires are claimed this long before their tick, so the claim's round trip is not late. */
export const CLAIM_LEAD_MS = 100;
/**
 * Held fires handed to delivery per turn when they come due together; the next chunk follows after
 * a 1 ms timer (up to ~60,000 fires/s, more than one node delivers). Handing 20,000 over at once
 * kept the main thread busy for the burst's first ~250 ms while the delivery thread could only
 * start a few hundred of them, and took the CPU the callbacks' receivers needed on a small machine.
 * Measured in the peer bench (a) on 2 cores: p99 1,309-1,330 ms at once, 1,219-1,227 ms paced.
 */
export const RELEASE_CHUNK = 64;
/**
 * Held fires queued for their claim per event-loop turn (cluster): at least this many, or
 * batchPerSlot per owned slot when that is more, so each slot's claim script carries several fires
 * (1,024 spread over a node's 256 slots was 4 per script call).
 */
const CLAIM_CHUNK = 1024;
/** Delivery jobs of held fires built per event-loop turn. */
const BUILD_CHUNK = 64;

export abstract class HeldFires {
  private readonly queue = new TimeBuckets<Held>();
  protected readonly byRun = new Map<string, Held>();
  protected readonly byTask = new Map<string, Held>();
  private timer: TimerHandle | null = null;
  private timerAt = Infinity;
  private unbuilt: Held[] = [];
  private unbuiltHead = 0;
  private building = false;
  /** A chunk of due held fires is queued (release goes on after a 1 ms timer). */
  private releaseQueued = false;

  /** Fires committed ahead are marked `ahead` for the store to hold them for a claim. */
  abstract readonly claimsAhead: boolean;

  constructor(
    protected readonly c: SchedulerCore,
    protected readonly delivery: HeldDelivery,
    /** How long before its tick a fire is committed (0: at its tick). */
    readonly aheadMs: number,
  ) {}

  /** Holds a fire just committed ahead of its tick. */
  abstract holdCommitted(d: Dispatch, undo: NonNullable<Held['undo']>, ahead: boolean): void;
  /**
   * Undoes the task's held fire (not yet due) before the API changes or deletes it, so the change
   * applies to that tick as if the fire had not been committed. A held fire that cannot be undone
   * goes out as committed.
   */
  abstract cancelAhead(taskId: string): Promise<void>;
  /** The task as the API shows it: while a fire of it is held, as before that commit. */
  abstract viewOf(task: Task): Task;
  /** A held fire came due for its claim (StoreClaims only). */
  protected abstract claim(h: Held): void;
  /** A held fire taken off by an undo or a new commit: not delivered if its claim is under way. */
  protected abstract inClaim(runId: string): Held | undefined;

  count(): number {
    return this.byRun.size;
  }
  /** The run is held here, waiting for its time or its claim. */
  isHeld(runId: string): boolean {
    return this.byRun.has(runId);
  }
  /** The run is held here, or its claim is under way. */
  has(runId: string): boolean {
    return this.byRun.has(runId) || this.inClaim(runId) !== undefined;
  }
  heldTick(taskId: string): number | undefined {
    return this.byTask.get(taskId)?.tick;
  }

  /**
   * A run recovered from the outbox that was committed ahead before a restart: it still goes out at
   * its time, not before. `marker`: the task's unclaimed held fire as the store read it. False when
   * it is due (deliver it now).
   */
  holdRecovered(d: Dispatch, run: Run, marker: HeldFire | null): boolean {
    if (marker?.run_id === run.run_id && run.attempts === 0) {
      // Committed ahead and not claimed yet (by the node that committed it): still undoable,
      // so claimed at its time (at once if that passed) before it goes out.
      this.hold({ tick: run.scheduled_time, id: run.run_id, d, undo: null, claim: true });
      return true;
    }
    if (run.scheduled_time > this.c.o.clock.now() && run.attempts === 0) {
      this.hold({ tick: run.scheduled_time, id: run.run_id, d, undo: null, claim: false });
      return true;
    }
    return false;
  }

  /** The fire was committed again (its earlier commit was undone): the earlier one is not sent. */
  supersede(runId: string): void {
    const earlier = this.byRun.get(runId) ?? this.inClaim(runId);
    if (!earlier) return;
    earlier.superseded = true;
    this.unhold(earlier);
  }

  /** The task was deleted (its runs with it): its held fire is dropped. */
  taskRemoved(taskId: string): void {
    const h = this.byTask.get(taskId);
    if (h) this.unhold(h);
  }

  /**
   * Held fires of lost slots stay in the outbox: the new owner delivers them at their time. Those
   * still to be claimed stay held here: their claim is fenced unless this node owns the slot again
   * by then (a new owner claims them itself; only one claim wins). Those already claimed here are
   * this node's to send at their time (the new owner leaves them alone while this node is live).
   */
  dropSlots(lost: ReadonlySet<number>): void {
    for (const h of [...this.byRun.values()]) if (lost.has(h.d.task.slot) && !h.claim && !h.claimed) this.unhold(h);
  }

  stopTimer(): void {
    this.timer?.cancel();
    this.timer = null;
    this.timerAt = Infinity;
  }

  /**
   * At stop: lets go of every held fire. Those this strategy can undo are undone (a stopped server
   * leaves no fire committed before its time); the others stay in the outbox and go out at their
   * time after the next start.
   */
  async undoAtStop(): Promise<void> {
    for (const h of [...this.byRun.values()]) this.unhold(h);
  }

  /**
   * How long before its tick a held fire is handed to delivery (its job then waits for the tick:
   * `DeliveryJob.not_before`). At most the commit lead: a fire is never handed over before it is
   * committed.
   */
  private get handoffMs(): number {
    return Math.min(this.aheadMs, Math.max(0, this.c.o.handoffAheadMs ?? 0));
  }

  protected hold(fire: Omit<Held, 'at'>): void {
    const now = this.c.o.clock.now();
    // A flow-controlled fire is handed over at its tick: its flow permit (a rate counted when it is
    // taken) must not be taken ahead of the send.
    const { task } = fire.d;
    const early = task.flow_key || task.flow ? 0 : this.handoffMs;
    const h: Held = { ...fire, at: fire.claim ? fire.tick - CLAIM_LEAD_MS : fire.tick - early };
    if (h.at <= now) {
      if (h.claim) this.claim(h);
      else this.send(h, now);
      return;
    }
    // Its delivery job is built soon, a few per event-loop turn (not in the burst at the due time,
    // nor all at once after a large commit).
    if (!h.d.job) {
      this.unbuilt.push(h);
      if (!this.building) {
        this.building = true;
        setImmediate(() => this.buildJobs());
      }
    }
    this.queue.push(h);
    this.byRun.set(h.id, h);
    this.byTask.set(h.d.task.id, h);
    this.arm();
  }

  protected unhold(h: Held): void {
    if (this.byRun.get(h.id) !== h) return;
    this.byRun.delete(h.id);
    if (this.byTask.get(h.d.task.id) === h) this.byTask.delete(h.d.task.id);
    // The heap entry goes stale: released only if still in byRun.
  }

  private buildJobs(): void {
    const end = Math.min(this.unbuilt.length, this.unbuiltHead + BUILD_CHUNK);
    for (; this.unbuiltHead < end; this.unbuiltHead++) {
      const h = this.unbuilt[this.unbuiltHead]!;
      if (this.byRun.get(h.id) === h) h.d.job ??= this.delivery.jobOf(h.d);
    }
    if (this.unbuiltHead < this.unbuilt.length && !this.c.stopped) {
      setImmediate(() => this.buildJobs());
      return;
    }
    this.unbuilt = [];
    this.unbuiltHead = 0;
    this.building = false;
  }

  private arm(): void {
    if (this.c.stopped) return;
    let top = this.queue.peek();
    while (top && this.byRun.get(top.id) !== top) {
      this.queue.pop();
      top = this.queue.peek();
    }
    if (!top) return;
    if (this.timer && this.timerAt <= top.at) return;
    this.timer?.cancel();
    this.timerAt = top.at;
    this.timer = this.c.o.clock.setTimer(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.release();
    }, Math.min(Math.max(0, top.at - this.c.o.clock.now()), this.c.o.maxSleepMs));
  }

  /**
   * Hands the held fires that are due to delivery, RELEASE_CHUNK per 1 ms turn: the first
   * callbacks of a burst go out while the rest are still being handed over.
   */
  private release(): void {
    if (this.c.stopped || this.releaseQueued) return; // a queued chunk goes on from where this would
    const now = this.c.o.clock.now();
    let n = 0;
    let claims = 0;
    const claimChunk = Math.max(CLAIM_CHUNK, (this.c.o.batchPerSlot ?? 0) * this.c.o.ownership.ownedSlots().length);
    for (;;) {
      const top = this.queue.peek();
      if (!top || top.at > now) break;
      if (n === RELEASE_CHUNK || claims === claimChunk) {
        // Claims (cheap, and due CLAIM_LEAD_MS before their tick) go on at the next turn.
        this.releaseQueued = true;
        const next = (): void => {
          this.releaseQueued = false;
          this.release();
        };
        if (n === RELEASE_CHUNK) this.c.o.clock.setTimer(next, 1);
        else setImmediate(next);
        return;
      }
      this.queue.pop();
      if (this.byRun.get(top.id) !== top) continue;
      this.unhold(top);
      if (top.claim) {
        claims++;
        this.claim(top);
        continue;
      }
      n++;
      this.send(top, now);
    }
    this.arm();
  }

  /**
   * Hands a held fire to delivery: at its tick, or up to handoffMs before it, in which case
   * delivery sends it at the tick (the job's not_before), never before. Its lateness (the
   * 'released' event) is taken from the tick when handed over ahead.
   */
  private send(h: Held, now: number): void {
    if (h.undo || h.claimed) this.c.events.emit('released', { task_id: h.d.task.id, run_id: h.id, scheduled_time: h.tick, released_at: Math.max(now, h.tick) });
    if (h.tick > now) {
      h.d.notBefore = h.tick;
      if (h.d.job) h.d.job.not_before = h.tick;
    }
    this.delivery.dispatch(h.d);
  }
}
