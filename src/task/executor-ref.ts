/**
 * A callback to an executor group (`"callback": {"executor": "billing", "route": "lru"}`) is kept
 * in the task's `callback.url` as `executor:<group>`, with the strategy in `callback.route`: the
 * stores and the scheduler carry it like any URL, and the dispatcher picks a live instance of the
 * group (the executor registry, src/store/executors.ts) for each fire.
 */
import { Codes, XcronError } from '../errors.js';

export const EXECUTOR_SCHEME = 'executor:';
/** An executor group's name. */
export const EXECUTOR_GROUP_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

export const executorUrl = (group: string): string => `${EXECUTOR_SCHEME}${group}`;

/** The group an `executor:` URL names, or null when the URL is not one. */
export function parseExecutorUrl(url: string): string | null {
  return url.startsWith(EXECUTOR_SCHEME) ? url.slice(EXECUTOR_SCHEME.length) : null;
}

/** A valid group name, or a 400 with code 1025 naming `field`. */
export function checkExecutorGroup(v: unknown, field: string): string {
  if (typeof v === 'string' && EXECUTOR_GROUP_RE.test(v)) return v;
  const got = typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : v === undefined || v === null ? 'nothing' : typeof v;
  throw new XcronError(Codes.EXECUTOR_GROUP, 400, `'${field}' must be an executor group name of 1 to 64 characters (A-Z a-z 0-9 _ . : -), got ${got}`);
}
