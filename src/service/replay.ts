/**
 * Replaying failed runs (retryRun, retryRuns): a finished FAIL run is delivered again as a new run
 * `<run_id>:r<N>` (retryRunId) in the outbox, linked both ways (the new run's id names the one it
 * retries; the original gets retried_by). The callback keeps the original's fire id, so a receiver
 * that deduplicates by fire id treats the replay as the same fire. Failed runs not retried yet are
 * the dead-letter list (RunsQuery replayed: false).
 */
import type { Clock } from '../clock/index.js';
import type { Notifier } from '../cluster/index.js';
import { Codes, XcronError } from '../errors.js';
import type { DueKey, RunsQuery, TaskStore } from '../store/types.js';
import { retryRunId } from '../task/index.js';

export interface ReplayOptions {
  store: TaskStore;
  notifier: Notifier;
  clock: Clock;
  nodeId: string;
}

export interface RetriedRun {
  run_id: string;
  task_id: string;
  retry_of: string;
  scheduled_time: number;
}

/** The failed runs retryRuns replays: RunsQuery's filters (status FAIL, not replayed). */
export type ReplayFilter = Pick<RunsQuery, 'task_id' | 'namePrefix' | 'from' | 'to'>;

/** retryRuns' answer: the runs retried (or that would be), and how many more match. */
export interface RetryManyResult {
  count: number;
  run_ids: string[];
  remaining: number;
  remaining_capped: boolean;
}

/** Runs read per query. */
const REPLAY_PAGE = 500;
/** Matching runs beyond a call's limit are counted up to this many. */
export const REMAINING_COUNTED = 10_000;

const cursorOf = (rows: readonly { scheduled_time: number; run_id: string }[]): DueKey => {
  const last = rows[rows.length - 1]!;
  return { time: last.scheduled_time, id: last.run_id };
};

export const runNotFound = (id: string): XcronError => new XcronError(Codes.RUN_NOT_FOUND, 404, `run ${JSON.stringify(id.slice(0, 100))} not found`);

export class RunReplay {
  constructor(private readonly o: ReplayOptions) {}

  /** Delivers a finished FAIL run again (see the module comment). */
  async retry(runId: string): Promise<RetriedRun> {
    const orig = await this.o.store.getRun(runId);
    if (!orig) throw runNotFound(runId);
    const newId = retryRunId(runId);
    const now = this.o.clock.now();
    const res = await this.o.store.commitRetry({ of: runId, run_id: newId, task_id: orig.task_id, slot: orig.slot, scheduled_time: now, node: this.o.nodeId, now });
    switch (res.result) {
      case 'not_found':
        throw runNotFound(runId);
      case 'not_failed':
        throw new XcronError(Codes.RUN_NOT_FAILED, 409, `run ${runId} is ${res.run?.status ?? '?'}: only a finished FAIL run can be retried`);
      case 'retried':
        throw new XcronError(Codes.RUN_RETRIED, 409, `run ${runId} was retried already as ${res.run?.retried_by ?? newId}; to replay it again, retry that run once it has failed`);
      case 'task_gone':
        throw new XcronError(Codes.TASK_NOT_FOUND, 404, `task ${JSON.stringify(orig.task_id)} of run ${runId} not found (deleted)`);
      default:
        this.o.notifier.runQueued(newId, orig.slot);
        return { run_id: newId, task_id: orig.task_id, retry_of: runId, scheduled_time: now };
    }
  }

  /**
   * Retries up to `limit` failed runs not retried yet that match `filter`, newest first.
   * `dryRun`: only lists them. Runs retried meanwhile by another call are skipped. `remaining`:
   * the matching failed runs beyond those (older ones, left for another call), counted up to
   * REMAINING_COUNTED; `remaining_capped` when there are more than that.
   */
  async retryMany(filter: ReplayFilter, limit: number, dryRun: boolean): Promise<RetryManyResult> {
    const ids: string[] = [];
    let before: DueKey | null = null;
    const page = (n: number) => this.o.store.queryRuns({ ...filter, status: 'FAIL', replayed: false, before, limit: n });
    while (ids.length < limit) {
      const rows = await page(Math.min(REPLAY_PAGE, limit - ids.length));
      for (const r of rows) ids.push(r.run_id);
      if (rows.length === 0) break;
      before = cursorOf(rows);
    }
    let remaining = 0;
    if (ids.length === limit) {
      for (;;) {
        const rows = await page(Math.min(REPLAY_PAGE, REMAINING_COUNTED + 1 - remaining));
        remaining += rows.length;
        if (rows.length === 0 || remaining > REMAINING_COUNTED) break;
        before = cursorOf(rows);
      }
    }
    const left = { remaining: Math.min(remaining, REMAINING_COUNTED), remaining_capped: remaining > REMAINING_COUNTED };
    if (dryRun) return { count: ids.length, run_ids: ids, ...left };
    const done: string[] = [];
    for (const id of ids) {
      try {
        done.push((await this.retry(id)).run_id);
      } catch (e) {
        // Retried, deleted or changed in between: not this call's to replay.
        if (e instanceof XcronError && e.status !== 503) continue;
        throw e;
      }
    }
    return { count: done.length, run_ids: done, ...left };
  }
}
