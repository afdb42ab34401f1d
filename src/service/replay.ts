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
   * `dryRun`: only lists them. Runs retried meanwhile by another call are skipped.
   */
  async retryMany(filter: ReplayFilter, limit: number, dryRun: boolean): Promise<{ count: number; run_ids: string[] }> {
    const ids: string[] = [];
    let before: DueKey | null = null;
    while (ids.length < limit) {
      const page = await this.o.store.queryRuns({ ...filter, status: 'FAIL', replayed: false, before, limit: Math.min(500, limit - ids.length) });
      for (const r of page) ids.push(r.run_id);
      if (page.length === 0) break;
      const last = page[page.length - 1]!;
      before = { time: last.scheduled_time, id: last.run_id };
    }
    if (dryRun) return { count: ids.length, run_ids: ids };
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
    return { count: done.length, run_ids: done };
  }
}
