/**
 * The scheduler: for the slots this node owns, keeps the tasks due inside the lookahead window in
 * a timer heap, commits due fires in batches through `store.commitFires` (fencing token +
 * compare-and-set), hands committed fires to delivery, and records the outcome.
 *
 * Invariant: every active task of an owned slot whose (next_fire_time, id) is at or below the
 * horizon is in the heap. Extra or stale entries are harmless: the compare-and-set in the store
 * refuses a stale tick, and the task is then re-read.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock/index.js';
import { rendezvous, slotOf, type Ownership } from '../cluster/index.js';
import type { DeliveryHooks, DeliveryJob, DeliveryResult } from '../delivery/index.js';
import { StoreUnavailableError } from '../errors.js';
import { HELD, type ClaimResult, type DueKey, type FireRequest, type FireResult, type TaskStore, type WithHeld } from '../store/types.js';
import { PERIODIC, fireId, nextFire, reportToken, withRunHeaders, type RetryPolicy, type Run, type RunRequest, type ShardResult, type Task } from '../task/index.js';
import { redeliveryAttempt } from './attempts.js';
import { MinHeap, TimeBuckets } from './heap.js';
import { RunRecorder } from './recorder.js';

export interface Deliverer {
  deliver(job: DeliveryJob, hooks?: DeliveryHooks): Promise<DeliveryResult>;
  /** Optional: gives back deliveries not started yet (they resolve as aborted). */
  cancelWaiting?(match: (job: DeliveryJob) => boolean): number;
  /** Optional: callbacks waiting for a connection (over the concurrency caps) right now. */
  backlog?(): number;
}

/** What the follow-ups of a finished run ask of the task operations (src/service implements it). */
export interface TaskOperations {
  /** Records a manual run of the task now and gets it delivered; null when the task does not exist. */
  trigger(taskId: string): Promise<{ run_id: string } | null>;
  /** Pauses the task when its newest `limit` finished runs all failed; the paused task, or null. */
  pauseAfterFailures(taskId: string, limit: number): Promise<Task | null>;
}

export interface SchedulerOptions {
  store: TaskStore;
  ownership: Ownership;
  delivery: Deliverer;
  clock: Clock;
  log: Logger;
  nodeId: string;
  lookaheadMs: number;
  scanIntervalMs: number;
  maxSleepMs: number;
  misfireThresholdMs: number;
  batchSize: number;
  /**
   * A store that splits a commit by slot (Redis: one script per slot) gets batches of at least
   * this many fires per owned slot, so each script commits several (with 250 spread over a node's
   * ~85 slots, a burst went out as ~3 fires per script call). Default 0: batchSize alone.
   */
  batchPerSlot?: number;
  maxLoaded: number;
  /**
   * At most one commit per this many ms while fires stream in (a steady 5,000 fires/s becomes
   * ~10-fire transactions instead of one per timer wake). Adds at most this much lateness. Default 0.
   */
  commitCoalesceMs?: number;
  /**
   * Run-state writes wait while callbacks are queued for a connection (standalone only; see
   * RunRecorder). Default false.
   */
  deferRunWrites?: boolean;
  /**
   * Fires are committed up to this many ms before their due time and held on this node until it
   * (the callback still goes out at the due time). A burst's store work is then done before the
   * burst. Tasks with overlap 'skip' commit at their due time. Needs a store with
   * `uncommitFire` (pause, update and delete undo a held fire here), or with `claimFires` and
   * `uncommitHeld` (a shared store: any node undoes it there, and the owner claims it at its due
   * time before delivering it). Default 0: commit when due.
   */
  commitAheadMs?: number;
  /** Every this many scans, a full re-read of the window up to the horizon (the safety net). Default 10. */
  safetyRescanEvery?: number;
  defaultTimeoutMs: number;
  defaultRetry: RetryPolicy;
  /**
   * The task operations of the follow-ups (the service layer, given by the composition root):
   * triggering child tasks and the pause after consecutive failures. Absent: neither happens.
   */
  taskOps?: TaskOperations;
  /**
   * A run this node let go of (its lease lapsed before the send, or before an async deadline) must
   * reach its slot's owner: cluster, the notifier (this node when it owns the slot again). Default:
   * deliver it here if this node owns the slot.
   */
  onRunQueued?: (runId: string, slot: number) => void;
  /** Global alert webhook for final failures ('' or undefined: none, unless the task has alert_url). */
  alertUrl?: string;
  /** Default for tasks without max_consecutive_failures (0: never auto-pause). */
  maxConsecutiveFailures?: number;
  /** Secret for X-Xcron-Report-Token (async completion). Empty: a per-process random secret. */
  reportSecret?: string;
  /** Default report deadline of async runs (ms). */
  defaultAsyncTimeoutMs?: number;
}

export interface AlertEvent {
  event: 'run_failed' | 'task_paused';
  task_id: string;
  task_name: string | null;
  run_id: string;
  scheduled_time: number;
  error: string | null;
  http_status: number | null;
  attempts: number;
  node: string;
  time: number;
  consecutive_failures?: number;
}

export interface FiredEvent {
  task_id: string;
  run_id: string;
  scheduled_time: number;
  committed_at: number;
  status: 'PENDING' | 'SKIPPED' | 'MISSED';
}

/** A counted fire was handed to delivery (at its due time, or late): lateness = released_at - scheduled_time. */
export interface ReleasedEvent {
  task_id: string;
  run_id: string;
  scheduled_time: number;
  released_at: number;
}

export interface FinishedEvent {
  task_id: string;
  run_id: string;
  scheduled_time: number;
  result: DeliveryResult;
}

export interface SchedulerEvents {
  /** A fire was committed (for a fire committed ahead: before its due time). */
  fired: [FiredEvent];
  released: [ReleasedEvent];
  finished: [FinishedEvent];
  fenced: [slot: number];
  storeError: [Error];
  alert: [AlertEvent];
  childTriggered: [{ parent_id: string; child_id: string; run_id: string }];
}

interface Entry {
  /** Heap key: when to commit (the tick, or the tick minus commitAheadMs). */
  at: number;
  /** The tick to fire (the task's next_fire_time). */
  tick: number;
  id: string;
  task: Task;
  /**
   * The tick of a commit that failed without a usable answer (it may stand in the store: a lost
   * reply, or replicas that did not confirm it): the next commit of that tick is a retry.
   */
  uncertain?: number;
}

/** A fire committed ahead of its due time, held here until then. */
interface Held {
  /** Heap key: when it leaves the held heap (its tick; for a claim, CLAIM_LEAD_MS before it). */
  at: number;
  /** The tick: the callback goes out at this time. */
  tick: number;
  /** The run id. */
  id: string;
  d: Dispatch;
  /** What committing changed, to undo it (null: recovered from the outbox, not undoable here). */
  undo: { next: number | null; last_fire_time: number | null } | null;
  /**
   * Claimed in the store CLAIM_LEAD_MS before its tick, and delivered only if claimed (a store
   * with claimFires: the undo is the store's, from any node, and a claim or an undo wins).
   */
  claim: boolean;
  /** The same fire was committed again (its earlier commit was undone): this one is not sent. */
  superseded?: boolean;
  /** Claimed ahead of its tick, held until it: reported as released when it goes out. */
  claimed?: boolean;
}

/** Held fires are claimed this long before their tick, so the claim's round trip is not late. */
const CLAIM_LEAD_MS = 100;

interface Dispatch {
  task: Task;
  run_id: string;
  scheduled: number;
  first_attempt: number;
  /**
   * The lease token of the task's slot it was committed, claimed or recovered under: it is sent,
   * retried and followed up only while this node holds that lease (Ownership.holds / mayAct).
   */
  token: number;
  /** The delivery job, built while the fire was held (so its due time only hands it over). */
  job?: DeliveryJob;
  /** The run's one-off body/headers (triggerTask with a body, its retries), sent instead of the task's. */
  request?: RunRequest | null;
}

const MAX_KEY_ID = '\uffff';
/** Rows read per store query when loading the window: small, so that loading never delays a fire. */
const SCAN_PAGE = 500;
/** The periodic outbox refresh reads runs scheduled at least this long ago (see onAcquired). */
const PERIODIC_OUTBOX_LAG_MS = 10_000;
/** Slots the safety rescan reads at once (each on its own) when a node owns a subset of them. */
const RESCAN_PARALLEL = 16;
/** Batches at least this large mean fires are streaming in: the next commit may wait a little. */
const COALESCE_MIN_BATCH = 4;
/**
 * Held fires handed to delivery per turn when they come due together; the next chunk follows after
 * a 1 ms timer (up to ~60,000 fires/s, more than one node delivers). Handing 20,000 over at once
 * kept the main thread busy for the burst's first ~250 ms while the delivery thread could only
 * start a few hundred of them, and took the CPU the callbacks' receivers needed on a small machine.
 * Measured in the peer bench (a) on 2 cores: p99 1,309-1,330 ms at once, 1,219-1,227 ms paced.
 */
