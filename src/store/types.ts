/**
 * The TaskStore contract. Implementations: `sqlite` (standalone) and `redis` (cluster).
 * The same contract test suite (test/component/store-contract.ts) runs against each.
 */
import type { Run, RunRequest, RunStatus, ShardResult, Task } from '../task/index.js';
import type { ReportDay } from './report.js';
import type { ExecutorStore } from './executors.js';

export type { ReportDay } from './report.js';
export type { ExecutorInstance, ExecutorRegistration, ExecutorStore } from './executors.js';

/** Position in the (next_fire_time, task_id) order, used to page through due tasks. */
export interface DueKey {
  time: number;
  id: string;
}

export interface OutboxQuery {
  slots: readonly number[] | null;
  after: DueKey | null;
  limit: number;
  upTo?: number;
}

export interface DueQuery {
  /** Slots to read; null means every slot. */
  slots: readonly number[] | null;
  /** Exclusive lower bound in (next_fire_time, id) order; null means from the beginning. */
  after: DueKey | null;
  /** Inclusive upper bound on next_fire_time. */
  upTo: number;
  limit: number;
}

/** One fire to commit atomically (DESIGN.md rule 1). */
export interface FireRequest {
  slot: number;
  /** The caller's fencing token for the slot. */
  token: number;
  task_id: string;
  /** The tick being fired; must equal the stored next_fire_time (compare-and-set). */
  expected: number;
  /** The task's next tick after this one; null completes the task (one-shot). */
  next: number | null;
  /** When the fire is recorded (lateness starts here). */
  now: number;
  run: {
    run_id: string;
    node: string;
    /** PENDING: deliver it. SKIPPED / MISSED: recorded by a policy, not delivered, not counted. */
    status: Extract<RunStatus, 'PENDING' | 'SKIPPED' | 'MISSED'>;
    error: string | null;
  };
  /**
   * Committed ahead of its due time (the scheduler holds it until then). A store with heldFires
   * keeps such a fire undoable (heldFires.uncommitHeld) until it is claimed at its due time.
   */
  ahead?: boolean;
  /**
   * An earlier commitFires call with this same fire failed without an answer the caller could act
   * on (a lost reply, or a commit the replicas did not confirm in time: it may stand in the store).
   * If the store holds exactly this commit already (the same run id, node, status, tick and next
   * tick, and, in a shared store, the same fencing token), it answers 'committed' again instead of
   * 'conflict', so the fire goes out now instead of waiting for an outbox re-read. The caller must
   * not have acted on the earlier call.
   */
  retry?: boolean;
}

/** A fire committed ahead of its due time and not yet claimed (a store with heldFires). */
export interface HeldFire {
  run_id: string;
  tick: number;
  /** last_fire_time before that commit. */
  last_fire_time: number | null;
}

/**
 * The held-fire capability of a store shared by nodes: a fire committed ahead of its due time
 * (FireRequest.ahead) stays undoable from any node (the API node is not the fire's owner) until
 * its owner claims it shortly before its due time, and the owner delivers it only if claimed.
 */
export interface HeldFireStore {
  /**
   * Claims fires committed ahead, fenced like commitFires; the owner delivers only those answered
   * 'claimed'. A claim and an undo are atomic against each other, and a claim repeated after a
   * lost reply answers the same.
   */
  claimFires(reqs: readonly ClaimRequest[], node: string): Promise<ClaimResult[]>;
  /** Removes `node`'s claim from runs it gives back undelivered. */
  releaseClaims(runIds: readonly string[], node: string): Promise<void>;
  /**
   * Undoes the task's fire committed ahead if it is not claimed yet: the run is removed and the
   * task restored as before that commit. Returns true when undone.
   */
  uncommitHeld(taskId: string): Promise<boolean>;
  /** The task's fire committed ahead and not claimed yet, as this store read it (null: none). */
  heldOf(task: Task): HeldFire | null;
  /** The node that claimed the run, as this store read it (null: none). */
  claimedBy(run: Run): string | null;
}

/** A claim at the due time of a fire committed ahead (see HeldFireStore.claimFires). */
export interface ClaimRequest {
  slot: number;
  /** The caller's fencing token for the slot; null: the slot is not owned (answered 'fenced'). */
  token: number | null;
  task_id: string;
  run_id: string;
}

