/**
 * RedisTaskStore: the cluster store. Every key of one slot shares the hash tag `{<prefix>:<slot>}`
 * (the key layout is in src/redis/keys.ts), and every atomic operation is one Lua script
 * (src/redis/lua/<name>-<key count>.lua) on one slot, so the same code runs on a single Redis and
 * on Redis Cluster. Operations over many slots group their batch by slot or merge per-slot reads
 * (redis-slots.ts); tasks and runs are hashes (redis-codec.ts); the connection's use (unavailable
 * errors, WAIT for replicas, closing) is in redis-conn.ts; idempotency keys in redis-idempotency.ts.
 * This file holds the tasks; the fire path is in redis-fires.ts, run records in redis-runs.ts, and
 * stats, reports and retention in redis-upkeep.ts.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../errors.js';
import type { RedisClient } from '../redis/connection.js';
import type { Run, Task } from '../task/index.js';
import { changeFields, claimMarks, cursorArgs, decodeRun, decodeTask, heldMarks, taskFields, timedPage } from './redis-codec.js';
import { StoreConnection, type StoreConnectionOptions } from './redis-conn.js';
import { RedisFires } from './redis-fires.js';
import { RedisChildGraph } from './redis-graph.js';
import { createInSlots } from './redis-batch.js';
import { claimIdempotencyKey, releaseIdempotencyKey } from './redis-idempotency.js';
import { RedisRuns } from './redis-runs.js';
import { redisExecutors } from './redis-executors.js';
import { mergeSlots, SlotMap, type SlotPage } from './redis-slots.js';
import { RedisUpkeep } from './redis-upkeep.js';
import type * as S from './types.js';

export interface RedisStoreOptions extends StoreConnectionOptions {
  slots: number;
  log: Logger;
}

export class RedisTaskStore implements S.TaskStore {
  readonly kind = 'redis' as const;
  readonly client: RedisClient;
  private readonly conn: StoreConnection;
  private readonly keys: StoreConnection['keys'];
  private readonly slots: SlotMap;
  private readonly log: Logger;
  private readonly fires: RedisFires;
  private readonly runs: RedisRuns;
  private readonly upkeep: RedisUpkeep;

  private readonly graph: RedisChildGraph;
  /** Fires committed ahead are undone from any node and claimed by their owner, in Redis. */
  readonly heldFires: S.HeldFireStore = {
    claimFires: (reqs, node) => this.claimFires(reqs, node),
    releaseClaims: (runIds, node) => this.releaseClaims(runIds, node),
    uncommitHeld: (taskId) => this.uncommitHeld(taskId),
    heldOf: (task) => heldMarks.get(task) ?? null,
    claimedBy: (run) => claimMarks.get(run) ?? null,
  };

  /** The executor registry (src/store/redis-executors.ts). */
  readonly executors: S.ExecutorStore;

  constructor(o: RedisStoreOptions) {
    this.conn = new StoreConnection(o);
    this.executors = redisExecutors(this.conn);
    this.client = o.client;
    this.keys = this.conn.keys;
    this.slots = new SlotMap(o.slots);
    this.fires = new RedisFires(this.conn, this.slots);
    this.runs = new RedisRuns(this.conn, this.slots);
    this.upkeep = new RedisUpkeep(this.conn, this.slots);
    this.log = o.log;
    const graphKey = this.keys.childGraph();
    this.graph = new RedisChildGraph({
      run: (name, args) => this.conn.runOn(name, graphKey, args),
      remove: (id) => this.client.hdel(graphKey, id),
      isBuilt: async () => (await this.client.hget(graphKey, '#built')) !== null,
      markBuilt: () => this.client.hset(graphKey, '#built', '1'),
      storedEdges: async () => {
        const out: [string, string[]][] = [];
        for (const slot of this.slots.all()) {
          let after = '';
          for (;;) {
            const r = (await this.run('graphEdges', slot, [after, 1000])) as string[];
            for (let i = 2; i + 1 < r.length; i += 2) out.push([r[i]!, JSON.parse(r[i + 1]!) as string[]]);
            if (Number(r[0]) === 1) break;
            after = r[1]!;
          }
        }
        return out;
      },
      log: o.log,
    });
  }

  private run(name: string, slot: number, args: readonly (string | number)[]): Promise<unknown> {
    return this.conn.run(name, slot, args);
  }
  private guard<T>(fn: () => Promise<T>): Promise<T> {
    return this.conn.guard(fn);
  }
  private replicated<T>(fn: () => Promise<T>): Promise<T> {
    return this.conn.replicated(fn);
  }

  create(task: Task): Promise<S.CreateResult> {
    return this.replicated(async () => {
      if (task.idempotency_key !== null) {
        const existing = await claimIdempotencyKey(this.conn, task.idempotency_key, task.id, (holder) => this.get(holder));
        if (existing) return { task: existing, created: false };
      }
      // A new task's children go into the child graph around the write (see RedisChildGraph).
      const children = task.on_success ?? [];
      const reserved = children.length > 0 ? await this.graph.reserve(task.id, children, false) : null;
      if (reserved && 'refused' in reserved) throw new Error('graphReserve refused a record-only reservation');
      let created = false;
      try {
        const res = await this.run('create', task.slot, [task.id, task.state, task.next_fire_time ?? '', ...taskFields(task), ...(reserved ? ['g_rev', '1'] : [])]);
        if (res !== 1) throw new Error(`task id ${task.id} already exists`);
        created = true;
      } catch (e) {
        if (task.idempotency_key !== null) {
          await releaseIdempotencyKey(this.conn, task.idempotency_key, task.id).catch(() => undefined);
        }
        throw e;
      } finally {
        if (reserved) await this.graph.settle(task.id, reserved.token, created ? 'new' : null, children);
      }
      return { task, created: true };
    });
  }

  /** Batch create (see redis-batch.ts): per task its result or its error. */
  createMany(tasks: readonly Task[]): Promise<(S.CreateResult | Error)[]> {
    return createInSlots(tasks, {
      create: (t) => this.create(t),
      createInSlot: (slot, items) => this.replicated(async () => (await this.run('createMany', slot, [items])) as number[]),
    });
  }

  get(id: string): Promise<Task | null> {
    return this.guard(async () => {
      const flat = await this.client.hgetall(this.keys.task(this.slots.ofTask(id), id));
      return Object.keys(flat).length === 0 ? null : decodeTask(Object.entries(flat).flat());
    });
  }

  delete(id: string): Promise<Task | null> {
    return this.replicated(async () => {
      const flat = (await this.run('delete', this.slots.ofTask(id), [id])) as string[];
      if (flat.length === 0) return null;
      const task = decodeTask(flat);
      if (task.on_success) await this.graph.drop(id);
      if (task.idempotency_key !== null) {
        await releaseIdempotencyKey(this.conn, task.idempotency_key, id).catch((err: unknown) =>
          this.log.warn({ err, task_id: id }, 'could not release the idempotency key of a deleted task'),
        );
      }
      return task;
    });
  }

  dueTasks(q: S.DueQuery): Promise<Task[]> {
    return this.merged<Task>(
      q,
      (t) => ({ time: t.next_fire_time!, id: t.id }),
      async (slot, after, n) => timedPage((await this.run('dueTasks', slot, [...cursorArgs(after), q.upTo, n])) as unknown[], decodeTask),
    );
  }

  dueKeys(q: S.DueQuery): Promise<S.DueKey[]> {
    return this.merged<S.DueKey>(q, (k) => k, async (slot, after, n) => {
      const r = (await this.run('dueKeys', slot, [...cursorArgs(after), q.upTo, n])) as (number | string)[];
      const items: S.DueKey[] = [];
      for (let i = 1; i < r.length; i += 2) items.push({ id: r[i] as string, time: Number(r[i + 1]) });
      return { exhausted: r[0] === 1, last: items.length > 0 ? items[items.length - 1]! : null, items };
    });
  }

  unfinishedRuns(q: S.OutboxQuery): Promise<S.PendingDelivery[]> {
    return this.merged<S.PendingDelivery>(
      q,
      (p) => ({ time: p.run.scheduled_time, id: p.run.run_id }),
      async (slot, after, n) =>
        timedPage((await this.run('unfinishedRuns', slot, [...cursorArgs(after), n, q.upTo ?? ''])) as unknown[], (x) => {
          const [run, task] = x as [unknown, unknown];
          return { run: decodeRun(run), task: decodeTask(task) };
        }),
    );
  }

  /** An ordered read over the query's slots (all by default): each slot's pages merged in (time, id) order. */
  private merged<T>(q: { slots: readonly number[] | null; after: S.DueKey | null; limit: number }, keyOf: (t: T) => S.DueKey, read: (slot: number, after: S.DueKey | null, n: number) => Promise<SlotPage<T>>): Promise<T[]> {
    return this.guard(() => mergeSlots<T>(q.slots ?? this.slots.all(), q.after, q.limit, keyOf, read));
  }

  updateTask(id: string, changes: S.TaskChanges, expect: S.TaskExpectation): Promise<Task | 'conflict' | null | S.GraphRefusal> {
    return this.replicated(async () => {
      const { set, del } = changeFields(changes);
      const write = (deadline: number | ''): Promise<unknown> => this.run('updateTask', this.slots.ofTask(id), [id, expect.state, expect.next_fire_time ?? '', deadline, set.length / 2, ...set, ...del]);
      let res: unknown;
      if (changes.on_success === undefined) {
        res = await write('');
      } else {
        // A change of the children: reserve, write, settle (RedisChildGraph).
        const children = changes.on_success ?? [];
        const reserved = await this.graph.reserve(id, children, true);
        if ('refused' in reserved) return reserved;
        let rev: number | null = null;
        try {
          res = await write(reserved.deadline);
          if (Array.isArray(res)) {
            for (let i = 0; i + 1 < res.length; i += 2) if (res[i] === 'g_rev') rev = Number(res[i + 1]);
          }
        } finally {
          await this.graph.settle(id, reserved.token, rev === null ? null : { rev }, children);
        }
      }
      if (res === 0) return null;
      if (res === 1) return 'conflict';
      return decodeTask(res);
    });
  }

  listTasks(q: S.ListTasksQuery): Promise<Task[]> {
    return this.guard(() =>
      mergeSlots<Task>(
        this.slots.all(),
        q.after === null ? null : { time: 0, id: q.after },
        q.limit,
        (t) => ({ time: 0, id: t.id }),
        async (slot, after, n) => {
          const r = (await this.run('listTasks', slot, [q.state ?? '', after ? after.id : '', n, q.namePrefix ?? '', q.tag ?? '', q.lastStatus ?? ''])) as unknown[];
          return {
            exhausted: r[0] === 1,
            last: r[1] === '' ? null : { time: 0, id: r[1] as string },
            items: r.slice(2).map(decodeTask),
          };
        },
      ),
    );
  }

  // ---- the fire path (redis-fires.ts) ----

  commitFires(reqs: readonly S.FireRequest[]): Promise<S.FireResult[]> {
    return this.fires.commitFires(reqs);
  }
  claimFires(reqs: readonly S.ClaimRequest[], node: string): Promise<S.ClaimResult[]> {
    return this.fires.claimFires(reqs, node);
  }
  releaseClaims(runIds: readonly string[], node: string): Promise<void> {
    return this.fires.releaseClaims(runIds, node);
  }
  uncommitHeld(taskId: string): Promise<boolean> {
    return this.fires.uncommitHeld(taskId);
  }
  updateRuns(updates: readonly S.RunUpdate[]): Promise<void> {
    return this.fires.updateRuns(updates);
  }
  commitTrigger(req: Parameters<S.TaskStore['commitTrigger']>[0]): Promise<S.FireResult> {
    return this.fires.commitTrigger(req);
  }
  commitRetry(req: S.RetryRequest): Promise<S.RetryResult> {
    return this.fires.commitRetry(req);
  }

  // ---- run records (redis-runs.ts) ----

  getRun(runId: string): Promise<Run | null> {
    return this.runs.getRun(runId);
  }
  listRuns(taskId: string, limit: number): Promise<Run[]> {
    return this.runs.pageRuns({ task_id: taskId, before: null, limit });
  }
  pageRuns(q: S.ListRunsQuery): Promise<Run[]> {
    return this.runs.pageRuns(q);
  }
  queryRuns(q: S.RunsQuery): Promise<Run[]> {
    return this.runs.queryRuns(q);
  }
  reportRun(req: S.ReportRequest): Promise<S.ReportResult> {
    return this.runs.reportRun(req);
  }
  appendRunLog(runId: string, lines: readonly string[], now: number, caps: S.LogCaps): Promise<{ accepted: number; dropped: number } | null> {
    return this.runs.appendRunLog(runId, lines, now, caps);
  }
  readRunLog(runId: string, since: number, limit: number): Promise<S.RunLogLine[]> {
    return this.runs.readRunLog(runId, since, limit);
  }

  // ---- stats, reports and retention (redis-upkeep.ts) ----

  stats(): Promise<S.StoreStats> {
    return this.upkeep.stats();
  }
  reportDays(fromDay: number, toDay: number): Promise<S.ReportDay[]> {
    return this.upkeep.reportDays(fromDay, toDay);
  }
  pruneRuns(olderThan: number, maxPerTask: number, only?: readonly number[] | null): Promise<number> {
    return this.upkeep.pruneRuns(olderThan, maxPerTask, only);
  }
  purgeCompleted(olderThan: number, only?: readonly number[] | null): Promise<number> {
    return this.upkeep.purgeCompleted(olderThan, only);
  }

  sharedSecret(name: string): Promise<string> {
    return this.guard(async () => {
      const k = this.keys.secret(name);
      await this.client.set(k, randomBytes(32).toString('hex'), 'NX');
      const v = await this.client.get(k);
      if (v === null) throw new StoreUnavailableError(`shared secret ${name} vanished`);
      return v;
    });
  }

  ping(): Promise<boolean> {
    return this.conn.ping();
  }

  /** Quits the client (when owned). Safe to call twice: returns the same promise. */
  close(): Promise<void> {
    return this.conn.close();
  }
}