const RELEASE_CHUNK = 64;
/** Held fires queued for their claim per event-loop turn (cluster). */
const CLAIM_CHUNK = 1024;
/** The route of a task with one callback URL: its job as built (no copy per fire). */
const SINGLE = { mode: 'single' as const, urls: [] as string[] };
/** Delivery jobs of held fires built per event-loop turn. */
const BUILD_CHUNK = 64;
const yieldToTimers = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
const keyLE = (t: number, id: string, k: DueKey): boolean => t < k.time || (t === k.time && id <= k.id);

export class Scheduler extends EventEmitter<SchedulerEvents> {
  private readonly heap = new MinHeap<Entry>();
  private readonly entries = new Map<string, Entry>();
  private horizon: DueKey = { time: -Infinity, id: '' };
  private scanTarget = -Infinity;
  private timer: TimerHandle | null = null;
  private timerAt = Infinity;
  private scanTimer: TimerHandle | null = null;
  private firing: Promise<void> | null = null;
  private wakeAgain = false;
  private scanning: Promise<void> | null = null;
  private stopped = true;
  private readonly inflightByTask = new Map<string, number>();
  private readonly inflightRuns = new Set<string>();
  private readonly queued = new Map<string, Dispatch[]>();
  private readonly recorder: RunRecorder;
  private storeBackoffUntil = 0;
  private scans = 0;
  private lastCommitAt = -Infinity;
  private lastBatchSize = 0;
  private readonly held = new TimeBuckets<Held>();
  private readonly heldByRun = new Map<string, Held>();
  private readonly heldByTask = new Map<string, Held>();
  private holdTimer: TimerHandle | null = null;
  private holdAt = Infinity;
  private readonly aheadMs: number;
  /** The store undoes and claims held fires itself (claimFires / uncommitHeld). */
  private readonly claims: boolean;
  private claimQueue: Held[] = [];
  /** Held fires handed to a claim that has not answered yet, by run id. */
  private readonly claiming = new Map<string, Held>();
  private claimFlush = false;

  /**
   * Commits are coalesced only while fires stream in (the last batch held several): a lone fire
   * is committed at once, so light loads keep their millisecond lateness.
   */
  private coalesceMs(): number {
    return this.lastBatchSize >= COALESCE_MIN_BATCH ? (this.o.commitCoalesceMs ?? 0) : 0;
  }
  private readonly rr = new Map<string, number>();
  /** Async runs awaiting their report on this node: run_id → deadline timer. */
  private readonly awaiting = new Map<string, { d: Dispatch; deadline: number; attempts: number; timer: TimerHandle | null }>();
  private readonly reportSecret: string;
  /** Runs closed by a report while their HTTP exchange was still in progress here. */
  private readonly closedByReport = new Set<string>();

  constructor(private readonly o: SchedulerOptions) {
    super();
    const { delivery } = o;
    this.recorder = new RunRecorder(o.store, o.log, o.clock, undefined, o.deferRunWrites && delivery.backlog ? () => delivery.backlog!() > 0 : undefined);
    this.reportSecret = o.reportSecret ?? randomBytes(32).toString('hex');
    this.claims = typeof o.store.claimFires === 'function' && typeof o.store.uncommitHeld === 'function';
    this.aheadMs = o.store.uncommitFire || this.claims ? (o.commitAheadMs ?? 0) : 0;
    o.ownership.on('acquired', (slots, periodic) => void this.onAcquired(slots, periodic === true));
    o.ownership.on('lost', (slots) => this.onLost(slots));
  }

  /** Tasks currently held in memory (due inside the lookahead window). */
  loadedCount(): number {
    return this.entries.size;
  }
  inflightCount(): number {
    return this.inflightRuns.size;
  }
  /** Fires committed ahead of their due time, waiting for it on this node. */
  heldCount(): number {
    return this.heldByRun.size;
  }

