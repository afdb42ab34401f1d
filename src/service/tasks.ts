/**
 * The task operations: create, update (with its optimistic retry), pause, resume, trigger, delete,
 * the child-graph check, fire-id allocation for manual runs, and the pause after consecutive
 * failures. The API routes, the scheduler's follow-ups and export/import all call these; none of
 * them writes a task itself. Nothing here knows about HTTP: failures are typed errors (XcronError
 * carries the public code) and the callers map them.
 */
import type { Clock } from '../clock/index.js';
import type { Notifier } from '../cluster/index.js';
import { Codes, XcronError } from '../errors.js';
import type { CreateResult, DueKey, GraphRefusal, TaskChanges, TaskStore } from '../store/types.js';
import { timeOrderedId } from './task-id.js';
import { ONE_SHOT, autoPause, fireId, manualPause, firstFire, manualFireTime, nextFire, slotOf, validateCreate, validateUpdate, type Run, type RunRequest, type Task, type ValidationLimits } from '../task/index.js';

export interface TaskServiceOptions {
  store: TaskStore;
  notifier: Notifier;
  clock: Clock;
  /** The cluster's slot count (a task's slot is derived from its id). */
  slots: number;
  limits: ValidationLimits;
  /** This node's id, recorded on manual runs. */
  nodeId: string;
  /** Task ids (default: time-ordered, see task-id.ts). */
  newId?: (now: number) => string;
}

/** Who pauses a task through the API, and the note they give (see PauseInfo). */
export interface PauseBy {
  note?: string | null;
  /** The API token's name; null or absent without tokens. */
  by?: string | null;
}

/** A manual run recorded in the outbox (triggerTask, a child task). */
export interface ManualRun {
  task_id: string;
  run_id: string;
  scheduled_time: number;
  slot: number;
}

/** Tries of an optimistic change before giving up (each conflict is a fire committed in between). */
const MAX_UPDATE_TRIES = 5;
/** Fire ids tried for one manual run (a taken id means another manual run in the same millisecond). */
const MAX_FIRE_ID_TRIES = 10;

export const taskNotFound = (id: string): XcronError => new XcronError(Codes.TASK_NOT_FOUND, 404, `task ${JSON.stringify(id)} not found`);

const isRefusal = (r: unknown): r is GraphRefusal => typeof r === 'object' && r !== null && 'refused' in r;

/** The next fire of an existing task from `now` (anchors of @every stay on the creation time). */
function rescheduleFrom(t: Task, now: number, graceMs: number): number {
  if (t.type === ONE_SHOT) return firstFire(t, now, graceMs);
  firstFire(t, now, graceMs); // validates the expression and the window, with precise errors
  const next = nextFire(t, now);
  if (next === null) throw new XcronError(Codes.INVALID_OPTION, 400, "invalid 'end_time': the schedule has no fire time left in its window");
  return next;
}

export class TaskService {
  private readonly newId: (now: number) => string;

  constructor(private readonly o: TaskServiceOptions) {
    this.newId = o.newId ?? timeOrderedId;
  }

  /** Validates a createTask body and stores the task. An idempotency key already used returns that task (created: false). */
  async create(body: unknown, bodyText: string | null = null): Promise<CreateResult> {
    const task = await this.build(body, bodyText, this.o.clock.now());
    const res = await this.o.store.create(task);
    if (res.created) this.o.notifier.taskChanged(res.task);
    return res;
  }

