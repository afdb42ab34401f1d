/**
 * The scheduler's public types (its options, its collaborators and its events), and the records
 * its modules hand each other: a task loaded in the window (Entry) and a fire on its way to
 * delivery (Dispatch).
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock/index.js';
import type { Ownership } from '../cluster/index.js';
import type { DeliveryHooks, DeliveryJob, DeliveryResult } from '../delivery/index.js';
import type { TaskStore } from '../store/types.js';
import type { FlowBackend } from '../delivery/flow.js';
import type { FlowLimit, RetryPolicy, RunRequest, Task } from '../task/index.js';

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

/** Flow control: where limits are counted, and the limits named in the configuration (`[flow.<key>]`). */
export interface FlowOptions {
  backend: FlowBackend;
  limits: Readonly<Record<string, FlowLimit>>;
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
   * `uncommitFire` (pause, update and delete undo a held fire here), or with the `heldFires`
   * capability (a shared store: any node undoes it there, and the owner claims it at its due
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
  /** Seed of the jitter offsets (`jitter_ms`); the same on every node. Default ''. */
  jitterSeed?: string;
  /** Flow control (flow_key / flow on tasks): where limits are counted and the named limits. Absent: no limits. */
  flow?: FlowOptions;
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

/** A fire waiting on a flow limit was admitted after `waited_ms` (key: the flow key, `task` for a task's own limit). */
export interface FlowAdmittedEvent {
  key: string;
  task_id: string;
  run_id: string;
  waited_ms: number;
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
  flowAdmitted: [FlowAdmittedEvent];
  finished: [FinishedEvent];
  fenced: [slot: number];
  storeError: [Error];
  alert: [AlertEvent];
  childTriggered: [{ parent_id: string; child_id: string; run_id: string }];
}

/** A task loaded in the window: due to be committed at `at`. */
export interface Entry {
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

/** A fire on its way to delivery (committed, claimed, recovered from the outbox, or a retry). */
export interface Dispatch {
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
