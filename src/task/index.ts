/** The task module: types, validation, schedules, and the pure next-fire calculation. No I/O. */
import { parseSchedule } from './schedule.js';
import type { Task } from './types.js';

export * from './types.js';
export { parseSchedule, parseEvery, parseOneShot, checkTimezone, isQuartz, type Schedule } from './schedule.js';
export { depthWithin, validateCreate, validateUpdate, type UpdateRequest, firstFire, checkUrl, parseRetry, parseCallback, requireObject, isObject, type ValidationLimits, type CreateRequest } from './validate.js';

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

/**
 * A millisecond at or after `from` that is not one of the task's scheduled ticks, for the fire id
 * of a manual run (triggerTask, child tasks): a manual run never takes a tick's fire id.
 */
export function manualFireTime(task: Parameters<typeof nextFire>[0], from: number): number {
  let t = from;
  for (let i = 0; i < 1000; i++, t++) {
    const tick = nextFire(task, t - 1);
    if (tick !== t) return t;
  }
  return t;
}
export { reportToken, checkReportToken } from './token.js';
export { slotOf } from './slot.js';
export { arrayItemTexts, exactBodyText, mayLoseNumbers } from './json-text.js';
export { TARGET_SCHEME, TARGET_NAME_RE, isTargetUrl, parseTargetUrl, targetUrl, type TargetRef } from './target-ref.js';
export { EXECUTOR_SCHEME, EXECUTOR_GROUP_RE, checkExecutorGroup, executorUrl, parseExecutorUrl } from './executor-ref.js';
export { parseTags, tagProblem, MAX_TAGS } from './tags.js';
export { parseRunRequest, withRunHeaders } from './run-request.js';
export { describeSchedule } from './describe.js';
export { CallbackInput, CreateTaskInput, RetryInput, UpdateTaskInput } from './schema.js';
export { parsePauseNote, manualPause, autoPause, MAX_PAUSE_NOTE } from './pause-note.js';
export { applyPacingFields, flowKeyOf, jitterOffset, plannedFireTime, parseFlowLimit, MAX_JITTER_MS, TASK_FLOW_PREFIX } from './flow.js';
