/**
 * The fire path of the Redis store: fire commits (with the lost-reply check), claims of held fires
 * and their undoing, run updates, manual triggers and retries. Each batch is grouped by slot, one
 * script call per slot (redis-slots.ts).
 */
import { isUnavailable, toStoreError } from '../redis/connection.js';
import { decodeRun, optText, packed, runUpdateArgs } from './redis-codec.js';
import type { StoreConnection } from './redis-conn.js';
import { groupBy, type SlotMap } from './redis-slots.js';
import type { ClaimRequest, ClaimResult, FireRequest, FireResult, RetryRequest, RetryResult, RunUpdate, TaskStore } from './types.js';

export class RedisFires {
  constructor(
    private readonly conn: StoreConnection,
    private readonly slots: SlotMap,
  ) {}

  commitFires(reqs: readonly FireRequest[]): Promise<FireResult[]> {
    if (reqs.length === 0) return Promise.resolve([]);
    return this.conn.replicated(async () => {
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
            const res = (await this.conn.run('commitFires', slot, [packed(args)])) as FireResult[];
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
        const tok = await this.conn.client.hget(this.conn.keys.run(r.slot, r.run.run_id), 'tok');
        return tok === String(r.token) ? 'committed' : 'conflict';
      }),
    );
  }

  claimFires(reqs: readonly ClaimRequest[], node: string): Promise<ClaimResult[]> {
    if (reqs.length === 0) return Promise.resolve([]);
    return this.conn.replicated(async () => {
      const results: ClaimResult[] = new Array<ClaimResult>(reqs.length).fill('fenced');
      // Not owned (no token): fenced without asking.
      const groups = groupBy(reqs, (r) => (r.token === null ? null : `${r.slot}|${r.token}`));
      await Promise.all(
        [...groups.values()].map(async (idx) => {
          const first = reqs[idx[0]!]!;
          const args: string[] = [String(first.token!), node];
          for (const i of idx) args.push(reqs[i]!.task_id, reqs[i]!.run_id);
          const res = (await this.conn.run('claimFires', first.slot, [packed(args)])) as ClaimResult[];
          idx.forEach((i, j) => (results[i] = res[j]!));
        }),
      );
      return results;
    });
  }

  releaseClaims(runIds: readonly string[], node: string): Promise<void> {
    if (runIds.length === 0) return Promise.resolve();
    return this.conn.guard(async () => {
      const bySlot = groupBy(runIds, (id) => this.slots.ofRun(id));
      await Promise.all([...bySlot].map(([slot, idx]) => this.conn.run('releaseClaims', slot, [node, ...idx.map((i) => runIds[i]!)])));
    });
  }

  uncommitHeld(taskId: string): Promise<boolean> {
    return this.conn.replicated(async () => (await this.conn.run('uncommitHeld', this.slots.ofTask(taskId), [taskId])) === 1);
  }

  updateRuns(updates: readonly RunUpdate[]): Promise<void> {
    if (updates.length === 0) return Promise.resolve();
    return this.conn.guard(async () => {
      const bySlot = groupBy(updates, (u) => this.slots.ofTask(u.task_id));
      await Promise.all([...bySlot].map(([slot, idx]) => this.conn.run('updateRuns', slot, [packed(idx.flatMap((i) => runUpdateArgs(updates[i]!)))])));
    });
  }

  commitTrigger(req: Parameters<TaskStore['commitTrigger']>[0]): Promise<FireResult> {
    return this.conn.replicated(
      async () => (await this.conn.run('commitTrigger', req.slot, [req.task_id, req.run_id, req.scheduled_time, req.node, req.now, req.request ? `=${JSON.stringify(req.request)}` : ''])) as FireResult,
    );
  }

  commitRetry(req: RetryRequest): Promise<RetryResult> {
    return this.conn.replicated(async () => {
      const [result, run] = (await this.conn.run('commitRetry', req.slot, [req.of, req.run_id, req.task_id, req.scheduled_time, req.node, req.now])) as [RetryResult['result'], string[]];
      return { result, run: run.length === 0 ? null : decodeRun(run) };
    });
  }
}
