/**
 * Runs across tasks in the Redis store (GET /xcron/runs): each slot is read newest first by
 * queryRuns-1.lua from the index that fits the filter (a task's history, the failed runs, the
 * outbox, or every run), and the slots are merged in descending (scheduled_time, run_id) order.
 */
import type { Run } from '../task/index.js';
import { decodeRun } from './redis-codec.js';
import { mergeSlots } from './redis-slots.js';
import type { RunsQuery } from './types.js';

/** Index entries one script call reads at most (it answers early with a cursor to go on from). */
const SCAN_BUDGET = 2000;

type RunScript = (slot: number, args: readonly (string | number)[]) => Promise<unknown>;

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
