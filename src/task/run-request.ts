/**
 * A run's one-off request (triggerTask {body, headers}): validated as a task's callback body and
 * headers are (a JSON object within the callback body limit; header names and values by the same
 * rules), kept as the body's JSON text.
 */
import { Codes, XcronError, typeError } from '../errors.js';
import type { RunRequest } from './types.js';
import { isObject, parseHeaders, type ValidationLimits } from './validate.js';

/**
 * The one-off request of a trigger, or null when neither is given. `exactBody`: the body's exact
 * text when parsing changed one of its numbers (see json-text.ts), sent instead of re-encoding it.
 */
export function parseRunRequest(body: unknown, headers: unknown, limits: Pick<ValidationLimits, 'callbackBodyLimit'>, exactBody: string | null = null): RunRequest | null {
  let text: string | null = null;
  if (body !== undefined && body !== null) {
    if (!isObject(body)) throw typeError('body', 'a JSON object', body);
    text = exactBody ?? JSON.stringify(body);
    const size = Buffer.byteLength(text);
    if (size > limits.callbackBodyLimit) throw new XcronError(Codes.TOO_LARGE, 413, `'body' is ${size} bytes, over the callback body limit of ${limits.callbackBodyLimit} bytes`);
  }
  const h = parseHeaders(headers, 'headers');
  if (text === null && h === null) return null;
  return { body: text, headers: h };
}

/** The headers a run sends: the task's, with the run's one-off headers added (a name given in both, in any case, is the run's). */
export function withRunHeaders(task: Record<string, string> | null, run: Record<string, string> | null): Record<string, string> | null {
  if (!run) return task;
  const out: Record<string, string> = {};
  const own = new Set(Object.keys(run).map((k) => k.toLowerCase()));
  for (const [k, v] of Object.entries(task ?? {})) if (!own.has(k.toLowerCase())) out[k] = v;
  return Object.assign(out, run);
}
