/** The task module: types, validation, schedules, and the pure next-fire calculation. No I/O. */
import { parseSchedule } from './schedule.js';
import type { Task } from './types.js';

export * from './types.js';
export { parseSchedule, parseEvery, parseOneShot, checkTimezone, isQuartz, type Schedule } from './schedule.js';
export { validateCreate, validateUpdate, type UpdateRequest, firstFire, checkUrl, parseRetry, parseCallback, requireObject, isObject, type ValidationLimits, type CreateRequest } from './validate.js';

/** The first fire time of `task` strictly after `afterMs` (null: the task is done). Pure. */
export function nextFire(task: Pick<Task, 'type' | 'format' | 'timezone' | 'create_time'>, afterMs: number): number | null {
  return parseSchedule(task.type, task.format, task.timezone, task.create_time).next(afterMs);
}
