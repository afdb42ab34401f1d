/**
 * The lookahead window: every task of an owned slot due up to the horizon, in a timer heap keyed
 * by when to commit it. Scans extend the horizon to now + lookahead page by page; a periodic
 * safety rescan loads what a lost notification or another writer left out.
 *
 * Invariant: every active task of an owned slot whose (next_fire_time, id) is at or below the
 * horizon is in the heap. Extra or stale entries are harmless: the compare-and-set in the store
 * refuses a stale tick, and the task is then re-read.
 */
import type { TimerHandle } from '../clock/index.js';
import type { DueKey } from '../store/types.js';
import type { Task } from '../task/index.js';
import { nextTurn, type SchedulerCore } from './core.js';
import { MinHeap } from './heap.js';
import { commitAt } from './plan.js';
import type { Entry } from './types.js';

const MAX_KEY_ID = '\uffff';
/** Rows read per store query when loading the window: small, so that loading never delays a fire. */
const SCAN_PAGE = 500;
/** Rows per query when newly acquired slots are loaded up to the horizon. */
const LOAD_PAGE = 5000;
/** Slots the safety rescan reads at once (each on its own) when a node owns a subset of them. */
const RESCAN_PARALLEL = 16;
const keyLE = (t: number, id: string, k: DueKey): boolean => t < k.time || (t === k.time && id <= k.id);

/** What the window needs to know of the fires held on this node. */
export interface HeldView {
  /** How long before its tick a fire is committed. */
  readonly aheadMs: number;
  /** The tick of the task's fire held here, if any. */
  heldTick(taskId: string): number | undefined;
}

export class Window {
  private readonly heap = new MinHeap<Entry>();
  private readonly entries = new Map<string, Entry>();
  private horizon: DueKey = { time: -Infinity, id: '' };
  private scanTarget = -Infinity;
  private scanTimer: TimerHandle | null = null;
  private scanning: Promise<void> | null = null;
  private scans = 0;
  /** Tasks taken out of the heap for a commit that has not answered yet. */
  readonly committing = new Set<string>();

  /** `wake`: the earliest entry may have changed (the committer re-arms its timer). */
  constructor(
    private readonly c: SchedulerCore,
    private readonly held: HeldView,
    private readonly wake: () => void,
  ) {}

  get size(): number {
    return this.entries.size;
  }
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** A tick at `at` of task `id` belongs in the window (up to the horizon, or the scan under way). */
  covers(at: number, id: string): boolean {
    return keyLE(at, id, this.horizon) || at <= this.scanTarget;
  }

  /** Loads a task at its next tick (committed ahead, but not before a fire of it held here is due). */
  insert(task: Task): void {
    if (task.next_fire_time === null) return;
    let at = commitAt(task, task.next_fire_time, this.held.aheadMs);
    const h = this.held.heldTick(task.id);
    if (h !== undefined && h > at) at = Math.min(h, task.next_fire_time);
    this.put({ at, tick: task.next_fire_time, id: task.id, task });
  }

  /** Puts an entry (new, or reused with a new key) in the heap; the one it replaces goes stale. */
  put(e: Entry): void {
    this.entries.set(e.id, e);
    this.heap.push(e);
  }

  /** The task's entry to reuse (committing it again at its tick), or a new one. */
  entryFor(task: Task, tick: number): Entry {
    const e = this.entries.get(task.id) ?? { at: tick, tick, id: task.id, task };
    e.at = tick;
    e.tick = tick;
    e.task = task;
    return e;
  }

  remove(id: string): void {
    this.entries.delete(id);
  }

  /** A task was created or changed: (re)loads it if it is ours and due inside the horizon. */
  taskChanged(task: Task): void {
    if (task.state !== 'active' || task.next_fire_time === null || this.c.o.ownership.tokenFor(task.slot) === null || !this.covers(task.next_fire_time, task.id)) {
      this.entries.delete(task.id);
      return;
    }
    this.insert(task);
    this.wake();
  }

  /** The earliest live entry (stale heap entries are dropped on the way). */
  peek(): Entry | undefined {
    for (;;) {
      const top = this.heap.peek();
      if (!top) return undefined;
      if (this.entries.get(top.id) === top) return top;
      this.heap.pop(); // stale (removed or replaced)
    }
  }

  /** Takes out the entries due at `now`, at most `limit`, earliest first. */
  takeDue(now: number, limit: number): Entry[] {
    const batch: Entry[] = [];
    while (batch.length < limit) {
      const top = this.peek();
      if (!top || top.at > now) break;
      this.heap.pop();
      this.entries.delete(top.id);
      batch.push(top);
    }
    return batch;
  }

  /** Drops the tasks of slots this node lost. */
  dropSlots(lost: ReadonlySet<number>): void {
    for (const [id, e] of this.entries) if (lost.has(e.task.slot)) this.entries.delete(id);
    this.heap.filter((e) => this.entries.get(e.id) === e);
  }

  /** Newly acquired slots: loads their due tasks up to the current horizon (if a scan set one). */
  async loadSlots(slots: number[]): Promise<void> {
    if (this.horizon.time === -Infinity) return;
    const upTo = this.horizon.time;
    let cursor: DueKey | null = null;
    try {
      for (;;) {
        const rows = await this.c.o.store.dueTasks({ slots, after: cursor, upTo, limit: LOAD_PAGE });
        for (const t of rows) if (this.c.o.ownership.tokenFor(t.slot) !== null) this.insert(t);
        if (rows.length < LOAD_PAGE) break;
        const last = rows[rows.length - 1]!;
        cursor = { time: last.next_fire_time!, id: last.id };
      }
    } catch (e) {
      this.c.storeError(e);
    }
  }

