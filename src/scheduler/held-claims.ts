/**
 * Held fires claimed in a store shared by nodes (HeldFireStore): any node undoes a fire committed
 * ahead there (the API node is not the fire's owner), and the owner claims it CLAIM_LEAD_MS before
 * its due time, delivering it only if the claim wins over an undo.
 */
import type { ClaimResult, HeldFireStore } from '../store/types.js';
import type { Task } from '../task/index.js';
import type { SchedulerCore } from './core.js';
import { HeldFires, type Held, type HeldDelivery } from './held.js';
import type { Dispatch } from './types.js';

/** How long a claim waits after the store failed to answer (claiming twice answers the same). */
const CLAIM_RETRY_MS = 250;

export class StoreClaims extends HeldFires {
  readonly claimsAhead = true;
  private queued: Held[] = [];
  /** Held fires handed to a claim that has not answered yet, by run id. */
  private readonly claiming = new Map<string, Held>();
  private flushQueued = false;

  constructor(
    c: SchedulerCore,
    delivery: HeldDelivery,
    aheadMs: number,
    private readonly store: HeldFireStore,
  ) {
    super(c, delivery, aheadMs);
  }

  holdCommitted(d: Dispatch, _undo: unknown, ahead: boolean): void {
    this.hold({ tick: d.scheduled, id: d.run_id, d, undo: null, claim: ahead });
  }

  protected inClaim(runId: string): Held | undefined {
    return this.claiming.get(runId);
  }

  /** The store undoes it (from any node; the owner's claim before the due time then answers 'undone'). */
  async cancelAhead(taskId: string): Promise<void> {
    if (this.aheadMs === 0 || this.c.stopped) return;
    let undone = false;
    try {
      undone = await this.store.uncommitHeld(taskId);
    } catch (e) {
      this.c.storeError(e);
    }
    if (!undone) return;
    const h = this.byTask.get(taskId);
    if (h) this.unhold(h);
    this.c.o.log.debug({ task_id: taskId }, 'fire committed ahead undone before the task changed');
  }

  /** Held in the shared store: shown as before that commit on every node. */
  viewOf(task: Task): Task {
    const sh = this.store.heldOf(task);
    if (!sh || task.last_fire_time !== sh.tick) return task;
    return { ...task, state: task.state === 'completed' ? 'active' : task.state, next_fire_time: sh.tick, run_count: task.run_count - 1, last_fire_time: sh.last_fire_time };
  }

  /** Queues a due held fire for its claim; the queue goes to the store once per event-loop turn. */
  protected claim(h: Held): void {
    this.claiming.set(h.id, h);
    this.queued.push(h);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      const batch = this.queued;
      this.queued = [];
      void this.claimAndDispatch(batch);
    });
  }

  /**
   * Claims due held fires in the store, then delivers those claimed. Undone ones (the task changed
   * or was deleted before their time, through any node) are dropped; fenced ones mean the slot was
   * lost (its new owner delivers them). If the store cannot answer, the claim is retried: claiming
   * twice answers the same.
   */
  private async claimAndDispatch(batch: Held[]): Promise<void> {
    if (this.c.stopped || batch.length === 0) return;
    const { ownership, nodeId, clock, log } = this.c.o;
    let res: ClaimResult[];
    const reqs = batch.map((h) => ({ slot: h.d.task.slot, token: ownership.tokenFor(h.d.task.slot), task_id: h.d.task.id, run_id: h.id }));
    try {
      res = await this.store.claimFires(reqs, nodeId);
    } catch (e) {
      this.c.storeError(e);
      if (!this.c.stopped) clock.setTimer(() => void this.claimAndDispatch(batch), CLAIM_RETRY_MS);
      return;
    }
    const now = clock.now();
    const fenced = new Set<number>();
    for (let i = 0; i < batch.length; i++) {
      const h = batch[i]!;
      const r = res[i];
      if (this.claiming.get(h.id) === h) this.claiming.delete(h.id);
      if (h.superseded) continue; // committed again meanwhile: that commit delivers it
      if (r === 'claimed') {
        // Sent only under the lease it was claimed with (a claim answered 'claimed' had a valid token).
        h.d.token = reqs[i]!.token ?? h.d.token;
        if (h.tick > now) {
          // Claimed ahead of its tick: it no longer can be undone, and goes out at its time.
          this.hold({ tick: h.tick, id: h.id, d: h.d, undo: null, claim: false, claimed: true });
          continue;
        }
        this.c.events.emit('released', { task_id: h.d.task.id, run_id: h.id, scheduled_time: h.tick, released_at: now });
        this.delivery.dispatch(h.d);
      } else if (r === 'fenced') {
        if (ownership.tokenFor(h.d.task.slot) !== null) fenced.add(h.d.task.slot);
      } else {
        log.debug({ task_id: h.d.task.id, fire_id: h.id }, 'fire committed ahead was undone before its time (the task changed)');
      }
    }
    for (const slot of fenced) {
      log.warn({ slot }, 'fencing token refused at claim: slot lost, not firing');
      this.c.fenced(slot);
    }
  }
}
