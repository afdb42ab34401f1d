/** The task module: types, validation, schedules, and the pure next-fire calculation. No I/O. */
import { parseSchedule } from './schedule.js';
import type { Task } from './types.js';

export * from './types.js';
export { parseSchedule, parseEvery, parseOneShot, checkTimezone, isQuartz, type Schedule } from './schedule.js';
export { validateCreate, validateUpdate, type UpdateRequest, firstFire, checkUrl, parseRetry, parseCallback, requireObject, isObject, type ValidationLimits, type CreateRequest } from './validate.js';

/** The first fire time of `task` strictly after `afterMs` (null: the task is done). Pure. */
export function nextFire(
  task: Pick<Task, 'type' | 'format' | 'timezone' | 'create_time'> & Partial<Pick<Task, 'start_time' | 'end_time'>>,
  afterMs: number,
): number | null {
  const start = task.start_time ?? null;
  const end = task.end_time ?? null;
  const from = start !== null && task.type === 1 ? Math.max(afterMs, start - 1) : afterMs;
  const next = parseSchedule(task.type, task.format, task.timezone, task.create_time).next(from);
  if (next !== null && end !== null && task.type === 1 && next > end) return null;
  return next;
}
