/** The note an operator gives when pausing (pauseTask, pauseTasks), and the auto-pause reason. */
import { invalidOption, typeError } from '../errors.js';
import type { PauseInfo, Run } from './types.js';

export const MAX_PAUSE_NOTE = 500;
/** Control characters other than tab and line feed (a note is plain text shown in the dashboard). */
const CONTROL_RE = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** A `note`: absent, null or blank is none; else a string of at most 500 characters, trimmed. */
export function parsePauseNote(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw typeError('note', 'a string', v);
  const note = v.trim();
  if (note.length > MAX_PAUSE_NOTE) throw invalidOption('note', `at most ${MAX_PAUSE_NOTE} characters, got ${note.length}`);
  if (CONTROL_RE.test(note)) throw invalidOption('note', 'control characters other than tab and line feed are not allowed');
  return note === '' ? null : note;
}

/** An operator's pause. */
export const manualPause = (note: string | null, by: string | null, at: number): PauseInfo => ({ kind: 'manual', note, by, at });

/** The pause after `limit` consecutive failures, with the newest failure's error as its reason. */
export function autoPause(limit: number, newest: Pick<Run, 'error' | 'http_status'> | undefined, at: number): PauseInfo {
  const error = newest?.error ?? (newest?.http_status != null ? `HTTP ${newest.http_status}` : 'unknown error');
  const note = `auto-paused after ${limit} consecutive failure${limit === 1 ? '' : 's'}: ${error}`;
  return { kind: 'auto', note: note.length > MAX_PAUSE_NOTE ? `${note.slice(0, MAX_PAUSE_NOTE - 1)}…` : note, by: null, at };
}
