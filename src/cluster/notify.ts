/**
 * ClusterNotifier: the API's Notifier in cluster mode. Any node serves any request; a change to a
 * task whose slot another node owns is published on `<prefix>:changes`, and the owner reacts:
 * re-reads the task from the store (so messages carry only ids, and a late or reordered message
 * can never install a stale copy), or delivers a manual run from the outbox. Changes to slots this
 * node owns go straight to the local scheduler.
 *
 * Pub/sub is at-most-once: when the feed reconnects (messages may have been missed) the owned
 * slots are re-announced, which makes the scheduler reload its window; the periodic re-announce
 * and the scheduler's rescans are the safety net.
 */
import type { Logger } from 'pino';
import type { RedisClient } from '../redis/connection.js';
import { RedisKeys } from '../redis/keys.js';
import type { TaskStore } from '../store/types.js';
import type { Task } from '../task/index.js';

/** Where the API tells the scheduler (or, in a cluster, the slot owner) about changes. */
export interface Notifier {
  /**
   * Before the API updates, pauses or deletes a task: undo a fire of it that was committed ahead
   * of its due time and is still held (standalone; see Scheduler.cancelAhead).
   */
  beforeChange?(id: string): Promise<void>;
  taskChanged(task: Task): void;
  taskRemoved(id: string, slot: number): void;
  /** A manual run was recorded in the outbox; the slot owner should deliver it now. */
  runQueued(runId: string, slot: number): void;
  /** An async run was closed by a report; the slot owner stops its deadline (cluster: pub/sub). */
  runReported?(runId: string, slot: number): void;
}

/** What the notifier drives on the owning node (the Scheduler). */
export interface ChangeTarget {
  /** Undoes a fire of the task committed ahead and not yet claimed (in the store: any node may). */
  cancelAhead(taskId: string): Promise<void>;
  taskChanged(task: Task): void;
  taskRemoved(id: string): void;
  deliverRun(runId: string): Promise<void>;
  releaseReported(runId: string): void;
}

/** The slot-ownership view the notifier needs. */
export interface OwnerView {
  tokenFor(slot: number): number | null;
  reannounce(reason: string): void;
}

/**
 * A change message: c = task changed, r = task removed, q = manual run queued, d = async run closed
 * by a report (for q and d the id is the run id).
 */
interface ChangeMessage {
  k: 'c' | 'r' | 'q' | 'd';
  id: string;
  slot: number;
}

export interface ClusterNotifierOptions {
  /** Publishes (any connection). */
  pub: RedisClient;
  /** A connection of its own, used only for the subscription. */
  sub: RedisClient;
  prefix: string;
  ownership: OwnerView;
  store: TaskStore;
  log: Logger;
}

export class ClusterNotifier implements Notifier {
  private target: ChangeTarget | null = null;
  private readonly channel: string;
  private subscribed = false;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly onMessage = (channel: string, message: string): void => {
    if (channel === this.channel) this.receive(message);
  };
  private readonly onReady = (): void => {
    if (!this.subscribed || this.closed) return;
    // Reconnected: resubscription is automatic, but messages sent meanwhile are gone.
    setTimeout(() => this.o.ownership.reannounce('change feed reconnected'), 200).unref();
  };

  constructor(private readonly o: ClusterNotifierOptions) {
    this.channel = new RedisKeys(o.prefix).changes();
  }

  /** Sets the local scheduler (built after the notifier). */
  attach(target: ChangeTarget): void {
    this.target = target;
  }

  async start(): Promise<void> {
    this.o.sub.on('message', this.onMessage);
    this.o.sub.on('ready', this.onReady);
    await this.o.sub.subscribe(this.channel);
    this.subscribed = true;
  }

  /** True while the change feed is connected. */
  connected(): boolean {
    return this.subscribed && !this.closed && this.o.sub.status === 'ready';
  }

  async beforeChange(id: string): Promise<void> {
    await this.target?.cancelAhead(id);
  }

  taskChanged(task: Task): void {
    if (this.o.ownership.tokenFor(task.slot) !== null) this.target?.taskChanged(task);
    else this.publish({ k: 'c', id: task.id, slot: task.slot });
  }

  taskRemoved(id: string, slot: number): void {
    this.target?.taskRemoved(id);
    if (this.o.ownership.tokenFor(slot) === null) this.publish({ k: 'r', id, slot });
  }

  runQueued(runId: string, slot: number): void {
    if (this.o.ownership.tokenFor(slot) !== null) void this.target?.deliverRun(runId);
    else this.publish({ k: 'q', id: runId, slot });
  }

  /**
   * An async run was closed by a report through this node: the node awaiting it (its deliverer,
   * usually the slot's owner) stops the deadline and ends its in-flight state.
   */
  runReported(runId: string, slot: number): void {
    this.target?.releaseReported(runId);
    this.publish({ k: 'd', id: runId, slot });
  }

  private publish(m: ChangeMessage): void {
    this.o.pub.publish(this.channel, JSON.stringify(m)).catch((err: unknown) => {
      // The owner still finds the change: its rescan, or the reload after it (re)acquires the slot.
      this.o.log.warn({ err: (err as Error).message, task_id: m.id, slot: m.slot }, 'could not publish a task change; the owner picks it up on its next reload');
    });
  }

  private receive(raw: string): void {
    let m: ChangeMessage;
    try {
      m = JSON.parse(raw) as ChangeMessage;
    } catch {
      this.o.log.warn({ message: raw.slice(0, 200) }, 'unreadable change message ignored');
      return;
    }
    const target = this.target;
    if (!target || typeof m.id !== 'string' || typeof m.slot !== 'number') return;
    if (m.k === 'd') {
      // Whoever awaits the run lets go (it may have delivered it before the slot moved).
      target.releaseReported(m.id);
      return;
    }
    if (this.o.ownership.tokenFor(m.slot) === null) return; // not ours
    switch (m.k) {
      case 'c':
        this.o.store.get(m.id).then(
          (t) => (t ? target.taskChanged(t) : target.taskRemoved(m.id)),
          (err: unknown) => this.o.log.warn({ err: (err as Error).message, task_id: m.id }, 'could not re-read a changed task; the next reload picks it up'),
        );
        break;
      case 'r':
        target.taskRemoved(m.id);
        break;
      case 'q':
        void target.deliverRun(m.id);
        break;
    }
  }

  /** Unsubscribes and quits the feed connection. Safe to call twice: returns the same promise. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.o.sub.off('message', this.onMessage);
      this.o.sub.off('ready', this.onReady);
      try {
        await this.o.sub.quit();
      } catch {
        this.o.sub.disconnect();
      }
    })();
    return this.closing;
  }
}