/** claimed: deliver it. undone: the fire was undone (task changed or deleted). fenced: slot lost. */
export type ClaimResult = 'claimed' | 'undone' | 'fenced';

/** committed: done. fenced: the token is stale (stop firing the slot). conflict: task moved or gone. */
export type FireResult = 'committed' | 'fenced' | 'conflict';

/** A change to a run record; fields left undefined are kept. */
export interface RunUpdate {
  run_id: string;
  task_id: string;
  status: Extract<RunStatus, 'RUNNING' | 'SUCCESS' | 'FAIL'>;
  attempts: number;
  node?: string | undefined;
  start_time?: number | undefined;
  end_time?: number | null | undefined;
  http_status?: number | null | undefined;
  error?: string | null | undefined;
  duration_ms?: number | null | undefined;
  response_body?: string | null | undefined;
  shards?: ShardResult[] | null | undefined;
  /** RUNNING only: an async run awaiting its report until this time; null clears it (a new attempt). */
  deadline?: number | null | undefined;
  /**
   * RUNNING only: true marks a run whose attempt failed with another to come; false clears the mark.
   * While marked, reportRun answers 'retrying' for a sync run (its next answer decides it). A
   * deadline set (an answer 202) or a final outcome clears it too. Kept by the stores several nodes
   * share (Redis), where a report may reach a node other than the one delivering the run; a store of
   * one process may ignore it (that process knows its own retries).
   */
  retrying?: boolean | undefined;
}

/** reportRun's request: closes a PENDING/RUNNING run with the worker's outcome. */
export interface ReportRequest {
  run_id: string;
  status: 'SUCCESS' | 'FAIL';
  message: string | null;
  /** JSON text. */
  output: string | null;
  now: number;
  /** Deadline expiry: close only if the run is still open and its deadline is at or before `now`. */
  expire?: boolean;
}

/**
 * closed: this call closed the run. same: it was already closed with this status (idempotent).
 * conflict: it was closed with another status (nothing changed). not_open: expire found it open
 * without a passed deadline. not_found: no such run.
 *
 * A report (not an expiry) closes only an open run that awaits one: its task's completion is
 * 'async', or the run has a deadline (its callback answered 202). Any other open run is a sync run,
 * decided by its callback's answers, and is refused in the same atomic step that would close it
 * (nothing changed): retrying when it is marked between two attempts (RunUpdate.retrying),
 * not_awaiting otherwise (not sent yet, or an attempt in flight whose answer is not recorded).
 */
export type ReportResult = { result: 'closed' | 'same' | 'conflict' | 'not_open' | 'retrying' | 'not_awaiting' | 'not_found'; run: Run | null };

export interface RunLogLine {
  seq: number;
  time: number;
  line: string;
}

export interface LogCaps {
  maxLines: number;
  maxBytes: number;
}

/** An unfinished run (the outbox) joined with its task, for redelivery. */
export interface PendingDelivery {
  run: Run;
  task: Task;
}

/** A fire committed ahead to undo (see TaskStore.uncommitFire). */
export interface UncommitRequest {
  task_id: string;
  run_id: string;
  /** The tick that was committed (the run's scheduled_time). */
  tick: number;
  /** The next_fire_time the commit wrote (null: the task completed). */
  next: number | null;
  /** last_fire_time before the commit, restored. */
  last_fire_time: number | null;
}

export interface CreateResult {
  task: Task;
  /** false when the idempotency key matched an existing task (which is returned instead). */
  created: boolean;
}

/** Fields updateTask / pauseTask / resumeTask may change. run_count and last_* are never touched. */
export type TaskChanges = Partial<Omit<Task, 'id' | 'slot' | 'type' | 'create_time' | 'run_count' | 'last_fire_time' | 'last_status' | 'idempotency_key'>> & {
  update_time: number;
};

/**
 * updateTask refused a change of `on_success`: following the new children leads back to the task
 * (`path`: the task, the chain of children, the task again), or the graph to search is larger than
 * the store checks (`too_large`).
 */
export interface GraphRefusal {
  refused: 'cycle' | 'too_large';
  path: string[];
}

/** The optimistic-concurrency guard of an update: the state the caller read. */
export interface TaskExpectation {
  state: Task['state'];
  next_fire_time: number | null;
}