  /** Redelivers the outbox of the owned slots, loads the window, and starts the timers. */
  async start(): Promise<void> {
    this.stopped = false;
    this.stopping = null;
    const owned = this.o.ownership.ownedSlots();
    if (owned.length > 0) await this.recover(owned);
    await this.scan();
    this.scheduleScan();
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

  private stopping: Promise<void> | null = null;

  private async stopOnce(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    this.scanTimer?.cancel();
    this.scanTimer = null;
    // Held fires are undone below (undoHeld); those recovered from the outbox stay there and go
    // out at their time after the next start.
    this.holdTimer?.cancel();
    this.holdTimer = null;
    this.holdAt = Infinity;
    for (const w of this.awaiting.values()) w.timer?.cancel();
    this.awaiting.clear();
    if (this.firing) await this.firing;
    if (this.scanning) await this.scanning;
    await this.undoHeld();
  }

  private async undoHeld(): Promise<void> {
    const uncommit = this.o.store.uncommitFire?.bind(this.o.store);
    let undone = 0;
    for (const h of [...this.heldByRun.values()]) {
      this.unhold(h);
      if (!h.undo || !uncommit) continue; // recovered from the outbox: delivered after the next start
      try {
        if (await uncommit({ task_id: h.d.task.id, run_id: h.id, tick: h.tick, next: h.undo.next, last_fire_time: h.undo.last_fire_time })) undone++;
      } catch (e) {
        this.reportStoreError(e);
        break; // the store is gone: the rest stay in the outbox and go out after the next start
      }
    }
    if (undone > 0) this.o.log.info({ undone }, 'fires committed ahead of their due time undone at stop');
  }

  /** Writes queued run updates (called after deliveries drain, before the store closes). */
  async flush(): Promise<void> {
    await this.recorder.flush();
    this.recorder.stop();
  }

  // ---- notifications from the API (and, in a cluster, from other nodes) ----

  /** A task was created or changed: (re)load it if it is ours and due inside the horizon. */
  taskChanged(task: Task): void {
    if (this.stopped) return;
    const prev = this.entries.get(task.id);
    if (task.state !== 'active' || task.next_fire_time === null || this.o.ownership.tokenFor(task.slot) === null) {
      if (prev) this.entries.delete(task.id);
      return;
    }
    const at = task.next_fire_time;
    const within = keyLE(at, task.id, this.horizon) || at <= this.scanTarget;
    if (!within) {
      if (prev) this.entries.delete(task.id);
      return;
    }
    this.insert(task);
    this.armTimer();
  }

  /** A manual fire (triggerTask) was recorded: deliver it if this node owns the slot. */
  async deliverRun(runId: string): Promise<void> {
    if (this.stopped || this.inflightRuns.has(runId) || this.heldByRun.has(runId) || this.deliveringRun.has(runId)) return;
    this.deliveringRun.add(runId);
    try {
      const first = await this.o.store.getRun(runId);
      if (!first || (first.status !== 'PENDING' && first.status !== 'RUNNING')) return;
      const task = await this.o.store.get(first.task_id);
      if (!task) return;
      // The run is read again last, and checked in the same turn as it is handed over: a delivery of
      // it here that ended meanwhile has its outcome written (the read says so) or queued
      // (finishedHere), and one still going is in flight. Either way it is not sent twice.
      const run = await this.o.store.getRun(runId);
      if (!run || (run.status !== 'PENDING' && run.status !== 'RUNNING')) return;
      const token = this.o.ownership.tokenFor(run.slot);
      if (this.stopped || token === null || this.inflightRuns.has(runId) || this.awaiting.has(runId) || this.heldByRun.has(runId) || this.recorder.finishedHere(runId)) return;
      if (this.queued.get(task.id)?.some((q) => q.run_id === runId)) return; // waiting behind a run of its task (overlap queue)
      if (run.status === 'RUNNING' && run.deadline !== null) {
        // An async run awaiting its report, left by a node whose lease lapsed: its deadline is enforced here.
        this.acquireInflight(task.id, runId);
        this.awaitReport({ task, run_id: runId, scheduled: run.scheduled_time, first_attempt: run.attempts, token, request: run.request }, run.deadline, run.attempts);
        return;
      }
      this.emit('fired', { task_id: task.id, run_id: runId, scheduled_time: run.scheduled_time, committed_at: run.scheduled_time, status: 'PENDING' });
      this.emit('released', { task_id: task.id, run_id: runId, scheduled_time: run.scheduled_time, released_at: Math.max(run.scheduled_time, this.o.clock.now()) });
      this.dispatch({ task, run_id: runId, scheduled: run.scheduled_time, first_attempt: run.attempts + 1, token, request: run.request }, null);
    } catch (e) {
      this.reportStoreError(e);
    } finally {
      this.deliveringRun.delete(runId);
    }
  }

  /** Runs a deliverRun call is reading (a second call for the same run returns at once). */
  private readonly deliveringRun = new Set<string>();

  /**
   * Reads the outbox of every owned slot again and redelivers what is not in flight here (after
   * the store thread was replaced: a commit may have landed without its answer).
   */
  async redeliverOutbox(): Promise<void> {
    if (this.stopped) return;
    const owned = this.o.ownership.ownedSlots();
    if (owned.length > 0) await this.recover(owned);
  }

  /** A task was deleted (its runs with it): a fire held for it is dropped. */
  taskRemoved(id: string): void {
    this.entries.delete(id);
    this.queued.delete(id);
    const h = this.heldByTask.get(id);
    if (h) this.unhold(h);
  }

  /**
   * Called before the API changes or deletes a task: a fire of it committed ahead and still held
   * (not yet due) is undone in the store (run removed, tick and counters restored), so the change
   * applies to that tick as if the fire had not been committed. The task goes back into the heap
   * at its tick (not ahead), so the change can land first. A held fire that cannot be undone (its
   * run moved on, or it was recovered from the outbox) goes out as committed.
   */
  async cancelAhead(taskId: string): Promise<void> {
    if (this.claims) {
      // The store undoes it (from any node; the owner's claim before the due time then answers 'undone').
      if (this.aheadMs === 0 || this.stopped) return;
      let undone = false;
      try {
        undone = await this.o.store.uncommitHeld!(taskId);
      } catch (e) {
        this.reportStoreError(e);
      }
      if (undone) {
        const h = this.heldByTask.get(taskId);
        if (h) this.unhold(h);
        this.o.log.debug({ task_id: taskId }, 'fire committed ahead undone before the task changed');
      }
      return;
    }
    const h = this.heldByTask.get(taskId);
    if (!h || !h.undo || !this.o.store.uncommitFire || this.stopped) return;
    this.unhold(h);
    const task = h.d.task;
    let undone = false;
    try {
      undone = await this.o.store.uncommitFire({ task_id: taskId, run_id: h.id, tick: h.tick, next: h.undo.next, last_fire_time: h.undo.last_fire_time });
    } catch (e) {
      this.reportStoreError(e);
    }
    if (!undone) {
      this.hold(h);
      return;
    }
    task.next_fire_time = h.tick;
    task.state = 'active';
    task.run_count--;
    task.last_fire_time = h.undo.last_fire_time;
    const prev = this.entries.get(taskId);
    if (!this.stopped && this.o.ownership.tokenFor(task.slot) !== null) {
      const e: Entry = prev ?? { at: h.tick, tick: h.tick, id: taskId, task };
      e.at = h.tick;
      e.tick = h.tick;
      e.task = task;
      this.entries.set(taskId, e);
      this.heap.push(e);
      this.armTimer();
    }
    this.o.log.debug({ task_id: taskId, fire_id: h.id }, 'fire committed ahead undone before the task changed');
  }

  /**
   * The task as the API shows it: while a fire of it is committed ahead and held (not yet due), the
   * task is shown as before that commit (its tick still next, a one-shot still active).
   */
  viewOf(task: Task): Task {
    const sh = (task as WithHeld<Task>)[HELD];
    if (sh) {
      // Held in a shared store: shown as before that commit on every node.
      if (task.last_fire_time !== sh.tick) return task;
      return { ...task, state: task.state === 'completed' ? 'active' : task.state, next_fire_time: sh.tick, run_count: task.run_count - 1, last_fire_time: sh.last_fire_time };
    }
    const h = this.heldByTask.get(task.id);
    if (!h || !h.undo || task.last_fire_time !== h.tick || task.next_fire_time !== h.undo.next) return task;
    return { ...task, state: task.state === 'completed' ? 'active' : task.state, next_fire_time: h.tick, run_count: task.run_count - 1, last_fire_time: h.undo.last_fire_time };
  }

  // ---- fires committed ahead, held until due ----

  private hold(fire: Omit<Held, 'at'>): void {
    const h: Held = { ...fire, at: fire.claim ? fire.tick - CLAIM_LEAD_MS : fire.tick };
    if (h.at <= this.o.clock.now()) {
      if (h.claim) this.queueClaim(h);
      else this.dispatch(h.d, null);
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
    this.held.push(h);
    this.heldByRun.set(h.id, h);
    this.heldByTask.set(h.d.task.id, h);
    this.armHold();
  }

  private unbuilt: Held[] = [];
  /** A chunk of due held fires is queued (releaseHeld goes on after a 1 ms timer). */
  private releaseQueued = false;
  private unbuiltHead = 0;
  private building = false;

  private buildJobs(): void {
    const end = Math.min(this.unbuilt.length, this.unbuiltHead + BUILD_CHUNK);
    for (; this.unbuiltHead < end; this.unbuiltHead++) {
      const h = this.unbuilt[this.unbuiltHead]!;
      if (this.heldByRun.get(h.id) === h) h.d.job ??= this.jobOf(h.d);
    }
    if (this.unbuiltHead < this.unbuilt.length && !this.stopped) {
      setImmediate(() => this.buildJobs());
      return;
    }
    this.unbuilt = [];
    this.unbuiltHead = 0;
    this.building = false;
  }

  private unhold(h: Held): void {
    if (this.heldByRun.get(h.id) !== h) return;
    this.heldByRun.delete(h.id);
    if (this.heldByTask.get(h.d.task.id) === h) this.heldByTask.delete(h.d.task.id);
    // The heap entry goes stale: released only if still in heldByRun.
  }

  private armHold(): void {
    if (this.stopped) return;
    let top = this.held.peek();
    while (top && this.heldByRun.get(top.id) !== top) {
      this.held.pop();
      top = this.held.peek();
    }
    if (!top) return;
    if (this.holdTimer && this.holdAt <= top.at) return;
    this.holdTimer?.cancel();
    this.holdAt = top.at;
    this.holdTimer = this.o.clock.setTimer(() => {
      this.holdTimer = null;
      this.holdAt = Infinity;
      this.releaseHeld();
    }, Math.min(Math.max(0, top.at - this.o.clock.now()), this.o.maxSleepMs));
  }

  /**
   * Hands the held fires that are due to delivery, RELEASE_CHUNK per 1 ms turn: the first
   * callbacks of a burst go out while the rest are still being handed over.
   */
  private releaseHeld(): void {
    if (this.stopped || this.releaseQueued) return; // a queued chunk goes on from where this would
    const now = this.o.clock.now();
    let n = 0;
    let claims = 0;
    for (;;) {
      const top = this.held.peek();
      if (!top || top.at > now) break;
      if (n === RELEASE_CHUNK || claims === CLAIM_CHUNK) {
        // Claims (cheap, and due CLAIM_LEAD_MS before their tick) go on at the next turn.
        this.releaseQueued = true;
        const next = (): void => {
          this.releaseQueued = false;
          this.releaseHeld();
        };
        if (n === RELEASE_CHUNK) setTimeout(next, 1);
        else setImmediate(next);
        return;
      }
      this.held.pop();
      if (this.heldByRun.get(top.id) !== top) continue;
      this.unhold(top);
      if (top.claim) {
        claims++;
        this.queueClaim(top);
        continue;
      }
      n++;
      if (top.undo || top.claimed) this.emit('released', { task_id: top.d.task.id, run_id: top.id, scheduled_time: top.tick, released_at: now });
      this.dispatch(top.d, null);
    }
    this.armHold();
  }

  /** Queues a due held fire for its claim; the queue goes to the store once per event-loop turn. */
  private queueClaim(h: Held): void {
    this.claiming.set(h.id, h);
    this.claimQueue.push(h);
    if (this.claimFlush) return;
    this.claimFlush = true;
    setImmediate(() => {
      this.claimFlush = false;
      const batch = this.claimQueue;
      this.claimQueue = [];
      void this.claimAndDispatch(batch);
    });
  }

  /**
   * Claims due held fires in the store, then delivers those claimed. Undone ones (the task changed
   * or was deleted before their time, through any node) are dropped; fenced ones mean the slot was
   * lost (its new owner delivers them). If the store cannot answer, the claim is retried: claiming
   * twice answers the same.
   */
  private async claimAndDispatch(batch: Held[]): Promise<void> {
    if (this.stopped || batch.length === 0) return;
    const claimFires = this.o.store.claimFires!.bind(this.o.store);
    let res: ClaimResult[];
    const reqs = batch.map((h) => ({ slot: h.d.task.slot, token: this.o.ownership.tokenFor(h.d.task.slot), task_id: h.d.task.id, run_id: h.id }));
    try {
      res = await claimFires(reqs, this.o.nodeId);
    } catch (e) {
      this.reportStoreError(e);
      if (!this.stopped) setTimeout(() => void this.claimAndDispatch(batch), 250);
      return;
    }
    const now = this.o.clock.now();
    const fenced = new Set<number>();
    for (let i = 0; i < batch.length; i++) {
      const h = batch[i]!;
      const r = res[i];
      if (this.claiming.get(h.id) === h) this.claiming.delete(h.id);
      if (h.superseded) continue; // committed again meanwhile: that commit delivers it
      if (r === 'claimed') {
        // Sent only under the lease it was claimed with (a claim answered 'claimed' had a valid token).
        h.d.token = reqs[i]!.token ?? h.d.token;
        if (h.tick > now) {
          // Claimed ahead of its tick: it no longer can be undone, and goes out at its time.
          this.hold({ tick: h.tick, id: h.id, d: h.d, undo: null, claim: false, claimed: true });
          continue;
        }
        this.emit('released', { task_id: h.d.task.id, run_id: h.id, scheduled_time: h.tick, released_at: now });
        this.dispatch(h.d, null);
      } else if (r === 'fenced') {
        if (this.o.ownership.tokenFor(h.d.task.slot) !== null) fenced.add(h.d.task.slot);
      } else {
        this.o.log.debug({ task_id: h.d.task.id, fire_id: h.id }, 'fire committed ahead was undone before its time (the task changed)');
      }
    }
    for (const slot of fenced) {
      this.o.log.warn({ slot }, 'fencing token refused at claim: slot lost, not firing');
      this.emit('fenced', slot);
      this.o.ownership.reportFenced(slot);
    }
  }

  // ---- ownership ----

  private async onAcquired(slots: number[], periodic = false): Promise<void> {
    if (this.stopped || slots.length === 0) return; // before start(): start() recovers and scans
    if (periodic) {
      // A safety net for runs left by a node that went unnoticed, on slots loaded already (the
      // safety rescan re-checks their window). Runs scheduled in the last PERIODIC_OUTBOX_LAG_MS
      // are in flight on the nodes that fired them: reading them all (a burst's whole outbox, and
      // each run's task) found nothing to send, and cost a node as much as the burst's commits.
      // A run left among them is found by the next refresh.
      await this.recover(slots, this.o.clock.now() - PERIODIC_OUTBOX_LAG_MS);
      this.armTimer();
      return;
    }
    // Load the new slots up to the current horizon, then redeliver their outbox.
    if (this.horizon.time !== -Infinity) await this.loadRange(slots, null, this.horizon.time);
    await this.recover(slots);
    this.armTimer();
  }

  private onLost(slots: number[]): void {
    const lost = new Set(slots);
    const letGo: string[] = [];
    for (const [runId, w] of this.awaiting) {
      if (lost.has(w.d.task.slot)) {
        w.timer?.cancel();
        this.awaiting.delete(runId);
        this.releaseInflightOnly(w.d.task.id, runId);
        letGo.push(runId);
      }
    }
    // Their report deadlines are the slot owner's to enforce now (this node too, if it owns the slot again).
    if (letGo.length > 0) void Promise.resolve(this.o.store.givenBack?.(letGo)).catch(() => undefined);
    for (const [id, e] of this.entries) if (lost.has(e.task.slot)) this.entries.delete(id);
    this.heap.filter((e) => this.entries.get(e.id) === e);
    // Deliveries of lost slots that have not started are given back: the new owner (or this node,
    // once it owns the slot again) delivers them from the outbox, so they are not sent twice.
    // Those already in an HTTP exchange go on (at least once).
    const given = new Set<string>();
    this.o.delivery.cancelWaiting?.((job) => {
      if (!lost.has(slotOf(job.task_id, this.o.ownership.slotCount))) return false;
      given.add(job.run_id);
      return true;
    });
    if (given.size > 0) {
      void Promise.resolve(this.o.store.givenBack?.([...given])).catch((err: unknown) =>
        this.o.log.warn({ err: err instanceof Error ? err.message : String(err), runs: given.size }, 'could not mark runs given back; the new owner delivers them once this node leaves the cluster'),
      );
      this.o.log.info({ runs: given.size, slots: slots.length }, 'deliveries not started yet given back with their lost slots');
    }
    // Held fires of lost slots stay in the outbox: the new owner delivers them at their time. Those
    // still to be claimed stay held here: their claim is fenced unless this node owns the slot again
    // by then (a new owner claims them itself; only one claim wins). Those already claimed here are
    // this node's to send at their time (the new owner leaves them alone while this node is live).
    for (const h of [...this.heldByRun.values()]) if (lost.has(h.d.task.slot) && !h.claim && !h.claimed) this.unhold(h);
  }

  // ---- loading ----

  /** When to commit a task's tick: ahead of it, unless its overlap policy is decided at the due time. */
  private keyOf(task: Task, tick: number): number {
    return this.aheadMs > 0 && task.overlap !== 'skip' ? tick - this.aheadMs : tick;
  }

  private insert(task: Task): void {
    if (task.next_fire_time === null) return;
    let at = this.keyOf(task, task.next_fire_time);
    // A fire of this task is held: the next tick is committed no earlier than that one is due.
    const h = this.heldByTask.get(task.id);
    if (h && h.tick > at) at = Math.min(h.tick, task.next_fire_time);
    const e: Entry = { at, tick: task.next_fire_time, id: task.id, task };
    this.entries.set(task.id, e);
    this.heap.push(e);
  }

  private slotFilter(): number[] | null {
    const owned = this.o.ownership.ownedSlots();
    return owned.length === this.o.ownership.slotCount ? null : owned;
  }

  private scheduleScan(): void {
    if (this.stopped) return;
    this.scanTimer = this.o.clock.setTimer(() => {
      this.scans++;
      const safety = this.scans % (this.o.safetyRescanEvery ?? 10) === 0;
      void (safety ? this.safetyRescan() : Promise.resolve())
        .then(() => this.scan())
        .finally(() => this.scheduleScan());
    }, this.o.scanIntervalMs);
  }

  /**
   * The safety net: re-reads every due task up to the horizon and loads the ones missing from the
   * heap (a lost notification, a write by another process, a task dropped after a store error).
   */
  async safetyRescan(): Promise<void> {
    if (this.stopped || this.horizon.time === -Infinity) return;
    const upTo = this.horizon.time;
    let found = 0;
    try {
      const slots = this.slotFilter();
      if (slots !== null && slots.length === 0) return;
      // The rescan needs no order across slots: with a subset of the slots (a cluster node), each
      // slot is read on its own, RESCAN_PARALLEL at a time (a read over many slots merges them in
      // order, which costs a per-slot cursor lookup on every page).
      const groups: (readonly number[] | null)[] = slots === null ? [null] : slots.map((s) => [s]);
      for (let g = 0; g < groups.length && !this.stopped; g += RESCAN_PARALLEL) {
        const counts = await Promise.all(groups.slice(g, g + RESCAN_PARALLEL).map((group) => this.rescanGroup(group, upTo)));
        for (const c of counts) found += c;
      }
    } catch (e) {
      this.reportStoreError(e);
    }
    if (found > 0) {
      this.o.log.info({ found }, 'safety rescan loaded tasks that were missing from the timer heap');
      this.armTimer();
    }
  }

  /** Rescans the due tasks of some slots (null: all) page by page; returns how many it loaded. */
  private async rescanGroup(slots: readonly number[] | null, upTo: number): Promise<number> {
    let cursor: DueKey | null = null;
    let found = 0;
    for (;;) {
      // Keys only: the tasks already loaded (nearly all) are not read again.
      const keys = await this.o.store.dueKeys({ slots, after: cursor, upTo, limit: SCAN_PAGE });
      const n = keys.length;
      if (n > 0) cursor = keys[n - 1]!;
      const missing = keys.filter((k) => !this.entries.has(k.id) && !this.committingIds.has(k.id));
      const rows = (await Promise.all(missing.map((k) => this.o.store.get(k.id)))).filter((t): t is Task => t !== null && t.state === 'active' && t.next_fire_time !== null);
      for (const t of rows) {
        if (this.entries.has(t.id) || this.committingIds.has(t.id) || this.o.ownership.tokenFor(t.slot) === null) continue;
        if (!keyLE(t.next_fire_time!, t.id, this.horizon)) continue;
        this.insert(t);
        found++;
      }
      if (n < SCAN_PAGE || this.stopped) return found;
      await yieldToTimers(); // small pages with the timers in between: a rescan never delays a fire
    }
  }

  /** Extends the horizon to now + lookahead, page by page, up to maxLoaded entries. */
  scan(): Promise<void> {
    if (this.scanning) return this.scanning;
    this.scanning = (async () => {
      // A scan that finishes without awaiting (no owned slot yet: a node joining a cluster) would
      // run the finally below before `this.scanning` is assigned, leaving it set for good.
      await Promise.resolve();
      try {
        const target = this.o.clock.now() + this.o.lookaheadMs;
        this.scanTarget = target;
        const page = SCAN_PAGE;
        for (;;) {
          if (this.stopped) break;
          if (this.entries.size >= this.o.maxLoaded) break;
          const slots = this.slotFilter();
          if (slots !== null && slots.length === 0) {
            this.horizon = { time: target, id: MAX_KEY_ID };
            break;
          }
          const rows = await this.o.store.dueTasks({ slots, after: this.horizon.time === -Infinity ? null : this.horizon, upTo: target, limit: page });
          for (const t of rows) if (this.o.ownership.tokenFor(t.slot) !== null && !this.committingIds.has(t.id)) this.insert(t);
          if (rows.length < page) {
            this.horizon = { time: target, id: MAX_KEY_ID };
            break;
          }
          const last = rows[rows.length - 1]!;
          this.horizon = { time: last.next_fire_time!, id: last.id };
          this.armTimer();
          await yieldToTimers();
        }
      } catch (e) {
        this.reportStoreError(e);
      } finally {
        this.scanning = null;
        this.armTimer();
      }
    })();
    return this.scanning;
  }

  /** Loads the given slots' due tasks up to `upTo` (used when slots are acquired). */
  private async loadRange(slots: number[], after: DueKey | null, upTo: number): Promise<void> {
    let cursor = after;
    try {
      for (;;) {
        const rows = await this.o.store.dueTasks({ slots, after: cursor, upTo, limit: 5000 });
        for (const t of rows) if (this.o.ownership.tokenFor(t.slot) !== null) this.insert(t);
        if (rows.length < 5000) break;
        const last = rows[rows.length - 1]!;
        cursor = { time: last.next_fire_time!, id: last.id };
      }
    } catch (e) {
      this.reportStoreError(e);
    }
  }

  /** Redelivers committed but unfinished runs (the outbox) of the given slots, same fire id. */
  private async recover(slots: number[], upTo?: number): Promise<void> {
    const filter = slots.length === this.o.ownership.slotCount ? null : slots;
    let after: DueKey | null = null;
    let count = 0;
    try {
      for (;;) {
        const rows = await this.o.store.unfinishedRuns({ slots: filter, after, limit: 1000, ...(upTo === undefined ? {} : { upTo }) });
        for (const { run, task } of rows) {
          if (this.inflightRuns.has(run.run_id) || this.awaiting.has(run.run_id) || this.heldByRun.has(run.run_id) || this.o.ownership.tokenFor(run.slot) === null) continue;
          if (this.recorder.finishedHere(run.run_id)) continue; // delivered here, its outcome not written yet
          const token = this.o.ownership.tokenFor(run.slot)!;
          if (run.status === 'RUNNING' && run.deadline !== null) {
            // An async run awaiting its report: not redelivered; its deadline is enforced here now.
            this.acquireInflight(task.id, run.run_id);
            this.awaitReport({ task, run_id: run.run_id, scheduled: run.scheduled_time, first_attempt: run.attempts, token, request: run.request }, run.deadline, run.attempts);
            continue;
          }
          count++;
          // Counts on from every attempt that may have reached the receiver (src/scheduler/attempts.ts).
          const d: Dispatch = { task, run_id: run.run_id, scheduled: run.scheduled_time, first_attempt: redeliveryAttempt(run, task, this.o.clock.now()), token, request: run.request };
          // Committed ahead before a restart: still goes out at its time, not before.
          if ((task as WithHeld<Task>)[HELD]?.run_id === run.run_id && run.attempts === 0) {
            // Committed ahead and not claimed yet (by the node that committed it): still undoable,
            // so claimed at its time (at once if that passed) before it goes out.
            this.hold({ tick: run.scheduled_time, id: run.run_id, d, undo: null, claim: true });
          } else if (run.scheduled_time > this.o.clock.now() && run.attempts === 0) this.hold({ tick: run.scheduled_time, id: run.run_id, d, undo: null, claim: false });
          else this.dispatch(d, run);
        }
        if (rows.length < 1000) break;
        const last = rows[rows.length - 1]!.run;
        after = { time: last.scheduled_time, id: last.run_id };
      }
    } catch (e) {
      this.reportStoreError(e);
    }
    if (count > 0) this.o.log.info({ count }, 'redelivering unfinished runs from the outbox');
  }

  // ---- the timer ----

  private peekLive(): Entry | undefined {
    for (;;) {
      const top = this.heap.peek();
      if (!top) return undefined;
      if (this.entries.get(top.id) === top) return top;
      this.heap.pop(); // stale (removed or replaced)
    }
  }

  private armTimer(): void {
    if (this.stopped) return;
    if (this.firing) {
      this.wakeAgain = true;
      return;
    }
    const top = this.peekLive();
    if (!top) {
      this.timer?.cancel();
      this.timer = null;
      this.timerAt = Infinity;
      return;
    }
    const now = this.o.clock.now();
    const at = Math.max(top.at, this.storeBackoffUntil, this.lastCommitAt + this.coalesceMs());
    const delay = Math.min(Math.max(0, at - now), this.o.maxSleepMs);
    const wakeAt = now + delay;
    if (this.timer && this.timerAt <= wakeAt) return; // an earlier (or equal) wake is already set
    this.timer?.cancel();
    this.timerAt = wakeAt;
    this.timer = this.o.clock.setTimer(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.onTimer();
    }, delay);
  }

  private readonly committingIds = new Set<string>();

  private onTimer(): void {
    if (this.stopped || this.firing) return;
    this.firing = this.fireDue().finally(() => {
      this.firing = null;
      const again = this.wakeAgain;
      this.wakeAgain = false;
      if (again) this.armTimer();
      this.armTimer();
    });
  }

  /** Fires per commit: batchSize, or batchPerSlot per owned slot when that is more. */
  private batchLimit(): number {
    const per = this.o.batchPerSlot ?? 0;
    return per > 0 ? Math.max(this.o.batchSize, per * this.o.ownership.ownedSlots().length) : this.o.batchSize;
  }

  /** Commits every due entry, batch by batch. Each wake re-reads the clock (early and late wakes). */
  private async fireDue(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const now = this.o.clock.now();
      if (now < this.storeBackoffUntil) return;
      if (now < this.lastCommitAt + this.coalesceMs()) return; // armTimer wakes us then
      const limit = this.batchLimit();
      const batch: Entry[] = [];
      while (batch.length < limit) {
        const top = this.peekLive();
        if (!top || top.at > now) break;
        this.heap.pop();
        this.entries.delete(top.id);
        batch.push(top);
      }
      if (batch.length === 0) return; // woke early: armTimer sets the next wake
      await this.commitBatch(batch, now);
      this.lastCommitAt = batch.length === limit ? -Infinity : this.o.clock.now();
      this.lastBatchSize = batch.length;
      // Let I/O (deliveries, API requests) run between batches of a large burst.
      if (batch.length === limit) await new Promise<void>((r) => setImmediate(r));
    }
  }

