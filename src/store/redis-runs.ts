/**
 * Run records in the Redis store: one run, a task's history, runs across tasks (GET /xcron/runs),
 * async reports and run logs. Runs across tasks: each slot is read newest first by queryRuns-1.lua
 * from the index that fits the filter (a task's history, the failed runs, the outbox, or every
 * run), and the slots are merged in descending (scheduled_time, run_id) order.
 */
import type { Run } from '../task/index.js';
import { decodeRun, cursorArgs, opt } from './redis-codec.js';
import type { StoreConnection } from './redis-conn.js';
import { mergeSlots, type SlotMap } from './redis-slots.js';
import type { ListRunsQuery, LogCaps, ReportRequest, ReportResult, RunLogLine, RunsQuery } from './types.js';

/** Index entries one script call reads at most (it answers early with a cursor to go on from). */
const SCAN_BUDGET = 2000;

type RunScript = (slot: number, args: readonly (string | number)[]) => Promise<unknown>;

export class RedisRuns {
  constructor(
    private readonly conn: StoreConnection,
    private readonly slots: SlotMap,
  ) {}

  getRun(runId: string): Promise<Run | null> {
    return this.conn.guard(async () => {
      const flat = await this.conn.client.hgetall(this.conn.keys.run(this.slots.ofRun(runId), runId));
      return Object.keys(flat).length === 0 ? null : decodeRun(Object.entries(flat).flat());
    });
  }

  listRuns(taskId: string, limit: number): Promise<Run[]> {
    return this.pageRuns({ task_id: taskId, before: null, limit });
  }

  pageRuns(q: ListRunsQuery): Promise<Run[]> {
    return this.conn.guard(async () => {
      const r = (await this.conn.run('pageRuns', this.slots.ofTask(q.task_id), [q.task_id, ...cursorArgs(q.before), q.limit])) as unknown[];
      return r.map(decodeRun);
    });
  }

  queryRuns(q: RunsQuery): Promise<Run[]> {
    return this.conn.guard(() => queryRuns(q, this.slots.all(), (id) => this.slots.ofTask(id), (slot, args) => this.conn.run('queryRuns', slot, args)));
  }

  reportRun(req: ReportRequest): Promise<ReportResult> {
    return this.conn.guard(async () => {
      const [result, run] = (await this.conn.run('reportRun', this.slots.ofRun(req.run_id), [req.run_id, req.status, opt(req.message), opt(req.output), req.now, req.expire ? 1 : 0])) as [
        ReportResult['result'],
        string[],
      ];
      return { result, run: run.length === 0 ? null : decodeRun(run) };
    });
  }

  appendRunLog(runId: string, lines: readonly string[], now: number, caps: LogCaps): Promise<{ accepted: number; dropped: number } | null> {
    return this.conn.guard(async () => {
      const args: (string | number)[] = [runId, now, caps.maxLines, caps.maxBytes];
      for (const l of lines) args.push(l, Buffer.byteLength(l));
      const r = (await this.conn.run('appendRunLog', this.slots.ofRun(runId), args)) as number[];
      return r[0] === -1 ? null : { accepted: r[0]!, dropped: r[1]! };
    });
  }

  readRunLog(runId: string, since: number, limit: number): Promise<RunLogLine[]> {
    return this.conn.guard(async () => {
      if (limit <= 0) return [];
      const from = Math.max(0, since);
      const rows = await this.conn.client.lrange(this.conn.keys.runLog(this.slots.ofRun(runId), runId), from, from + limit - 1);
      return rows.map((v, i) => {
        const bar = v.indexOf('|');
        return { seq: from + i + 1, time: Number(v.slice(0, bar)), line: v.slice(bar + 1) };
      });
    });
  }
}

export function queryRuns(q: RunsQuery, allSlots: number[], slotOfTask: (id: string) => number, run: RunScript): Promise<Run[]> {
  const index = q.task_id !== null ? 'task' : q.status === 'FAIL' ? 'fail' : q.status === 'PENDING' || q.status === 'RUNNING' ? 'open' : 'all';
  const slots = q.task_id !== null ? [slotOfTask(q.task_id)] : allSlots;
  const fixed = [q.from ?? '', q.to ?? '', q.status ?? '', q.namePrefix ?? '', q.replayed === null ? '' : q.replayed ? '1' : '0'];
  return mergeSlots<Run>(
    slots,
    q.before,
    q.limit,
    (r) => ({ time: r.scheduled_time, id: r.run_id }),
    async (slot, before, n) => {
      const r = (await run(slot, [index, q.task_id ?? '', before ? before.time : '', before ? before.id : '', ...fixed, n, SCAN_BUDGET])) as unknown[];
      return {
        exhausted: r[0] === 1,
        last: r[1] === '' ? null : { time: Number(r[1]), id: r[2] as string },
        items: r.slice(3).map(decodeRun),
      };
    },
    -1,
  );
}
