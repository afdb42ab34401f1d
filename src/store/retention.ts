/**
 * History retention: one round of pruning finished runs (by age and per task) and purging
 * completed tasks, run in the background every few minutes (src/main.ts).
 *
 * Maintenance must not compete with due fires: before each step the round waits while the node
 * is busy (callbacks waiting for a connection: a burst is going out), up to `maxWaitMs` in all,
 * then goes on anyway so retention is never put off for good. A cluster node works through its
 * own slots `chunk` at a time, checking between chunks, so a burst that starts mid-round pauses
 * the rest of it. (Before, a round that began as a burst went out read every own task's run
 * count during the burst: 2 to 6.5 `ZCARD` per callback in bench:cluster.)
 */
import type { Logger } from 'pino';
import { sleep, type Clock } from '../clock/index.js';
import type { TaskStore } from './types.js';

export interface RetentionOptions {
  store: Pick<TaskStore, 'pruneRuns' | 'purgeCompleted'>;
  clock: Clock;
  log: Logger;
  retentionDays: number;
  maxRunsPerTask: number;
  completedRetentionDays: number;
  /** The slots to work on (a cluster node: its own), or null for every slot (standalone). */
  slots: readonly number[] | null;
  /** True while maintenance should wait (a burst is going out). */
  busy: () => boolean;
  /** How often `busy` is asked again while it holds (default 2,000 ms). */
  pollMs?: number;
  /** The longest a round waits for `busy` to clear, in all (default 120,000 ms). */
  maxWaitMs?: number;
  /** Slots per step (default 16). */
  chunk?: number;
  /** Stops the round between steps (shutdown). */
  signal?: AbortSignal;
}

export interface RetentionResult {
  pruned: number;
  purged: number;
  /** How long the round waited for the node to be quiet (ms). */
  waitedMs: number;
}

export async function retentionRound(o: RetentionOptions): Promise<RetentionResult> {
  const pollMs = o.pollMs ?? 2000;
  const giveUpAt = o.clock.now() + (o.maxWaitMs ?? 120_000);
  let waitedMs = 0;
  const quiet = async (): Promise<void> => {
    while (o.busy() && o.clock.now() < giveUpAt && !o.signal?.aborted) {
      const t0 = o.clock.now();
      await sleep(o.clock, Math.min(pollMs, Math.max(1, giveUpAt - t0)), o.signal);
      waitedMs += o.clock.now() - t0;
    }
  };
  const steps: (readonly number[] | null)[] = [];
  if (o.slots === null) steps.push(null);
  else for (let i = 0; i < o.slots.length; i += o.chunk ?? 16) steps.push(o.slots.slice(i, i + (o.chunk ?? 16)));
  const olderThan = o.retentionDays > 0 ? o.clock.now() - o.retentionDays * 86_400_000 : 0;
  const purgeBefore = o.clock.now() - o.completedRetentionDays * 86_400_000;
  let pruned = 0;
  let purged = 0;
  for (const slots of steps) {
    await quiet();
    if (o.signal?.aborted) break;
    pruned += await o.store.pruneRuns(olderThan, o.maxRunsPerTask, slots);
    if (o.completedRetentionDays > 0) purged += await o.store.purgeCompleted(purgeBefore, slots);
  }
  return { pruned, purged, waitedMs };
}
