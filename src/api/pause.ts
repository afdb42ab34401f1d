/** Who pauses a task through the API (the token's name) and their note: pauseTask, pauseTasks, updateTask. */
import type { Context } from 'hono';
import type { PauseBy } from '../service/index.js';
import { parsePauseNote } from '../task/index.js';
import { principalOf } from './auth.js';

/** The caller (the API token's name; null without tokens) and the body's `note`, validated. */
export function pauseByOf(c: Context, note?: unknown): PauseBy {
  return { note: parsePauseNote(note), by: principalOf(c)?.id ?? null };
}
