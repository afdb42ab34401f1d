/**
 * Batch create in the Redis store. Tasks without an idempotency key or child tasks are grouped by
 * slot and written with one `createMany` script call per slot (all keys of a call share the slot's
 * hash tag, so this works on Redis Cluster too; the calls are pipelined on the connection). Tasks
 * with a key or children need the claim and the child graph around their write: they go through
 * the single create. Each task is atomic on its own (a slot's script writes all of a task or none).
 */
import type { Task } from '../task/index.js';
import { taskFields } from './redis-codec.js';
import type { CreateResult } from './types.js';

/** A lone UTF-16 surrogate as JSON.stringify escapes it (cjson in Redis refuses it). */
const LONE_SURROGATE = /\\ud[89a-f][0-9a-f]{2}/i;

export interface SlotWriter {
  create(task: Task): Promise<CreateResult>;
  /** Runs createMany on a slot with its JSON array argument; per task 1 (created) or 0 (id taken). */
  createInSlot(slot: number, items: string): Promise<number[]>;
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

export async function createInSlots(tasks: readonly Task[], w: SlotWriter): Promise<(CreateResult | Error)[]> {
  const out: (CreateResult | Error | null)[] = new Array<null>(tasks.length).fill(null);
  const bySlot = new Map<number, { at: number[]; items: string[] }>();
  const single: Promise<void>[] = [];
  tasks.forEach((t, i) => {
    const plain = t.idempotency_key === null && !t.on_success?.length;
    const item = plain ? JSON.stringify([t.id, t.state, String(t.next_fire_time ?? ''), String(t.update_time), ...taskFields(t)]) : null;
    if (item === null || LONE_SURROGATE.test(item)) {
      single.push(w.create(t).then((r) => void (out[i] = r), (e: unknown) => void (out[i] = asError(e))));
      return;
    }
    let g = bySlot.get(t.slot);
    if (!g) bySlot.set(t.slot, (g = { at: [], items: [] }));
    g.at.push(i);
    g.items.push(item);
  });
  const grouped = [...bySlot].map(([slot, g]) =>
    w.createInSlot(slot, `[${g.items.join(',')}]`).then(
      (r) => g.at.forEach((i, k) => (out[i] = r[k] === 1 ? { task: tasks[i]!, created: true } : new Error(`task id ${tasks[i]!.id} already exists`))),
      (e: unknown) => g.at.forEach((i) => (out[i] = asError(e))),
    ),
  );
  await Promise.all([...grouped, ...single]);
  return out as (CreateResult | Error)[];
}
