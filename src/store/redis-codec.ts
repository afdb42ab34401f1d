/**
 * The Redis store's encoding: a task or run is a hash; scalars are plain text, null is an absent
 * field, any other field is JSON under `j:<name>` (so fields added to Task later are stored without
 * changes here). Also the forms of script arguments (opt, optText, packed).
 */
import type { Run, Task } from '../task/index.js';
import type { SlotPage } from './redis-slots.js';
import type { DueKey, HeldFire, RunUpdate, TaskChanges } from './types.js';

type Kind = 'str' | 'int';
export const TASK_SCALARS: Record<string, { kind: Kind; nullable: boolean }> = {
  id: { kind: 'str', nullable: false },
  slot: { kind: 'int', nullable: false },
  type: { kind: 'int', nullable: false },
  format: { kind: 'str', nullable: false },
  name: { kind: 'str', nullable: true },
  state: { kind: 'str', nullable: false },
  next_fire_time: { kind: 'int', nullable: true },
  create_time: { kind: 'int', nullable: false },
  update_time: { kind: 'int', nullable: false },
  last_fire_time: { kind: 'int', nullable: true },
  last_status: { kind: 'str', nullable: true },
  run_count: { kind: 'int', nullable: false },
  idempotency_key: { kind: 'str', nullable: true },
};
const RUN_SCALARS: Record<string, { kind: Kind; nullable: boolean }> = {
  run_id: { kind: 'str', nullable: false },
  task_id: { kind: 'str', nullable: false },
  slot: { kind: 'int', nullable: false },
  node: { kind: 'str', nullable: true },
  scheduled_time: { kind: 'int', nullable: false },
  start_time: { kind: 'int', nullable: true },
  end_time: { kind: 'int', nullable: true },
  attempts: { kind: 'int', nullable: false },
  status: { kind: 'str', nullable: false },
  http_status: { kind: 'int', nullable: true },
  error: { kind: 'str', nullable: true },
  duration_ms: { kind: 'int', nullable: true },
  response_body: { kind: 'str', nullable: true },
  deadline: { kind: 'int', nullable: true },
  message: { kind: 'str', nullable: true },
  output: { kind: 'str', nullable: true },
  retried_by: { kind: 'str', nullable: true },
};
/** Run fields kept for the store's own use (not part of Run). */
const RUN_INTERNAL = new Set(['created', 'tok', 'retrying']);

/** A task as a flat field/value list for HSET. */
export function taskFields(t: Task): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(t)) {
    if (v === undefined) continue;
    if (k in TASK_SCALARS) {
      if (v !== null) out.push(k, String(v));
    } else {
      out.push(`j:${k}`, JSON.stringify(v));
    }
  }
  return out;
}

function decode(flat: unknown, scalars: Record<string, { kind: Kind; nullable: boolean }>, internal?: Set<string>): Record<string, unknown> {
  const arr = flat as string[];
  const o: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(scalars)) if (spec.nullable) o[k] = null;
  for (let i = 0; i + 1 < arr.length; i += 2) {
    const k = arr[i]!;
    const v = arr[i + 1]!;
    if (k.startsWith('j:')) o[k.slice(2)] = JSON.parse(v) as unknown;
    else if (internal?.has(k)) continue;
    else {
      const spec = scalars[k];
      o[k] = spec?.kind === 'int' ? Number(v) : v;
    }
  }
  return o;
}

/**
 * What a read saw of the held-fire fields (h_*, claimed_by), kept beside the object it decoded
 * (never a field of it: never serialised, never written back). Read through HeldFireStore.
 */
export const heldMarks = new WeakMap<Task, HeldFire>();
export const claimMarks = new WeakMap<Run, string>();

/** A task hash: the fields of Task; its held-fire marker (h_*) goes to heldMarks. */
export function decodeTask(flat: unknown): Task {
  const o = decode(flat, TASK_SCALARS);
  if (o.h_run !== undefined) {
    const held: HeldFire = { run_id: o.h_run as string, tick: Number(o.h_tick), last_fire_time: o.h_last === '' || o.h_last === undefined ? null : Number(o.h_last) };
    heldMarks.set(o as unknown as Task, held);
  }
  delete o.h_run;
  delete o.h_tick;
  delete o.h_last;
  delete o.g_rev; // the child-graph write counter (RedisChildGraph), not a Task field
  if (o.tags === undefined) o.tags = null; // tasks written before tags existed
  if (o.pause === null) delete o.pause; // cleared on resume: absent, as a task never paused
  return o as unknown as Task;
}

/** updateTask's changes as fields to set (field, value, …) and fields to delete (set to null). */
export function changeFields(changes: TaskChanges): { set: string[]; del: string[] } {
  const set: string[] = [];
  const del: string[] = [];
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) continue;
    if (k in TASK_SCALARS) {
      if (v === null) del.push(k);
      else set.push(k, String(v));
    } else {
      set.push(`j:${k}`, JSON.stringify(v));
    }
  }
  return { set, del };
}

export function decodeRun(flat: unknown): Run {
  const o = decode(flat, RUN_SCALARS, RUN_INTERNAL);
  if (o.shards === undefined) o.shards = null;
  if (o.request === undefined) o.request = null;
  if (o.claimed_by !== undefined) claimMarks.set(o as unknown as Run, o.claimed_by as string);
  delete o.claimed_by;
  return o as unknown as Run;
}

/** A nullable script argument: '' is null, else '=' + the value. */
export const opt = (v: string | number | null | undefined): string => (v === null || v === undefined ? '' : `=${v}`);
/** opt() of free text (an error, a response body): a lone UTF-16 surrogate becomes U+FFFD, as
 * when the string is sent as UTF-8, so the JSON of a batch (packed()) always decodes in Redis. */
export const optText = (v: string | null | undefined): string => (v === null || v === undefined ? '' : `=${(v as WellFormed).toWellFormed()}`);
type WellFormed = string & { toWellFormed(): string };
/**
 * A batch of script arguments as one JSON array of strings (ARGV[1]; the script decodes it with
 * cjson): the hot batch scripts take thousands of values per call, and one string costs the
 * client and Redis far less to frame and parse than an argument each.
 */
export const packed = (values: readonly string[]): string => JSON.stringify(values);

/** A run update as the values updateRuns-1.lua reads for it (14 per update). */
export function runUpdateArgs(u: RunUpdate): string[] {
  return [
    u.run_id,
    u.task_id,
    u.status,
    String(u.attempts),
    opt(u.node),
    opt(u.start_time),
    opt(u.end_time),
    opt(u.http_status),
    optText(u.error),
    opt(u.duration_ms),
    optText(u.response_body),
    optText(u.shards ? JSON.stringify(u.shards) : null),
    u.deadline === undefined ? '' : u.deadline === null ? '!' : `=${u.deadline}`,
    u.retrying === undefined ? '' : u.retrying ? '1' : '0',
  ];
}

/** A read cursor as two script arguments (time, id); '' and '' for the start. */
export const cursorArgs = (after: DueKey | null): [number | string, string] => (after ? [after.time, after.id] : ['', '']);

/** A per-slot page as dueTasks-1.lua and unfinishedRuns-1.lua answer it: [exhausted, last time, last id, item…]. */
export function timedPage<T>(r: unknown[], item: (x: unknown) => T): SlotPage<T> {
  return {
    exhausted: r[0] === 1,
    last: r[1] === '' ? null : { time: Number(r[1]), id: r[2] as string },
    items: r.slice(3).map(item),
  };
}
