/**
 * A task's pacing options: `jitter_ms` (a periodic task's fire goes out at a deterministic offset
 * in [tick, tick + jitter_ms)), and flow control (`flow_key`: a limit named in the configuration,
 * or `flow`: a limit of the task's own). Parsing and the pure offset calculation; no I/O.
 */
import { createHash } from 'node:crypto';
import { invalidOption, typeError } from '../errors.js';
import { PERIODIC, type FlowLimit, type TaskSpec } from './types.js';

/** The largest jitter: an hour. */
export const MAX_JITTER_MS = 3_600_000;
const MAX_FLOW_RATE = 1_000_000;
const MAX_FLOW_PERIOD_MS = 86_400_000;
const MAX_FLOW_PARALLELISM = 100_000;
/** The flow key of a task's own limit (`flow`) is this plus its id. */
export const TASK_FLOW_PREFIX = 'task:';

function whole(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number') throw typeError(field, 'an integer', v);
  if (Number.isInteger(v) && v >= min && v <= max) return v;
  throw invalidOption(field, `must be an integer from ${min} to ${max}, got ${v}`);
}

/** A task's own flow limit (`flow`); null clears it. */
export function parseFlowLimit(v: unknown): FlowLimit | null {
  if (v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError('flow', 'an object {rate, period_ms, parallelism}', v);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['rate', 'period_ms', 'parallelism'].includes(k)) throw invalidOption(`flow.${k}`, 'unknown field (known fields: rate, period_ms, parallelism)');
  const limit: FlowLimit = {
    rate: o.rate === undefined ? 0 : whole(o.rate, 'flow.rate', 0, MAX_FLOW_RATE),
    period_ms: o.period_ms === undefined ? 1000 : whole(o.period_ms, 'flow.period_ms', 1, MAX_FLOW_PERIOD_MS),
    parallelism: o.parallelism === undefined ? 0 : whole(o.parallelism, 'flow.parallelism', 0, MAX_FLOW_PARALLELISM),
  };
  if (limit.rate === 0 && limit.parallelism === 0) throw invalidOption('flow', 'sets neither a rate nor a parallelism (give rate and period_ms, or parallelism, or both)');
  return limit;
}

/**
 * Applies `jitter_ms`, `flow_key` and `flow` of a create or update body onto the spec (given
 * fields replace the spec's; null clears). `flowKeys`: the configured `[flow.<key>]` names.
 */
export function applyPacingFields(o: Record<string, unknown>, spec: TaskSpec, flowKeys: ReadonlySet<string> | undefined): void {
  if (o.jitter_ms !== undefined) spec.jitter_ms = o.jitter_ms === null ? null : whole(o.jitter_ms, 'jitter_ms', 0, MAX_JITTER_MS) || null;
  if (o.flow_key !== undefined) {
    if (o.flow_key === null) spec.flow_key = null;
    else {
      if (typeof o.flow_key !== 'string') throw typeError('flow_key', 'the name of a configured [flow.<key>] limit (a string)', o.flow_key);
      if (!(flowKeys ?? new Set()).has(o.flow_key)) {
        const known = [...(flowKeys ?? [])];
        throw invalidOption('flow_key', `no flow limit named ${JSON.stringify(o.flow_key.slice(0, 64))} in the configuration (${known.length ? `configured: ${known.join(', ')}` : 'none configured; add [flow.<key>] with rate/period_ms/parallelism'})`);
      }
      spec.flow_key = o.flow_key;
    }
  }
  if (o.flow !== undefined) spec.flow = parseFlowLimit(o.flow);
  if ((spec.jitter_ms ?? null) !== null && spec.type !== PERIODIC) throw invalidOption('jitter_ms', 'applies to periodic tasks (type 1) only');
  if ((spec.flow_key ?? null) !== null && (spec.flow ?? null) !== null) {
    throw invalidOption(o.flow !== undefined && o.flow !== null ? 'flow' : 'flow_key', 'a task has either a named limit (flow_key) or its own (flow), not both; set the other to null');
  }
}

/**
 * The offset of a periodic task's fire after its tick: uniform in [0, jitterMs), the same for the
 * same (seed, task, tick) on every node and after a restart (a hash, not a random draw).
 */
export function jitterOffset(taskId: string, tick: number, jitterMs: number, seed: string): number {
  if (jitterMs <= 1) return 0;
  const h = createHash('sha256').update(`${seed}\u0000${taskId}\u0000${tick}`).digest();
  // 48 bits of the hash as a fraction in [0, 1): uniform enough for any jitter up to an hour.
  return Math.floor((h.readUIntBE(0, 6) / 2 ** 48) * jitterMs);
}

/** When a periodic task's fire of `tick` goes out: the tick plus its jitter offset. */
export function plannedFireTime(task: Pick<TaskSpec, 'type' | 'jitter_ms'> & { id: string }, tick: number, seed: string): number {
  const j = task.jitter_ms ?? 0;
  return task.type === PERIODIC && j > 0 ? tick + jitterOffset(task.id, tick, j, seed) : tick;
}

/** The flow key a task's fires wait on (null: not flow-controlled). */
export function flowKeyOf(task: Pick<TaskSpec, 'flow_key' | 'flow'> & { id: string }): string | null {
  if (task.flow_key) return task.flow_key;
  return task.flow ? TASK_FLOW_PREFIX + task.id : null;
}