export interface ListTasksQuery {
  state: Task['state'] | null;
  /** Only tasks whose name starts with this prefix. */
  namePrefix: string | null;
  /** Exclusive cursor: the last task_id of the previous page (tasks are ordered by id). */
  after: string | null;
  limit: number;
  /** Only tasks carrying this tag. */
  tag?: string | null;
  /** Only tasks whose last run ended with this status. */
  lastStatus?: string | null;
}

/** Runs across tasks (GET /xcron/runs), newest first ((scheduled_time, run_id) descending). */
export interface RunsQuery {
  status: RunStatus | null;
  /** scheduled_time at or after (ms). */
  from: number | null;
  /** scheduled_time at or before (ms). */
  to: number | null;
  task_id: string | null;
  /** Only runs of tasks whose name starts with this prefix. */
  namePrefix: string | null;
  /** true: only runs retried already (retried_by set); false: only runs not retried. */
  replayed: boolean | null;
  /** Exclusive cursor from the previous page. */
  before: DueKey | null;
  limit: number;
}

/** A retry of a finished FAIL run (retryRun): a new PENDING run `run_id` replaying `of`. */
export interface RetryRequest {
  /** The run retried. */
  of: string;
  /** The new run's id (retryRunId(of)). */
  run_id: string;
  task_id: string;
  slot: number;
  scheduled_time: number;
  node: string;
  now: number;
}

/**
 * committed: the retry run is recorded (PENDING, with the original's one-off request), the
 * original carries retried_by. not_found: no such run. not_failed: the run is not FAIL. retried:
 * it was retried already (run.retried_by). task_gone: its task was deleted.
 */
export interface RetryResult {
  result: 'committed' | 'not_found' | 'not_failed' | 'retried' | 'task_gone';
  /** The original run, as it is after the call. */
  run: Run | null;
}

export interface ListRunsQuery {
  task_id: string;
  /** Exclusive cursor from the previous page (newest first). */
  before: DueKey | null;
  limit: number;
}

export interface StoreStats {
  tasks: Record<Task['state'], number>;
  /** Runs by status (history retained in the store). */
  runs: Record<string, number>;
}

