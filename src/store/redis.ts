/**
 * RedisTaskStore: the cluster store. Every key of one slot shares the hash tag `{<prefix>:<slot>}`
 * (the key layout is in src/redis/keys.ts), and every atomic operation is one Lua script
 * (src/redis/lua/<name>-<key count>.lua) on one slot, so the same code runs on a single Redis and
 * on Redis Cluster. Operations over many slots group their batch by slot or merge per-slot reads
 * (redis-slots.ts); tasks and runs are hashes (redis-codec.ts); the connection's use (unavailable
 * errors, WAIT for replicas, closing) is in redis-conn.ts; idempotency keys in redis-idempotency.ts.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../errors.js';
import { isUnavailable, toStoreError, type RedisClient } from '../redis/connection.js';
import { slotOf, type Run, type RunStatus, type Task } from '../task/index.js';
import { claimMarks, changeFields, cursorArgs, decodeRun, decodeTask, heldMarks, opt, optText, packed, runUpdateArgs, taskFields, timedPage } from './redis-codec.js';
import { StoreConnection, type StoreConnectionOptions } from './redis-conn.js';
import { RedisChildGraph } from './redis-graph.js';
import { createInSlots } from './redis-batch.js';
import { claimIdempotencyKey, releaseIdempotencyKey } from './redis-idempotency.js';
import { queryRuns } from './redis-runs.js';
import { redisExecutors } from './redis-executors.js';
import { eachSlot, groupBy, mergeSlots, type SlotPage } from './redis-slots.js';
import type {
  ClaimRequest,
  ClaimResult,
  CreateResult,
  DueKey,
  DueQuery,
  ExecutorStore,
  FireRequest,
  FireResult,
  GraphRefusal,
  HeldFireStore,
  ListRunsQuery,
  ListTasksQuery,
  LogCaps,
  OutboxQuery,
  PendingDelivery,
  ReportDay,
  ReportRequest,
  ReportResult,
  RetryRequest,
  RetryResult,
  RunsQuery,
  RunLogLine,
  RunUpdate,
  StoreStats,
  TaskChanges,
  TaskExpectation,
  TaskStore,
} from './types.js';

export interface RedisStoreOptions extends StoreConnectionOptions {
  slots: number;
  log: Logger;
}

export class RedisTaskStore implements TaskStore {
  readonly kind = 'redis' as const;
  readonly client: RedisClient;
  private readonly conn: StoreConnection;
  private readonly keys: StoreConnection['keys'];
  private readonly slots: number;
  private readonly log: Logger;

  private readonly graph: RedisChildGraph;
  /** Fires committed ahead are undone from any node and claimed by their owner, in Redis. */
  readonly heldFires: HeldFireStore = {
    claimFires: (reqs, node) => this.claimFires(reqs, node),
    releaseClaims: (runIds, node) => this.releaseClaims(runIds, node),
    uncommitHeld: (taskId) => this.uncommitHeld(taskId),
    heldOf: (task) => heldMarks.get(task) ?? null,
    claimedBy: (run) => claimMarks.get(run) ?? null,
  };

  /** The executor registry (src/store/redis-executors.ts). */
  readonly executors: ExecutorStore;

  constructor(o: RedisStoreOptions) {
    this.conn = new StoreConnection(o);
    this.executors = redisExecutors(this.conn);
    this.client = o.client;
    this.keys = this.conn.keys;
    this.slots = o.slots;
    this.log = o.log;
    const graphKey = this.keys.childGraph();
    this.graph = new RedisChildGraph({
      run: (name, args) => this.conn.runOn(name, graphKey, args),
      remove: (id) => this.client.hdel(graphKey, id),
      isBuilt: async () => (await this.client.hget(graphKey, '#built')) !== null,
      markBuilt: () => this.client.hset(graphKey, '#built', '1'),
      storedEdges: async () => {
        const out: [string, string[]][] = [];
        for (const slot of this.allSlots()) {
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

  private slotOfTask(id: string): number {
    return slotOf(id, this.slots);
  }
  /** A run's slot is its task's: run ids are "<task_id>:<ms>". */
  private slotOfRun(runId: string): number {
    const i = runId.indexOf(':');
    return this.slotOfTask(i < 0 ? runId : runId.slice(0, i));
  }
  private allSlots(): number[] {
    return Array.from({ length: this.slots }, (_, i) => i);
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

  create(task: Task): Promise<CreateResult> {
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
  createMany(tasks: readonly Task[]): Promise<(CreateResult | Error)[]> {
    return createInSlots(tasks, {
      create: (t) => this.create(t),
      createInSlot: (slot, items) => this.replicated(async () => (await this.run('createMany', slot, [items])) as number[]),
    });
  }

  get(id: string): Promise<Task | null> {
    return this.guard(async () => {
      const flat = await this.client.hgetall(this.keys.task(this.slotOfTask(id), id));
      return Object.keys(flat).length === 0 ? null : decodeTask(Object.entries(flat).flat());
    });
  }

  delete(id: string): Promise<Task | null> {
    return this.replicated(async () => {
      const flat = (await this.run('delete', this.slotOfTask(id), [id])) as string[];
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

  dueTasks(q: DueQuery): Promise<Task[]> {
    return this.merged<Task>(
      q,
      (t) => ({ time: t.next_fire_time!, id: t.id }),
      async (slot, after, n) => timedPage((await this.run('dueTasks', slot, [...cursorArgs(after), q.upTo, n])) as unknown[], decodeTask),
    );
  }

  dueKeys(q: DueQuery): Promise<DueKey[]> {
    return this.merged<DueKey>(q, (k) => k, async (slot, after, n) => {
      const r = (await this.run('dueKeys', slot, [...cursorArgs(after), q.upTo, n])) as (number | string)[];
      const items: DueKey[] = [];
      for (let i = 1; i < r.length; i += 2) items.push({ id: r[i] as string, time: Number(r[i + 1]) });
      return { exhausted: r[0] === 1, last: items.length > 0 ? items[items.length - 1]! : null, items };
    });
  }

  /** An ordered read over the query's slots (all by default): each slot's pages merged in (time, id) order. */
  private merged<T>(q: { slots: readonly number[] | null; after: DueKey | null; limit: number }, keyOf: (t: T) => DueKey, read: (slot: number, after: DueKey | null, n: number) => Promise<SlotPage<T>>): Promise<T[]> {
    return this.guard(() => mergeSlots<T>(q.slots ?? this.allSlots(), q.after, q.limit, keyOf, read));
  }

  commitFires(reqs: readonly FireRequest[]): Promise<FireResult[]> {
    if (reqs.length === 0) return Promise.resolve([]);
    return this.replicated(async () => {
      const bySlot = groupBy(reqs, (r) => r.slot);
      const results: FireResult[] = new Array<FireResult>(reqs.length).fill('conflict');
      let failures = 0;
      let lastError: unknown = null;
      await Promise.all(
        [...bySlot].map(async ([slot, idx]) => {
          const args: string[] = [];
          for (const i of idx) {
            const r = reqs[i]!;
            args.push(String(r.token), r.task_id, String(r.expected), r.next === null ? '' : String(r.next), String(r.now), r.run.run_id, r.run.node, r.run.status, optText(r.run.error), r.ahead === true ? '1' : '', r.retry === true ? '1' : '');
          }
          try {
            const res = (await this.run('commitFires', slot, [packed(args)])) as FireResult[];
            idx.forEach((i, j) => (results[i] = res[j]!));
          } catch (e) {
            if (!isUnavailable(e)) throw e;
            // The reply is lost, but the script may have run: look for our run records.
            const resolved = await this.resolveCommits(idx.map((i) => reqs[i]!)).catch(() => null);
            if (resolved === null) {
              failures++;
              lastError = e;
              return;
            }
            idx.forEach((i, j) => (results[i] = resolved[j]!));
          }
        }),
      );
      // Nothing known committed: the caller retries the whole batch. Otherwise a slot whose outcome
      // is unknown answers 'conflict' (its tasks are re-read; a committed run is in the outbox).
      if (failures === bySlot.size) throw toStoreError(lastError);
      return results;
    });
  }

  /** After a lost reply: a fire is committed when its run exists with the caller's token. */
  private async resolveCommits(reqs: readonly FireRequest[]): Promise<FireResult[]> {
    return Promise.all(
      reqs.map(async (r) => {
        const tok = await this.client.hget(this.keys.run(r.slot, r.run.run_id), 'tok');
        return tok === String(r.token) ? 'committed' : 'conflict';
      }),
    );
  }

  claimFires(reqs: readonly ClaimRequest[], node: string): Promise<ClaimResult[]> {
    if (reqs.length === 0) return Promise.resolve([]);
    return this.replicated(async () => {
      const results: ClaimResult[] = new Array<ClaimResult>(reqs.length).fill('fenced');
      // Not owned (no token): fenced without asking.
      const groups = groupBy(reqs, (r) => (r.token === null ? null : `${r.slot}|${r.token}`));
      await Promise.all(
        [...groups.values()].map(async (idx) => {
          const first = reqs[idx[0]!]!;
          const args: string[] = [String(first.token!), node];
          for (const i of idx) args.push(reqs[i]!.task_id, reqs[i]!.run_id);
          const res = (await this.run('claimFires', first.slot, [packed(args)])) as ClaimResult[];
          idx.forEach((i, j) => (results[i] = res[j]!));
        }),
      );
      return results;
    });
  }

  releaseClaims(runIds: readonly string[], node: string): Promise<void> {
    if (runIds.length === 0) return Promise.resolve();
    return this.guard(async () => {
      const bySlot = groupBy(runIds, (id) => this.slotOfRun(id));
      await Promise.all([...bySlot].map(([slot, idx]) => this.run('releaseClaims', slot, [node, ...idx.map((i) => runIds[i]!)])));
    });
  }

  uncommitHeld(taskId: string): Promise<boolean> {
    return this.replicated(async () => (await this.run('uncommitHeld', this.slotOfTask(taskId), [taskId])) === 1);
  }

  updateRuns(updates: readonly RunUpdate[]): Promise<void> {
    if (updates.length === 0) return Promise.resolve();
    return this.guard(async () => {
      const bySlot = groupBy(updates, (u) => this.slotOfTask(u.task_id));
      await Promise.all([...bySlot].map(([slot, idx]) => this.run('updateRuns', slot, [packed(idx.flatMap((i) => runUpdateArgs(updates[i]!)))])));
    });
  }

  unfinishedRuns(q: OutboxQuery): Promise<PendingDelivery[]> {
    return this.merged<PendingDelivery>(
      q,
      (p) => ({ time: p.run.scheduled_time, id: p.run.run_id }),
      async (slot, after, n) =>
        timedPage((await this.run('unfinishedRuns', slot, [...cursorArgs(after), n, q.upTo ?? ''])) as unknown[], (x) => {
          const [run, task] = x as [unknown, unknown];
          return { run: decodeRun(run), task: decodeTask(task) };
        }),
    );
  }

  getRun(runId: string): Promise<Run | null> {
    return this.guard(async () => {
      const flat = await this.client.hgetall(this.keys.run(this.slotOfRun(runId), runId));
      return Object.keys(flat).length === 0 ? null : decodeRun(Object.entries(flat).flat());
    });
  }

  listRuns(taskId: string, limit: number): Promise<Run[]> {
    return this.pageRuns({ task_id: taskId, before: null, limit });
  }

  pageRuns(q: ListRunsQuery): Promise<Run[]> {
    return this.guard(async () => {
      const r = (await this.run('pageRuns', this.slotOfTask(q.task_id), [q.task_id, ...cursorArgs(q.before), q.limit])) as unknown[];
      return r.map(decodeRun);
    });
  }

  updateTask(id: string, changes: TaskChanges, expect: TaskExpectation): Promise<Task | 'conflict' | null | GraphRefusal> {
    return this.replicated(async () => {
      const { set, del } = changeFields(changes);
      const write = (deadline: number | ''): Promise<unknown> => this.run('updateTask', this.slotOfTask(id), [id, expect.state, expect.next_fire_time ?? '', deadline, set.length / 2, ...set, ...del]);
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

  commitTrigger(req: Parameters<TaskStore['commitTrigger']>[0]): Promise<FireResult> {
    return this.replicated(
      async () => (await this.run('commitTrigger', req.slot, [req.task_id, req.run_id, req.scheduled_time, req.node, req.now, req.request ? `=${JSON.stringify(req.request)}` : ''])) as FireResult,
    );
  }

  commitRetry(req: RetryRequest): Promise<RetryResult> {
    return this.replicated(async () => {
      const [result, run] = (await this.run('commitRetry', req.slot, [req.of, req.run_id, req.task_id, req.scheduled_time, req.node, req.now])) as [RetryResult['result'], string[]];
      return { result, run: run.length === 0 ? null : decodeRun(run) };
    });
  }

  queryRuns(q: RunsQuery): Promise<Run[]> {
    return this.guard(() => queryRuns(q, this.allSlots(), (id) => this.slotOfTask(id), (slot, args) => this.run('queryRuns', slot, args)));
  }

  reportDays(fromDay: number, toDay: number): Promise<ReportDay[]> {
    return this.guard(async () => {
      const byDay = new Map<number, Record<string, number>>();
      await eachSlot(this.allSlots(), 16, async (s) => {
        const r = (await this.run('reportDays', s, [fromDay, toDay])) as (string | string[])[];
        for (let i = 0; i + 1 < r.length; i += 2) {
          const day = Number(r[i]);
          let counts = byDay.get(day);
          if (!counts) byDay.set(day, (counts = {}));
          const h = r[i + 1] as string[];
          for (let j = 0; j + 1 < h.length; j += 2) counts[h[j]!] = (counts[h[j]!] ?? 0) + Number(h[j + 1]);
        }
      });
      return [...byDay].sort((a, b) => a[0] - b[0]).map(([day, counts]) => ({ day, counts }));
    });
  }

  listTasks(q: ListTasksQuery): Promise<Task[]> {
    return this.guard(() =>
      mergeSlots<Task>(
        this.allSlots(),
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

  stats(): Promise<StoreStats> {
    return this.guard(async () => {
      const tasks: StoreStats['tasks'] = { active: 0, paused: 0, completed: 0 };
      const runs: Record<string, number> = {};
      const per = (await Promise.all(this.allSlots().map((s) => this.run('stats', s, [])))) as [number, number, number, string[]][];
      for (const [a, p, c, rs] of per) {
        tasks.active += a;
        tasks.paused += p;
        tasks.completed += c;
        for (let i = 0; i + 1 < rs.length; i += 2) {
          const n = Number(rs[i + 1]);
          if (n !== 0) runs[rs[i]! as RunStatus] = (runs[rs[i]!] ?? 0) + n;
        }
      }
      return { tasks, runs };
    });
  }

  pruneRuns(olderThan: number, maxPerTask: number, only?: readonly number[] | null): Promise<number> {
    return this.guard(async () => {
      let total = 0;
      await eachSlot(only ?? this.allSlots(), 4, async (s) => {
        let cursor = 'age';
        while (cursor !== '') {
          const [n, next] = (await this.run('pruneRuns', s, [olderThan, maxPerTask, cursor, 500])) as [number, string];
          total += n;
          cursor = next;
        }
      });
      return total;
    });
  }

  purgeCompleted(olderThan: number, only?: readonly number[] | null): Promise<number> {
    return this.guard(async () => {
      let total = 0;
      await eachSlot(only ?? this.allSlots(), 4, async (s) => {
        for (let more = true; more; ) {
          const r = (await this.run('purgeCompleted', s, [olderThan, 200])) as unknown[];
          more = r[0] === 1;
          for (let i = 1; i + 1 < r.length; i += 2) {
            total++;
            const id = r[i] as string;
            const key = r[i + 1] as string;
            if (key !== '') await releaseIdempotencyKey(this.conn, key, id);
          }
        }
      });
      return total;
    });
  }

  reportRun(req: ReportRequest): Promise<ReportResult> {
    return this.guard(async () => {
      const [result, run] = (await this.run('reportRun', this.slotOfRun(req.run_id), [req.run_id, req.status, opt(req.message), opt(req.output), req.now, req.expire ? 1 : 0])) as [
        ReportResult['result'],
        string[],
      ];
      return { result, run: run.length === 0 ? null : decodeRun(run) };
    });
  }

  appendRunLog(runId: string, lines: readonly string[], now: number, caps: LogCaps): Promise<{ accepted: number; dropped: number } | null> {
    return this.guard(async () => {
      const args: (string | number)[] = [runId, now, caps.maxLines, caps.maxBytes];
      for (const l of lines) args.push(l, Buffer.byteLength(l));
      const r = (await this.run('appendRunLog', this.slotOfRun(runId), args)) as number[];
      return r[0] === -1 ? null : { accepted: r[0]!, dropped: r[1]! };
    });
  }

  readRunLog(runId: string, since: number, limit: number): Promise<RunLogLine[]> {
    return this.guard(async () => {
      if (limit <= 0) return [];
      const from = Math.max(0, since);
      const rows = await this.client.lrange(this.keys.runLog(this.slotOfRun(runId), runId), from, from + limit - 1);
      return rows.map((v, i) => {
        const bar = v.indexOf('|');
        return { seq: from + i + 1, time: Number(v.slice(0, bar)), line: v.slice(bar + 1) };
      });
    });
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