  /**
   * Batch create: each item validated and stored on its own, results in input order. An item that
   * fails gets its error in its place (nothing of it is stored) and does not stop the others. Items
   * repeating an idempotency key of an earlier item in the batch get that item's task (created:
   * false), or its error when it could not be stored.
   */
  async createMany(items: readonly { body: unknown; text: string | null }[]): Promise<(CreateResult | Error)[]> {
    const now = this.o.clock.now();
    const out: (CreateResult | Error | null)[] = new Array<null>(items.length).fill(null);
    const built: (Task | null)[] = await Promise.all(
      items.map((it, i) =>
        this.build(it.body, it.text, now).catch((e: unknown) => {
          out[i] = e instanceof Error ? e : new Error(String(e));
          return null;
        }),
      ),
    );
    const firstWithKey = new Map<string, number>();
    const repeats: [number, number][] = [];
    const stored: Task[] = [];
    const storedAt: number[] = [];
    built.forEach((t, i) => {
      if (t === null) return;
      const key = t.idempotency_key;
      const first = key === null ? undefined : firstWithKey.get(key);
      if (first !== undefined) {
        repeats.push([i, first]); // answered with the first item's result below
        return;
      }
      if (key !== null) firstWithKey.set(key, i);
      stored.push(t);
      storedAt.push(i);
    });
    const results = this.o.store.createMany
      ? await this.o.store.createMany(stored)
      : await Promise.all(stored.map((t) => this.o.store.create(t).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))));
    results.forEach((r, k) => {
      out[storedAt[k]!] = r;
      if (!(r instanceof Error) && r.created) this.o.notifier.taskChanged(r.task);
    });
    for (const [i, first] of repeats) {
      const r = out[first]!;
      out[i] = r instanceof Error ? r : { task: r.task, created: false };
    }
    return out as (CreateResult | Error)[];
  }

  /** A new task from a createTask body (validated; its children checked), not yet stored. */
  private async build(body: unknown, bodyText: string | null, now: number): Promise<Task> {
    const req = validateCreate(body, now, this.o.limits);
    if (bodyText !== null) req.spec.callback.body_text = bodyText;
    if (req.spec.on_success) await this.checkChildren(null, req.spec.on_success);
    const id = this.newId(now);
    return {
      ...req.spec,
      id,
      slot: slotOf(id, this.o.slots),
      state: req.paused ? 'paused' : 'active',
      create_time: now,
      update_time: now,
      next_fire_time: req.next_fire_time,
      last_fire_time: null,
      last_status: null,
      run_count: 0,
    };
  }

  /**
   * Applies an updateTask body (without task_id). A change of `on_success` is checked for cycles
   * by the store, atomically with the write, so two concurrent updates (also through two nodes)
   * cannot close a cycle between them.
   */
  async update(id: string, body: Record<string, unknown>, bodyText: string | null = null, by: PauseBy = {}): Promise<Task> {
    const graph = 'on_success' in body;
    if (Array.isArray(body.on_success)) await this.checkChildren(id, body.on_success);
    const r = await this.change(id, (cur, now) => {
      const req = validateUpdate(body, cur, this.o.limits);
      if (bodyText !== null && body.callback !== undefined) req.spec.callback.body_text = bodyText;
      let state = cur.state;
      if (req.paused === true && state === 'active') state = 'paused';
      if (req.paused === false && state === 'paused') state = 'active';
      let next = cur.next_fire_time;
      if (req.rescheduled || (state === 'active' && cur.state !== 'active')) {
        next = rescheduleFrom({ ...cur, ...req.spec }, now, this.o.limits.pastGraceMs);
      }
      // A finished one-shot given a new time becomes active again.
      if (cur.state === 'completed' && req.rescheduled) state = req.paused === true ? 'paused' : 'active';
      const ch: TaskChanges = { ...req.spec, state, next_fire_time: next, update_time: now };
      // Paused here: an operator's pause without a note; no longer paused: the reason goes.
      if (state === 'paused' && cur.state !== 'paused') ch.pause = manualPause(null, by.by ?? null, now);
      else if (state !== 'paused' && cur.pause) ch.pause = null;
      if (!graph) delete ch.on_success; // children untouched: no child-graph write
      return ch;
    });
    if (!r) throw taskNotFound(id);
    return r.task;
  }

  /**
   * Pauses an active task (a paused or completed one is returned as it is), recording who paused
   * it, when, and the operator's note (PauseInfo; cleared when it leaves the paused state).
   */
  async pause(id: string, by: PauseBy = {}): Promise<Task> {
    const r = await this.change(id, (cur, now) => (cur.state === 'active' ? { state: 'paused', pause: manualPause(by.note ?? null, by.by ?? null, now), update_time: now } : null));
    if (!r) throw taskNotFound(id);
    return r.task;
  }

  /**
   * Resumes a paused task. Periodic: the schedule continues from now (ticks while paused are not
   * fired). One-shot: keeps its time; if that passed while paused it fires at once.
   */
  async resume(id: string): Promise<Task> {
    const r = await this.change(id, (cur, now) => {
      if (cur.state !== 'paused') return null;
      if (cur.type === ONE_SHOT) return { state: 'active', next_fire_time: cur.next_fire_time, pause: null, update_time: now };
      const next = nextFire(cur, now);
      // The window (end_time) ended while paused: nothing is left to fire.
      if (next === null) return { state: 'completed', next_fire_time: null, pause: null, update_time: now };
      return { state: 'active', next_fire_time: next, pause: null, update_time: now };
    });
    if (!r) throw taskNotFound(id);
    return r.task;
  }

  /** Deletes a task and its runs. Returns the deleted task, or null when unknown. */
  async delete(id: string): Promise<Task | null> {
    await this.o.notifier.beforeChange?.(id);
    const deleted = await this.o.store.delete(id);
    if (deleted) this.o.notifier.taskRemoved(id, deleted.slot);
    return deleted;
  }

  /**
   * Fires a task once now, outside its schedule (triggerTask, a child task): records a PENDING run
   * in the outbox and gets it delivered by the slot's owner. Null when the task does not exist.
   * `request`: a body and/or headers this run sends instead of the task's (kept on the run record,
   * so retries and redelivery send them too).
   */
  async trigger(id: string, request: RunRequest | null = null): Promise<ManualRun | null> {
    const task = await this.o.store.get(id);
    if (!task) return null;
    const run = await this.allocateManualRun(task, request);
    if (run) this.o.notifier.runQueued(run.run_id, run.slot);
    return run;
  }

  /**
   * Pauses a task whose newest `limit` finished runs (SUCCESS or FAIL; runs in flight, SKIPPED
   * and MISSED do not count) all failed. Returns the paused task, or null when nothing was paused.
   */
  async pauseAfterFailures(id: string, limit: number): Promise<Task | null> {
    if (limit <= 0) return null;
    const finished: Run[] = [];
    let before: DueKey | null = null;
    const page = Math.max(limit, 50);
    for (let i = 0; i < 20 && finished.length < limit; i++) {
      const rows: Run[] = await this.o.store.pageRuns({ task_id: id, before, limit: page });
      for (const r of rows) if (r.status === 'SUCCESS' || r.status === 'FAIL') finished.push(r);
      if (rows.length < page) break;
      const last = rows[rows.length - 1]!;
      before = { time: last.scheduled_time, id: last.run_id };
    }
    const newest = finished.slice(0, limit);
    if (newest.length < limit || newest.some((r) => r.status !== 'FAIL')) return null;
    const r = await this.change(id, (cur, now) => (cur.state === 'active' ? { state: 'paused', pause: autoPause(limit, newest[0], now), update_time: now } : null));
    return r?.changed ? r.task : null;
  }

  /**
   * Import: stores an exported task under its own id, in the slot its id has here. A task whose id
   * (or idempotency key) the store already has is skipped.
   */
  async importTask(exported: Task): Promise<'imported' | 'skipped'> {
    const task: Task = { ...exported, slot: slotOf(exported.id, this.o.slots) };
    if (await this.o.store.get(task.id)) return 'skipped';
    const res = await this.o.store.create(task);
    return res.created ? 'imported' : 'skipped';
  }

  /**
   * Read, compute the change, write if the task is unchanged in between (state and next fire
   * time: a fire committed meanwhile moves them); retry on such a conflict. Null: the task does
   * not exist. `compute` returning null: nothing to change.
   */
  private async change(id: string, compute: (t: Task, now: number) => TaskChanges | null): Promise<{ task: Task; changed: boolean } | null> {
    for (let i = 0; i < MAX_UPDATE_TRIES; i++) {
      // Each try first undoes a fire committed ahead of its due time (it may be committed again
      // between a conflict and the retry).
      await this.o.notifier.beforeChange?.(id);
      const cur = await this.o.store.get(id);
      if (!cur) return null;
      const now = this.o.clock.now();
      const ch = compute(cur, now);
      if (ch === null) return { task: cur, changed: false };
      const res = await this.o.store.updateTask(id, ch, { state: cur.state, next_fire_time: cur.next_fire_time });
      if (res === null) return null;
      if (isRefusal(res)) {
        if (res.refused === 'too_large') throw new XcronError(Codes.INVALID_OPTION, 400, "invalid 'on_success': the child chain is too large to check");
        throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'on_success': it would form a cycle ${res.path.join(' -> ')}`);
      }
      if (res !== 'conflict') {
        this.o.notifier.taskChanged(res);
        return { task: res, changed: true };
      }
    }
    throw new XcronError(Codes.STORE_WRITE, 503, `task ${JSON.stringify(id)} kept changing during the update (it is firing); retry`);
  }

  /**
   * Child tasks must exist and differ from the task itself. (Whether they lead back to it is
   * checked by the store, atomically with the write.)
   */
  private async checkChildren(selfId: string | null, children: readonly unknown[]): Promise<void> {
    for (const c of children) {
      if (typeof c !== 'string') continue; // the validator reports the type
      if (c === selfId) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'on_success': a task cannot be its own child (${c})`);
      if (!(await this.o.store.get(c))) throw new XcronError(Codes.INVALID_OPTION, 400, `invalid 'on_success': child task ${JSON.stringify(c)} not found`);
    }
  }

  /**
   * A fire id for a manual run of `task`: a millisecond at or after now that is none of its ticks
   * (fire ids of ticks stay theirs) and no other manual run's. Null when the task is gone.
   */
  private async allocateManualRun(task: Task, request: RunRequest | null): Promise<ManualRun | null> {
    const now = this.o.clock.now();
    let at = now;
    for (let i = 0; i < MAX_FIRE_ID_TRIES; i++, at++) {
      at = manualFireTime(task, at);
      const run_id = fireId(task.id, at);
      const res = await this.o.store.commitTrigger({ slot: task.slot, task_id: task.id, run_id, scheduled_time: at, node: this.o.nodeId, now, request });
      if (res === 'committed') return { task_id: task.id, run_id, scheduled_time: at, slot: task.slot };
      if (!(await this.o.store.get(task.id))) return null;
    }
    throw new XcronError(Codes.STORE_WRITE, 503, 'could not allocate a fire id for the manual run; retry');
  }
}