  private plan(e: Entry, now: number): FireRequest | null {
    const task = e.task;
    const token = this.o.ownership.tokenFor(task.slot);
    if (token === null) return null;
    let status: FireRequest['run']['status'] = 'PENDING';
    let error: string | null = null;
    let next: number | null = null;
    if (task.type === PERIODIC) {
      const late = now - e.tick;
      if (late > this.o.misfireThresholdMs) {
        next = nextFire(task, now);
        if (task.misfire === 'skip') {
          status = 'MISSED';
          error = `missed by ${late} ms (misfire policy skip)`;
        }
      } else {
        next = nextFire(task, e.tick);
      }
      if (status === 'PENDING' && task.overlap === 'skip' && (this.inflightByTask.get(task.id) ?? 0) > 0) {
        status = 'SKIPPED';
        error = 'previous run still in flight (overlap policy skip)';
      }
    }
    return {
      slot: task.slot,
      token,
      task_id: task.id,
      expected: e.tick,
      next,
      now,
      run: { run_id: fireId(task.id, e.tick), node: this.o.nodeId, status, error },
      ahead: this.claims && status === 'PENDING' && e.tick > now,
      retry: e.uncertain === e.tick,
    };
  }

  private async commitBatch(batch: Entry[], now: number): Promise<void> {
    const reqs: FireRequest[] = [];
    const planned: Entry[] = [];
    for (const e of batch) {
      let r: FireRequest | null;
      try {
        r = this.plan(e, now);
      } catch (err) {
        this.o.log.error({ err, task_id: e.id }, 'cannot compute next fire; task skipped');
        continue;
      }
      if (!r) continue;
      reqs.push(r);
      planned.push(e);
      this.committingIds.add(e.id);
    }
    let results: FireResult[];
    try {
      results = await this.o.store.commitFires(reqs);
    } catch (err) {
      // Nothing known committed: put the entries back and retry after a pause. The commit may
      // still stand in the store (its reply was lost, or the replicas did not confirm it in time):
      // the retry says so, and the store then answers 'committed' for it instead of 'conflict',
      // so the fire goes out once the store answers again, not after an outbox re-read.
      for (const e of planned) {
        e.uncertain = e.tick;
        this.committingIds.delete(e.id);
        if (!this.entries.has(e.id)) {
          this.entries.set(e.id, e);
          this.heap.push(e);
        }
      }
      this.storeBackoffUntil = this.o.clock.now() + 1000;
      this.reportStoreError(err);
      return;
    }
    this.storeBackoffUntil = 0;
    const conflicts: string[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i]!;
      const e = planned[i]!;
      this.committingIds.delete(e.id);
      const res = results[i];
      if (res === 'fenced') {
        this.o.log.warn({ slot: r.slot, task_id: r.task_id }, 'fencing token refused: slot lost, not firing');
        this.emit('fenced', r.slot);
        this.o.ownership.reportFenced(r.slot);
        continue;
      }
      if (res === 'conflict') {
        conflicts.push(r.task_id);
        continue;
      }
      const counted = r.run.status === 'PENDING';
      // The snapshot is updated in place and its entry reused: a task firing every second would
      // otherwise leave two objects a second for the old generation of the heap to collect.
      const task = e.task;
      const lastBefore = task.last_fire_time;
      task.next_fire_time = r.next;
      if (r.next === null) task.state = 'completed';
      if (counted) task.run_count++;
      task.last_fire_time = r.expected;
      if (r.next !== null && !this.entries.has(task.id) && (keyLE(r.next, task.id, this.horizon) || r.next <= this.scanTarget)) {
        // The next tick is committed no earlier than halfway between this one and it: one held
        // fire per task, and a task firing every second does not commit its next tick in the
        // same moment its current one goes out.
        e.tick = r.next;
        e.at = Math.max(this.keyOf(task, r.next), r.expected + Math.floor((r.next - r.expected) / 2));
        this.entries.set(task.id, e);
        this.heap.push(e);
      }
      this.emit('fired', { task_id: r.task_id, run_id: r.run.run_id, scheduled_time: r.expected, committed_at: now, status: r.run.status });
      if (!counted) continue;
      // A retried commit whose fire is on its way here already (an outbox re-read found it in the
      // meantime): not sent twice.
      if (r.retry === true && (this.inflightRuns.has(r.run.run_id) || this.heldByRun.has(r.run.run_id) || this.claiming.has(r.run.run_id))) continue;
      // The same fire held here from an earlier commit: that commit was undone (a run is committed
      // again only after its undo), so the earlier one must not go out as well.
      const earlier = this.heldByRun.get(r.run.run_id) ?? this.claiming.get(r.run.run_id);
      if (earlier) {
        earlier.superseded = true;
        this.unhold(earlier);
      }
      const d: Dispatch = { task, run_id: r.run.run_id, scheduled: r.expected, first_attempt: 1, token: r.token };
      if (r.expected > now) this.hold({ tick: r.expected, id: r.run.run_id, d, undo: this.claims ? null : { next: r.next, last_fire_time: lastBefore }, claim: r.ahead === true });
      else {
        this.emit('released', { task_id: r.task_id, run_id: r.run.run_id, scheduled_time: r.expected, released_at: now });
        this.dispatch(d, null);
      }
    }
    if (conflicts.length > 0) await this.reloadConflicts(conflicts);
  }

  /** The stored task moved under us (updated, paused, deleted, or fired elsewhere): re-read it. */
  private async reloadConflicts(ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        const t = await this.o.store.get(id);
        if (t) this.taskChanged(t);
        else this.taskRemoved(id);
      } catch (e) {
        this.reportStoreError(e);
      }
    }
  }

  private reportStoreError(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    if (!(err instanceof StoreUnavailableError)) this.o.log.error({ err }, 'store error in scheduler');
    else this.o.log.warn({ err: err.message }, 'store unavailable');
    this.emit('storeError', err);
  }

  // ---- delivery ----

  // ---- async completion ----

  /** Arms the report deadline of an async run (timers never sleep longer than maxSleepMs). */
  private awaitReport(d: Dispatch, deadline: number, attempts: number): void {
    const prev = this.awaiting.get(d.run_id);
    prev?.timer?.cancel();
    const w = { d, deadline, attempts, timer: null as TimerHandle | null };
    this.awaiting.set(d.run_id, w);
    const arm = (): void => {
      if (this.awaiting.get(d.run_id) !== w) return;
      const wait = deadline - this.o.clock.now();
      if (wait <= 0) {
        w.timer = null;
        void this.expire(d.run_id);
        return;
      }
      w.timer = this.o.clock.setTimer(arm, Math.min(wait, this.o.maxSleepMs));
    };
    arm();
  }

  /**
   * A report for `runId` arrived. If this node is still waiting for that run's callback answer (the
   * worker reported before its 202 reached the scheduler), wait for the answer (at most
   * `maxWaitMs`) and write it first, so the run records the callback's HTTP status and attempt
   * before the report closes it.
   */
  async beforeReport(runId: string, maxWaitMs = 1000): Promise<void> {
    if (this.inflightRuns.has(runId) && !this.awaiting.has(runId) && !this.stopped) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, maxWaitMs);
        const waiters = this.answerWaiters.get(runId) ?? [];
        waiters.push(done);
        this.answerWaiters.set(runId, waiters);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    if (this.recorder.size > 0) await this.recorder.flush();
  }

  private readonly answerWaiters = new Map<string, (() => void)[]>();

  private answered(runId: string): void {
    const w = this.answerWaiters.get(runId);
    if (!w) return;
    this.answerWaiters.delete(runId);
    for (const f of w) f();
  }

  /** Async runs awaiting a report on this node. */
  awaitingCount(): number {
    return this.awaiting.size;
  }

  /** The deadline passed without a report: retry (same run id, next attempt) or close as FAIL 'timeout'. */
  private async expire(runId: string): Promise<void> {
    const w = this.awaiting.get(runId);
    if (!w || this.stopped) return;
    const { d, attempts } = w;
    if (!this.o.ownership.holds(d.task.slot, d.token)) {
      // The lease lapsed (a pause) or moved: the slot's new owner enforces the deadline.
      w.timer?.cancel();
      this.awaiting.delete(runId);
      this.releaseInflightOnly(d.task.id, runId);
      this.o.log.info({ task_id: d.task.id, fire_id: runId, slot: d.task.slot }, 'async deadline not enforced here: the lease lapsed; left to the slot owner');
      void Promise.resolve(this.o.store.givenBack?.([runId]))
        .catch(() => undefined)
        .then(() => this.o.onRunQueued?.(runId, d.task.slot));
      return;
    }
    const policy = d.task.retry ?? this.o.defaultRetry;
    try {
      const current = await this.o.store.getRun(runId);
      if (!current || (current.status !== 'PENDING' && current.status !== 'RUNNING')) {
        // Reported meanwhile (perhaps through another node): just let go of it here.
        this.releaseReported(runId);
        return;
      }
      if (attempts < policy.max_attempts) {
        this.awaiting.delete(runId);
        this.recorder.push({ run_id: runId, task_id: d.task.id, status: 'RUNNING', attempts, error: `timeout: no report within the deadline (attempt ${attempts})`, deadline: null });
        await this.recorder.flush();
        this.releaseInflightOnly(d.task.id, runId);
        this.o.log.warn({ task_id: d.task.id, fire_id: runId, attempt: attempts }, 'async run not reported in time; retrying');
        void this.runDelivery({ ...d, first_attempt: attempts + 1, job: undefined, token: this.o.ownership.tokenFor(d.task.slot) ?? d.token });
        return;
      }
      await this.recorder.flush();
      const res = await this.o.store.reportRun({ run_id: runId, status: 'FAIL', message: null, output: null, now: this.o.clock.now(), expire: true });
      if (res.result === 'closed' && res.run) {
        this.o.log.warn({ task_id: d.task.id, fire_id: runId }, 'async run not reported in time: FAIL (timeout)');
        this.reported(res.run, d.task, d.token);
      } else if (res.result !== 'not_open') {
        this.releaseReported(runId);
      } else {
        // Still open with a later deadline (re-armed elsewhere): look again then.
        this.awaitReport(d, res.run?.deadline ?? this.o.clock.now() + 1000, attempts);
      }
    } catch (e) {
      this.reportStoreError(e);
      // Try again shortly: the deadline must still be enforced.
      this.awaitReport(d, this.o.clock.now() + 1000, attempts);
    }
  }

  private releaseInflightOnly(taskId: string, runId: string): void {
    this.inflightRuns.delete(runId);
    const n = (this.inflightByTask.get(taskId) ?? 1) - 1;
    if (n <= 0) this.inflightByTask.delete(taskId);
    else this.inflightByTask.set(taskId, n);
  }

  /** A report closed a run that this node may be waiting on: stop its deadline, end its in-flight state. */
  releaseReported(runId: string): void {
    const w = this.awaiting.get(runId);
    if (!w) {
      // Reported before this node saw the callback's answer: runDelivery must neither start a
      // deadline for it nor record or act on a second outcome.
      if (this.inflightRuns.has(runId)) this.closedByReport.add(runId);
      return;
    }
    w.timer?.cancel();
    this.awaiting.delete(runId);
    this.releaseInflight(w.d.task.id, runId);
  }

  /**
   * A run was closed by a report (or its deadline) on this node: children, alerts and stats act on
   * the reported outcome exactly as for a synchronous run. Called once per run, by the node that
   * closed it.
   */
  reported(run: Run, task: Task | null, token?: number): void {
    this.releaseReported(run.run_id);
    const end = run.end_time ?? this.o.clock.now();
    const result: DeliveryResult = {
      ok: run.status === 'SUCCESS',
      status: run.http_status,
      error: run.error,
      body: null,
      attempts: run.attempts,
      start_time: run.start_time ?? run.scheduled_time,
      end_time: end,
      duration_ms: end - (run.start_time ?? run.scheduled_time),
      aborted: false,
    };
    this.emit('finished', { task_id: run.task_id, run_id: run.run_id, scheduled_time: run.scheduled_time, result });
    if (!task) return;
    // Closed by the deadline here: the follow-ups need the lease still (see followUp). Closed by a
    // report (through any node): the store closed it once, and this node acts on it.
    const lease = token === undefined ? undefined : this.followUp(task, run.run_id, token);
    if (lease === null) return;
    if (result.ok) void this.triggerChildren(task, run.run_id, lease);
    else void this.onFinalFailure(task, run.run_id, run.scheduled_time, result, lease);
  }

  /** XXL-JOB child tasks: a successful run triggers each on_success task once (a manual run, through the service). */
  private async triggerChildren(parent: Task, parentRunId: string, token?: number): Promise<void> {
    const ops = this.o.taskOps;
    if (!ops) return;
    for (const childId of parent.on_success ?? []) {
      try {
        if (token !== undefined && !this.o.ownership.mayAct(parent.slot, token)) {
          this.o.log.info({ task_id: parent.id, child_id: childId, fire_id: parentRunId }, 'child task not triggered: the lease of the parent run lapsed; left to the slot owner');
          return;
        }
        const run = await ops.trigger(childId);
        if (!run) {
          this.o.log.warn({ task_id: parent.id, child_id: childId }, 'child task not found; skipped');
          continue;
        }
        this.emit('childTriggered', { parent_id: parent.id, child_id: childId, run_id: run.run_id });
      } catch (e) {
        this.o.log.warn({ err: e, task_id: parent.id, child_id: childId, fire_id: parentRunId }, 'could not trigger child task');
      }
    }
  }

  /** A run failed for good: alert, and pause the task after too many consecutive failures. */
  private async onFinalFailure(task: Task, runId: string, scheduled: number, result: DeliveryResult, token?: number): Promise<void> {
    const base: AlertEvent = {
      event: 'run_failed',
      task_id: task.id,
      task_name: task.name,
      run_id: runId,
      scheduled_time: scheduled,
      error: result.error,
      http_status: result.status,
      attempts: result.attempts,
      node: this.o.nodeId,
      time: this.o.clock.now(),
    };
    this.sendAlert(task, base, token);
    const limit = task.max_consecutive_failures ?? this.o.maxConsecutiveFailures ?? 0;
    const ops = this.o.taskOps;
    if (limit <= 0 || !ops) return;
    try {
      await this.recorder.flush(); // the run just finished counts
      if (token !== undefined && !this.o.ownership.mayAct(task.slot, token)) return; // the slot's owner decides
      const paused = await ops.pauseAfterFailures(task.id, limit);
      if (!paused) return;
      this.o.log.warn({ task_id: task.id, consecutive_failures: limit }, 'task paused after consecutive failures');
      this.sendAlert(task, { ...base, event: 'task_paused', consecutive_failures: limit, time: this.o.clock.now() }, token);
    } catch (e) {
      if (e instanceof StoreUnavailableError) this.reportStoreError(e);
      else this.o.log.warn({ err: e, task_id: task.id }, 'could not pause the task after consecutive failures');
    }
  }

  private sendAlert(task: Task, ev: AlertEvent, token?: number): void {
    if (token !== undefined && !this.o.ownership.mayAct(task.slot, token)) return;
    this.emit('alert', ev);
    const url = task.alert_url ?? (this.o.alertUrl ? this.o.alertUrl : null);
    if (!url) return;
    // While the lease is held, the alert goes out only under it (a pause right now drops it);
    // after a graceful hand-back it goes as it is.
    const lease = token !== undefined && this.o.ownership.holds(task.slot, token) ? { slot: task.slot, token } : {};
    void this.o.delivery
      .deliver({
        run_id: `alert:${ev.event}:${ev.run_id}`,
        task_id: task.id,
        scheduled_time: ev.scheduled_time,
        url,
        method: 'POST',
        headers: null,
        body: JSON.stringify(ev),
        timeout_ms: 10_000,
        retry: { max_attempts: 3, backoff_ms: 1000, max_backoff_ms: 10_000 },
        first_attempt: 1,
        ...lease,
      })
      .then((r) => {
        if (!r.ok && !r.aborted) this.o.log.warn({ task_id: task.id, url, error: r.error }, 'alert webhook failed');
      });
  }

  private dispatch(d: Dispatch, recovered: Run | null): void {
    const busy = (this.inflightByTask.get(d.task.id) ?? 0) > 0;
    // Recovered runs queue too: an unreported async run of the task (re-armed first, since the
    // outbox is read oldest first) keeps the later runs waiting, as before the restart.
    void recovered;
    if (busy && d.task.overlap === 'queue') {
      const q = this.queued.get(d.task.id) ?? [];
      q.push(d);
      this.queued.set(d.task.id, q);
      return;
    }
    void this.runDelivery(d);
  }

  /** Picks the target(s) of a fire according to the task's route. */
  private targets(task: Task): { mode: 'single' | 'failover' | 'broadcast'; urls: string[] } {
    const urls = task.callback.urls;
    if (!urls || urls.length <= 1) return SINGLE;
    switch (task.callback.route ?? 'failover') {
      case 'broadcast':
        return { mode: 'broadcast', urls };
      case 'round_robin': {
        const n = this.rr.get(task.id) ?? 0;
        this.rr.set(task.id, n + 1);
        if (this.rr.size > 100_000) this.rr.clear();
        return { mode: 'single', urls: [urls[n % urls.length]!] };
      }
      case 'random':
        return { mode: 'single', urls: [urls[Math.floor(Math.random() * urls.length)]!] };
      case 'consistent_hash':
        return { mode: 'single', urls: [rendezvous(task.id, urls) ?? urls[0]!] };
      default:
        return { mode: 'failover', urls };
    }
  }

  private acquireInflight(taskId: string, runId: string): void {
    this.inflightByTask.set(taskId, (this.inflightByTask.get(taskId) ?? 0) + 1);
    this.inflightRuns.add(runId);
  }

  /** Ends a run's in-flight state on this node and starts the next queued fire of its task. */
  private releaseInflight(taskId: string, runId: string): void {
    this.inflightRuns.delete(runId);
    const n = (this.inflightByTask.get(taskId) ?? 1) - 1;
    if (n <= 0) this.inflightByTask.delete(taskId);
    else this.inflightByTask.set(taskId, n);
    const q = this.queued.get(taskId);
    if (q && q.length > 0 && !this.stopped) {
      const next = q.shift()!;
      if (q.length === 0) this.queued.delete(taskId);
      void this.runDelivery(next);
    }
  }

  private jobOf(d: Dispatch): DeliveryJob {
    const { task } = d;
    return {
      run_id: d.run_id,
      task_id: task.id,
      scheduled_time: d.scheduled,
      url: task.callback.url,
      method: task.callback.method,
      headers: withRunHeaders(task.callback.headers, d.request?.headers ?? null),
      body: d.request?.body ?? task.callback.body_text ?? JSON.stringify(task.callback.body),
      timeout_ms: task.timeout_ms ?? this.o.defaultTimeoutMs,
      retry: task.retry ?? this.o.defaultRetry,
      first_attempt: Math.max(1, d.first_attempt),
      extra_headers: { 'x-xcron-run-id': d.run_id, 'x-xcron-report-token': reportToken(this.reportSecret, d.run_id) },
      slot: task.slot,
      token: d.token,
    };
  }

  /**
   * The follow-ups of a run's outcome (children, alert, auto-pause) are this node's only while it
   * still holds the lease the run went out under, handed it back on purpose, or owns the slot
   * again: the lease token they go on under, or null. When the lease lapsed (a pause) and another node owns the slot, they are left out here:
   * that node read the outbox when it took the slot over, while this one was paused, so it
   * redelivers the run and acts on the outcome of its own delivery.
   */
  private followUp(task: Task, runId: string, token: number): number | null {
    if (this.o.ownership.mayAct(task.slot, token)) return token;
    // It owns the slot again under a new lease: no other node redelivers what it recorded.
    const now = this.o.ownership.tokenFor(task.slot);
    if (now !== null) return now;
    if ((task.on_success?.length ?? 0) > 0 || task.alert_url || this.o.alertUrl || (task.max_consecutive_failures ?? this.o.maxConsecutiveFailures ?? 0) > 0) {
      this.o.log.info({ task_id: task.id, fire_id: runId, slot: task.slot }, 'follow-ups of a run not started here: the lease lapsed; left to the slot owner');
    }
    return null;
  }

  /**
   * Records that attempt `n` of a run may reach the receiver, before it is sent (a retry, or the
   * first attempt of a redelivery): a redelivery after a crash then counts on from it. Waits for
   * the store (retrying each second) while this node still holds the run's lease; false when the
   * lease lapsed or the scheduler stopped (the attempt is not sent).
   */
  private async recordAttempt(d: Dispatch, n: number, start: number): Promise<boolean> {
    for (;;) {
      if (this.stopped || !this.o.ownership.holds(d.task.slot, d.token)) return false;
      if (await this.recorder.writeNow({ run_id: d.run_id, task_id: d.task.id, status: 'RUNNING', attempts: n, node: this.o.nodeId, start_time: start })) return true;
      await new Promise<void>((r) => setTimeout(r, 1000));
    }
  }

  /**
   * A fire was not sent because its lease lapsed before the request was written (this node was
   * paused, or lost the slot): it stays in the outbox, no longer in flight here, and the slot's
   * owner is told to deliver it (this node, if it owns the slot again under a new lease).
   */
  private leftToOwner(d: Dispatch, attempts: number): void {
    const slot = d.task.slot;
    this.o.log.info({ task_id: d.task.id, fire_id: d.run_id, slot, attempts }, 'fire not sent: the lease lapsed before the request was written; left to the slot owner');
    void (async () => {
      try {
        // The attempts sent before are recorded first: the owner counts on from them.
        await this.recorder.flush();
        await this.o.store.givenBack?.([d.run_id]);
      } catch (err) {
        this.o.log.warn({ err: err instanceof Error ? err.message : String(err), fire_id: d.run_id }, 'could not mark a run given back; its slot owner delivers it once this node leaves the cluster');
      }
      if (this.stopped) return;
      if (this.o.onRunQueued) this.o.onRunQueued(d.run_id, slot);
      else if (this.o.ownership.tokenFor(slot) !== null) await this.deliverRun(d.run_id);
    })();
  }

  private async runDelivery(d: Dispatch): Promise<void> {
    const { task } = d;
    this.acquireInflight(task.id, d.run_id);
    let awaitingReport = false;
    const start = this.o.clock.now();
    const base = d.job ?? this.jobOf(d);
    const onAttempt = (n: number): void =>
      this.recorder.push({ run_id: d.run_id, task_id: task.id, status: 'RUNNING', attempts: n, node: this.o.nodeId, start_time: start }, task.completion === 'async');
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
      const route = this.targets(task);
      let result: DeliveryResult;
      let shards: ShardResult[] | null = null;
      if (route.mode === 'broadcast') {
        const total = route.urls.length;
        const results = await Promise.all(
          route.urls.map((url, index) =>
            this.o.delivery.deliver(
              { ...base, url, extra_headers: { ...base.extra_headers, 'x-xcron-shard-index': String(index), 'x-xcron-shard-total': String(total) } },
              index === 0 ? { onAttempt, beforeAttempt } : { beforeAttempt },
            ),
          ),
        );
        shards = results.map((r, index) => ({ index, url: route.urls[index]!, ok: r.ok, attempts: r.attempts, http_status: r.status, error: r.error }));
        const failed = shards.filter((x) => !x.ok);
        const first = results[0]!;
        result = {
          ...first,
          ok: failed.length === 0,
          aborted: results.some((r) => r.aborted),
          attempts: Math.max(...results.map((r) => r.attempts)),
          end_time: Math.max(...results.map((r) => r.end_time)),
          error: failed.length === 0 ? null : `${failed.length} of ${total} shards failed: ${failed.map((x) => `#${x.index} ${x.error ?? ''}`).join('; ')}`.slice(0, 2000),
          status: failed.length === 0 ? first.status : (failed[0]!.http_status ?? null),
        };
      } else if (route === SINGLE) {
        result = await this.o.delivery.deliver(base, { onAttempt, beforeAttempt }); // the job's own url
      } else {
        result = await this.o.delivery.deliver({ ...base, url: route.urls[0]!, failover_urls: route.mode === 'failover' ? route.urls : undefined }, { onAttempt, beforeAttempt });
      }
      if (result.lapsed === true) {
        this.leftToOwner(d, result.attempts);
      } else if (this.closedByReport.delete(d.run_id)) {
        // The worker's report already closed this run (and children/alerts/stats acted on it).
      } else if (!result.aborted && result.ok && (task.completion === 'async' || result.status === 202)) {
        // Async completion: the run stays RUNNING until the worker reports (or the deadline).
        const deadline = this.o.clock.now() + (task.async_timeout_ms ?? this.o.defaultAsyncTimeoutMs ?? 3_600_000);
        this.recorder.push({
          run_id: d.run_id,
          task_id: task.id,
          status: 'RUNNING',
          attempts: result.attempts,
          node: this.o.nodeId,
          start_time: start,
          http_status: result.status,
          deadline,
        }, true);
        awaitingReport = true;
        this.awaitReport(d, deadline, result.attempts);
      } else if (!result.aborted) {
        this.recorder.push({
          run_id: d.run_id,
          task_id: task.id,
          status: result.ok ? 'SUCCESS' : 'FAIL',
          attempts: result.attempts,
          node: this.o.nodeId,
          start_time: start,
          end_time: result.end_time,
          http_status: result.status,
          error: result.error,
          duration_ms: result.end_time - start,
          response_body: result.body,
          shards,
        });
        this.emit('finished', { task_id: task.id, run_id: d.run_id, scheduled_time: d.scheduled, result });
        const lease = this.followUp(task, d.run_id, d.token);
        if (lease !== null) {
          if (result.ok) void this.triggerChildren(task, d.run_id, lease);
          else void this.onFinalFailure(task, d.run_id, d.scheduled, result, lease);
        }
      }
    } catch (err) {
      this.o.log.error({ err, task_id: task.id, fire_id: d.run_id }, 'delivery failed unexpectedly; run left for redelivery');
    } finally {
      this.answered(d.run_id);
      // An async run stays in flight (overlap skip/queue) until it is reported or times out.
      if (!awaitingReport) this.releaseInflight(task.id, d.run_id);
    }
  }
}