  /** Scans every scanIntervalMs, with a safety rescan every safetyRescanEvery scans. */
  scheduleScan(): void {
    if (this.c.stopped) return;
    this.scanTimer = this.c.o.clock.setTimer(() => {
      this.scans++;
      const safety = this.scans % (this.c.o.safetyRescanEvery ?? 10) === 0;
      void (safety ? this.safetyRescan() : Promise.resolve())
        .then(() => this.scan())
        .finally(() => this.scheduleScan());
    }, this.c.o.scanIntervalMs);
  }

  /** Stops the scans and waits for one in progress. */
  async stop(): Promise<void> {
    this.scanTimer?.cancel();
    this.scanTimer = null;
    if (this.scanning) await this.scanning;
  }

  private slotFilter(): number[] | null {
    const owned = this.c.o.ownership.ownedSlots();
    return owned.length === this.c.o.ownership.slotCount ? null : owned;
  }

  /** Extends the horizon to now + lookahead, page by page, up to maxLoaded entries. */
  scan(): Promise<void> {
    if (this.scanning) return this.scanning;
    this.scanning = (async () => {
      // A scan that finishes without awaiting (no owned slot yet: a node joining a cluster) would
      // run the finally below before `this.scanning` is assigned, leaving it set for good.
      await Promise.resolve();
      try {
        const target = this.c.o.clock.now() + this.c.o.lookaheadMs;
        this.scanTarget = target;
        for (;;) {
          if (this.c.stopped || this.entries.size >= this.c.o.maxLoaded) break;
          const slots = this.slotFilter();
          if (slots !== null && slots.length === 0) {
            this.horizon = { time: target, id: MAX_KEY_ID };
            break;
          }
          const rows = await this.c.o.store.dueTasks({ slots, after: this.horizon.time === -Infinity ? null : this.horizon, upTo: target, limit: SCAN_PAGE });
          for (const t of rows) if (this.c.o.ownership.tokenFor(t.slot) !== null && !this.committing.has(t.id)) this.insert(t);
          if (rows.length < SCAN_PAGE) {
            this.horizon = { time: target, id: MAX_KEY_ID };
            break;
          }
          const last = rows[rows.length - 1]!;
          this.horizon = { time: last.next_fire_time!, id: last.id };
          this.wake();
          await nextTurn();
        }
      } catch (e) {
        this.c.storeError(e);
      } finally {
        this.scanning = null;
        this.wake();
      }
    })();
    return this.scanning;
  }

  /**
   * The safety net: re-reads every due task up to the horizon and loads the ones missing from the
   * heap (a lost notification, a write by another process, a task dropped after a store error).
   */
  async safetyRescan(): Promise<void> {
    if (this.c.stopped || this.horizon.time === -Infinity) return;
    const upTo = this.horizon.time;
    let found = 0;
    try {
      const slots = this.slotFilter();
      if (slots !== null && slots.length === 0) return;
      // The rescan needs no order across slots: with a subset of the slots (a cluster node), each
      // slot is read on its own, RESCAN_PARALLEL at a time (a read over many slots merges them in
      // order, which costs a per-slot cursor lookup on every page).
      const groups: (readonly number[] | null)[] = slots === null ? [null] : slots.map((s) => [s]);
      for (let g = 0; g < groups.length && !this.c.stopped; g += RESCAN_PARALLEL) {
        const counts = await Promise.all(groups.slice(g, g + RESCAN_PARALLEL).map((group) => this.rescanGroup(group, upTo)));
        for (const n of counts) found += n;
      }
    } catch (e) {
      this.c.storeError(e);
    }
    if (found > 0) {
      this.c.o.log.info({ found }, 'safety rescan loaded tasks that were missing from the timer heap');
      this.wake();
    }
  }

  /** Rescans the due tasks of some slots (null: all) page by page; returns how many it loaded. */
  private async rescanGroup(slots: readonly number[] | null, upTo: number): Promise<number> {
    const { store, ownership } = this.c.o;
    let cursor: DueKey | null = null;
    let found = 0;
    for (;;) {
      // Keys only: the tasks already loaded (nearly all) are not read again.
      const keys = await store.dueKeys({ slots, after: cursor, upTo, limit: SCAN_PAGE });
      const n = keys.length;
      if (n > 0) cursor = keys[n - 1]!;
      const missing = keys.filter((k) => !this.entries.has(k.id) && !this.committing.has(k.id));
      const rows = (await Promise.all(missing.map((k) => store.get(k.id)))).filter((t): t is Task => t !== null && t.state === 'active' && t.next_fire_time !== null);
      for (const t of rows) {
        if (this.entries.has(t.id) || this.committing.has(t.id) || ownership.tokenFor(t.slot) === null) continue;
        if (!keyLE(t.next_fire_time!, t.id, this.horizon)) continue;
        this.insert(t);
        found++;
      }
      if (n < SCAN_PAGE || this.c.stopped) return found;
      await nextTurn(); // small pages with the timers in between: a rescan never delays a fire
    }
  }
}
