/**
 * Work spread over the slots of the Redis store: which slot holds a task or a run, grouping a batch by slot (one script call per
 * slot), merging per-slot ordered reads into one ordered page, and visiting slots a few at a time.
 */
import { slotOf } from '../task/index.js';
import type { DueKey } from './types.js';

/** Which of the store's `count` slots holds a task or a run. */
export class SlotMap {
  constructor(readonly count: number) {}

  ofTask(id: string): number {
    return slotOf(id, this.count);
  }

  /** A run's slot is its task's: run ids are "<task_id>:<ms>". */
  ofRun(runId: string): number {
    const i = runId.indexOf(':');
    return this.ofTask(i < 0 ? runId : runId.slice(0, i));
  }

  all(): number[] {
    return Array.from({ length: this.count }, (_, i) => i);
  }
}

/**
 * The positions of `items` grouped by key, in order of first appearance (each group in item order);
 * items whose key is null are left out. One script call per group then serves a whole batch.
 */
export function groupBy<T, K>(items: readonly T[], keyOf: (item: T) => K | null): Map<K, number[]> {
  const groups = new Map<K, number[]>();
  items.forEach((item, i) => {
    const k = keyOf(item);
    if (k === null) return;
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  });
  return groups;
}

/** Calls `visit` for every slot, `workers` slots at a time (maintenance over all slots). */
export async function eachSlot(slots: readonly number[], workers: number, visit: (slot: number) => Promise<void>): Promise<void> {
  const queue = [...slots];
  const worker = async (): Promise<void> => {
    for (let s = queue.shift(); s !== undefined; s = queue.shift()) await visit(s);
  };
  await Promise.all(Array.from({ length: workers }, worker));
}

export interface SlotPage<T> {
  items: T[];
  /** The last position read in the slot (the cursor of the next read), null when nothing was read. */
  last: DueKey | null;
  exhausted: boolean;
}

const cmpKey = (a: DueKey, b: DueKey): number => (a.time !== b.time ? a.time - b.time : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * The first `limit` items over several slots in (time, id) order after `after`: a k-way merge
 * that reads each slot in chunks and reads a slot again only when its buffer runs out. A slot's
 * first chunk is its even share of `limit`; each refill of it doubles its chunk (up to what is
 * still wanted, at most 1,000): items spread over many slots are read about once, and a page that
 * lies in a few slots still takes few round trips. (Reading all that is still wanted at the
 * first refill, as before, read up to 2.4 tasks per fire in a 20,000-task burst spread over the
 * slots: what a page did not use was read again by the next.)
 */
export async function mergeSlots<T>(
  slots: readonly number[],
  after: DueKey | null,
  limit: number,
  keyOf: (t: T) => DueKey,
  read: (slot: number, after: DueKey | null, n: number) => Promise<SlotPage<T>>,
  /** -1: in descending (time, id) order, `after` then being the exclusive upper bound. */
  order: 1 | -1 = 1,
): Promise<T[]> {
  if (slots.length === 0 || limit <= 0) return [];
  const first = Math.min(limit, Math.ceil(limit / slots.length) + 2);
  const src = slots.map((slot) => ({ slot, items: [] as T[], pos: 0, cursor: after, exhausted: false, chunk: first }));
  const fill = async (s: (typeof src)[number], n: number): Promise<void> => {
    const p = await read(s.slot, s.cursor, n);
    s.items = p.items;
    s.pos = 0;
    if (p.last) s.cursor = p.last;
    s.exhausted = p.exhausted;
  };
  const out: T[] = [];
  while (out.length < limit) {
    const empty = src.filter((s) => s.pos >= s.items.length && !s.exhausted);
    if (empty.length > 0) {
      const want = Math.min(limit - out.length, 1000);
      await Promise.all(
        empty.map((s) => {
          const n = Math.max(1, Math.min(s.chunk, want));
          s.chunk = Math.min(s.chunk * 2, 1000);
          return fill(s, n);
        }),
      );
      continue;
    }
    let best: (typeof src)[number] | null = null;
    let bestKey: DueKey | null = null;
    for (const s of src) {
      if (s.pos >= s.items.length) continue;
      const k = keyOf(s.items[s.pos]!);
      if (bestKey === null || order * cmpKey(k, bestKey) < 0) {
        best = s;
        bestKey = k;
      }
    }
    if (!best) break;
    out.push(best.items[best.pos++]!);
  }
  return out;
}
