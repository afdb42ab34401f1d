/**
 * Shared helpers for the component tests: Task objects built the way the API builds them
 * (validateCreate fills in every spec field), temp directories, a silent logger.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { slotOf } from '../../src/cluster/index.js';
import { validateCreate, type Task, type TaskState } from '../../src/task/index.js';

export const T0 = Date.UTC(2026, 0, 1); // 2026-01-01T00:00:00Z
export const SLOTS = 256;
export const silentLog = pino({ level: 'silent' });

export interface TaskOptions {
  id: string;
  /** Cron expression or one-shot timestamp (default: every minute). */
  format?: string;
  type?: 1 | 2;
  /** Creation time (validation "now"); default T0. */
  createdAt?: number;
  /** Overrides the computed first fire time. */
  next_fire_time?: number | null;
  state?: TaskState;
  /** Any other createTask body fields (misfire, overlap, idempotency_key, callback …). */
  body?: Record<string, unknown>;
  slots?: number;
}

/** A Task as the API would create it. */
export function makeTask(o: TaskOptions): Task {
  const createdAt = o.createdAt ?? T0;
  const req = validateCreate(
    { type: o.type ?? 1, format: o.format ?? '* * * * *', callback: { url: 'http://127.0.0.1:9/hook', body: { id: o.id } }, ...o.body },
    createdAt,
    { defaultTimezone: 'UTC', callbackBodyLimit: 65_536, pastGraceMs: 1000 },
  );
  return {
    ...req.spec,
    id: o.id,
    slot: slotOf(o.id, o.slots ?? SLOTS),
    state: o.state ?? (req.paused ? 'paused' : 'active'),
    create_time: createdAt,
    update_time: createdAt,
    next_fire_time: o.next_fire_time === undefined ? req.next_fire_time : o.next_fire_time,
    last_fire_time: null,
    last_status: null,
    run_count: 0,
  };
}

/** One-shot at `at` (ms), created at `createdAt` (default: one minute before). */
export function oneShot(id: string, at: number, createdAt = at - 60_000, over: Partial<TaskOptions> = {}): Task {
  return makeTask({ id, type: 2, format: String(at), createdAt, ...over });
}

/** `n` task ids whose slots (mod SLOTS) are pairwise distinct. */
export function idsInDistinctSlots(n: number, prefix = 'slot-task'): string[] {
  const seen = new Set<number>();
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const id = `${prefix}-${i}`;
    const s = slotOf(id, SLOTS);
    if (seen.has(s)) continue;
    seen.add(s);
    out.push(id);
  }
  return out;
}

export function tempDir(prefix = 'xcron-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