export interface TaskStore {
  readonly kind: 'sqlite' | 'redis';
  /** Creates the task durably, or returns the task already holding its idempotency key. */
  create(task: Task): Promise<CreateResult>;
  /**
   * Creates tasks, each on its own (batch create): per task, in order, its CreateResult or the
   * error that refused it, with nothing of that task stored. Optional: without it, callers create
   * the tasks one by one.
   */
  createMany?(tasks: readonly Task[]): Promise<(CreateResult | Error)[]>;
  get(id: string): Promise<Task | null>;
  /** Deletes the task and its runs. Returns the deleted task, or null when unknown. */
  delete(id: string): Promise<Task | null>;
  /** Active tasks due up to `upTo`, ordered by (next_fire_time, id). */
  dueTasks(q: DueQuery): Promise<Task[]>;
  /**
   * The keys of what dueTasks would return, without the tasks: the scheduler's safety rescan only
   * needs to know which are loaded already, and reads the few missing ones with get.
   */
  dueKeys(q: DueQuery): Promise<DueKey[]>;
  /** Commits each fire atomically; results in request order. Batches run in one transaction. */
  commitFires(reqs: readonly FireRequest[]): Promise<FireResult[]>;
  /**
   * Undoes a fire committed ahead of its due time whose delivery has not started: removes its run
   * (still PENDING, no attempt) and puts the task back at `tick` (active, run_count - 1,
   * last_fire_time restored), provided the task still shows that commit (last_fire_time = tick,
   * next_fire_time = next). Otherwise changes nothing and returns false. Optional: a scheduler on
   * a store without it commits every fire at its due time.
   */
  uncommitFire?(req: UncommitRequest): Promise<boolean>;
  /** Optional: fires committed ahead are undone and claimed in the store itself (a store shared by nodes). */
  readonly heldFires?: HeldFireStore;
  /** Optional: the executor registry (src/store/executors.ts). Both built-in stores have it. */
  readonly executors?: ExecutorStore;
  /**
   * Optional (a node's view of a shared store): runs this node gave back without delivering them
   * (their slot was lost), so that it redelivers them from the outbox if it owns the slot again.
   */
  givenBack?(runIds: readonly string[]): void | Promise<void>;
  /** Applies run updates (RUNNING, attempts, final outcome). Final outcomes set the task's last_status. */
  updateRuns(updates: readonly RunUpdate[]): Promise<void>;
  /**
   * Runs still PENDING or RUNNING (the outbox) in the given slots (null: all), ordered by
   * (scheduled_time, run_id), after the exclusive key `after`, scheduled at or before `upTo`
   * (default: no bound).
   */
  unfinishedRuns(q: OutboxQuery): Promise<PendingDelivery[]>;
  getRun(runId: string): Promise<Run | null>;
  /** A task's runs, newest first. */
  listRuns(taskId: string, limit: number): Promise<Run[]>;
  /** A task's runs, newest first ((scheduled_time, run_id) descending), after a cursor. */
  pageRuns(q: ListRunsQuery): Promise<Run[]>;
  /**
   * Changes a task if it is still as the caller read it (state and next_fire_time), so an update
   * never overwrites a fire committed in between. Returns the new task, 'conflict', or null (gone).
   *
   * The child graph: when `changes.on_success` is given (an array or null), the change is refused
   * (GraphRefusal) when the new children, followed through every task's on_success, lead back to
   * `id`. The check and the write are one atomic step against every other graph write, from any
   * node: two concurrent updates that would close a cycle between them cannot both succeed.
   */
  updateTask(id: string, changes: TaskChanges, expect: TaskExpectation): Promise<Task | 'conflict' | null | GraphRefusal>;
  /**
   * Records a manual fire (triggerTask): a PENDING run with its own run_id, run_count + 1, the
   * schedule untouched. A manual fire is an explicit request, not a tick, so it is not fenced (any
   * node may record it; the slot owner delivers it from the outbox). Returns 'committed', or
   * 'conflict' when the task is gone or the run_id is taken (pick another).
   */
  commitTrigger(req: { slot: number; task_id: string; run_id: string; scheduled_time: number; node: string; now: number; request?: RunRequest | null }): Promise<FireResult>;
  /** Records a retry of a finished FAIL run and marks the original, atomically (see RetryResult). */
  commitRetry(req: RetryRequest): Promise<RetryResult>;
  /** Runs across tasks, newest first, filtered (RunsQuery). */
  queryRuns(q: RunsQuery): Promise<Run[]>;
  /** The daily report's tallies of days `fromDay` to `toDay` (days since the epoch, UTC), days with any. */
  reportDays(fromDay: number, toDay: number): Promise<ReportDay[]>;
  /** Tasks ordered by id, filtered by state, name prefix, tag and last status. */
  listTasks(q: ListTasksQuery): Promise<Task[]>;
  /** Counts for /xcron/stats. */
  stats(): Promise<StoreStats>;
  /**
   * Deletes finished runs older than `olderThan` and beyond the newest `maxPerTask` of each task
   * (never PENDING/RUNNING). Works in bounded batches and yields between them, so it never stalls
   * firing. Returns how many runs were deleted. `slots` (a store split by slot): only those
   * slots, e.g. a cluster node's own (default: all).
   */
  pruneRuns(olderThan: number, maxPerTask: number, slots?: readonly number[] | null): Promise<number>;
  /** Deletes completed tasks (and their runs) last changed before `olderThan`, in bounded batches. `slots` as for pruneRuns. */
  purgeCompleted(olderThan: number, slots?: readonly number[] | null): Promise<number>;
  /** Closes a run with a reported outcome, atomically (see ReportResult). Sets the task's last_status. */
  reportRun(req: ReportRequest): Promise<ReportResult>;
  /** Appends log lines to a run, up to the caps; returns how many were kept (null: unknown run). */
  appendRunLog(runId: string, lines: readonly string[], now: number, caps: LogCaps): Promise<{ accepted: number; dropped: number } | null>;
  /** Log lines of a run with seq > since, oldest first. */
  readRunLog(runId: string, since: number, limit: number): Promise<RunLogLine[]>;
  /** A cluster-wide random secret by name, created on first use (the same on every node). */
  sharedSecret(name: string): Promise<string>;
  /** Cheap reachability check for /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
