/**
 * The store the scheduler uses in cluster mode (see recoveryStore below): recovery leaves out the
 * runs that this node or another live node is delivering.
 */
import type { HeldFireStore, TaskStore } from '../store/types.js';
import type { Run } from '../task/index.js';

/** What recovery needs of the node's ownership (RedisOwnership). */
export interface RecoveryOwnership {
  readonly nodeId: string;
  /** True when `node` is a live member of the cluster. */
  isLive(node: string): boolean;
  /** The token of a slot this node owns, or null. */
  tokenFor(slot: number): number | null;
}

/**
 * The store the scheduler uses in cluster mode: the Redis store, except that recovery
 * (`unfinishedRuns`, called when slots are acquired or re-announced) leaves out the runs this
 * process is delivering or has delivered but not yet recorded, and runs another live node is
 * delivering (RUNNING under that node): DESIGN.md rule 2, "re-delivers that slot's unfinished runs
 * whose owner is gone". Those nodes record the outcome themselves; if one dies, the member-left
 * re-announce picks its runs up.
 */
export function recoveryStore(store: TaskStore, ownership: RecoveryOwnership): TaskStore {
  const mine = new Set<string>();
  const self = ownership.nodeId;
  /** Another live node is delivering it: marked RUNNING by it, or claimed by it (commit-ahead). */
  const othersLive = (node: string | null | undefined): boolean => node !== null && node !== undefined && node !== self && ownership.isLive(node);
  // A RUNNING run with a report deadline is not being delivered: it awaits its report, and the
  // slot's owner enforces the deadline (the node that sent it let go of it with the slot).
  const keep = (run: Run): boolean =>
    !mine.has(run.run_id) && !(run.status === 'RUNNING' && run.deadline === null && othersLive(run.node)) && !othersLive(store.heldFires?.claimedBy(run));
  /**
   * Runs that left `mine` while a read of the outbox was under way, per read: the read may show
   * them unfinished although their outcome was written meanwhile (a read of many slots takes a
   * while under load), so that read must not hand them out again.
   */
  const reads = new Set<Set<string>>();
  const forget = (id: string): void => {
    if (!mine.delete(id)) return;
    for (const r of reads) r.add(id);
  };
  // Every run whose outcome was written meanwhile, not only those in `mine`: a run this node took
  // back from the outbox (deliverRun, after a lease lapsed) is delivered here without being in it.
  const finished = (id: string): void => {
    mine.delete(id);
    for (const r of reads) r.add(id);
  };

  const unfinishedRuns: TaskStore['unfinishedRuns'] = async (q) => {
    const out: Awaited<ReturnType<TaskStore['unfinishedRuns']>> = [];
    let after = q.after;
    const finishedMeanwhile = new Set<string>();
    reads.add(finishedMeanwhile);
    try {
      for (;;) {
        const rows = await store.unfinishedRuns({ ...q, after });
        for (const r of rows) {
          after = { time: r.run.scheduled_time, id: r.run.run_id };
          if (!keep(r.run) || finishedMeanwhile.has(r.run.run_id)) continue;
          out.push(r);
          if (ownership.tokenFor(r.run.slot) !== null) mine.add(r.run.run_id);
          if (out.length >= q.limit) return out;
        }
        if (rows.length < q.limit) return out;
      }
    } finally {
      reads.delete(finishedMeanwhile);
    }
  };
  const commitFires: TaskStore['commitFires'] = async (reqs) => {
    const res = await store.commitFires(reqs);
    res.forEach((r, i) => {
      const req = reqs[i]!;
      if (r === 'committed' && req.run.status === 'PENDING') mine.add(req.run.run_id);
    });
    return res;
  };
  const updateRuns: TaskStore['updateRuns'] = async (updates) => {
    await store.updateRuns(updates);
    for (const u of updates) if (u.status !== 'RUNNING') finished(u.run_id);
  };
  // A held fire not claimed here (undone, or its slot lost) is not in flight here any more.
  const held = store.heldFires;
  const heldFires: HeldFireStore | undefined = held && {
    ...held,
    claimFires: async (reqs, node) => {
      const res = await held.claimFires(reqs, node);
      res.forEach((r, i) => {
        if (r !== 'claimed') forget(reqs[i]!.run_id);
      });
      return res;
    },
  };
  const givenBack = async (ids: readonly string[]): Promise<void> => {
    for (const id of ids) forget(id);
    await held?.releaseClaims(ids, self);
  };
  const overrides: Partial<TaskStore> = { unfinishedRuns, commitFires, updateRuns, givenBack, ...(heldFires ? { heldFires } : {}) };
  return new Proxy(store, {
    get(target, prop, _receiver) {
      if (typeof prop === 'string' && prop in overrides) return overrides[prop as keyof TaskStore];
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
