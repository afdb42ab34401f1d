/**
 * The error codes as the contract states them: each code's HTTP statuses and meaning, and which
 * codes an operation can answer (its own plus those of its kind: a body, auth, rate limit, store).
 */
import { Codes, type Code } from '../../errors.js';
import type { Operation } from './registry.js';

export interface CodeInfo {
  statuses: readonly number[];
  meaning: string;
}

/**
 * Every public code (src/errors.ts) with its meaning, grouped by the HTTP statuses it comes with.
 * A test keeps this table and the codes in step.
 */
const CODES_BY_STATUSES: readonly (readonly [statuses: readonly number[], meanings: Partial<Record<Code, string>>])[] = [
  [[200], { [Codes.OK]: 'success' }],
  [[400, 415], { [Codes.BAD_JSON]: 'body is not valid JSON, not JSON at all (415), a field has the wrong JSON type, a required field is missing, or an unknown field' }],
  [
    [400],
    {
      [Codes.ONESHOT_FORMAT]: 'one-shot `format` is not a unix timestamp (10-digit seconds or 13-digit ms)',
      [Codes.ONESHOT_TIME]: 'one-shot timestamp is in the past (more than 1 s ago)',
      [Codes.CALLBACK_URL]: 'callback url missing or invalid (absolute http/https URL, no credentials)',
      [Codes.CRON_INVALID]: "cron expression invalid (the message includes the parser's reason)",
      [Codes.TIMEZONE]: 'unknown timezone',
      [Codes.INVALID_OPTION]: 'invalid option value (retry, timeout_ms, misfire, overlap, headers, window, children, limit, cursor, …)',
      [Codes.SSRF_REFUSED]: 'callback url refused by the destination policy (SSRF guard)',
      [Codes.UNSUPPORTED_TYPE]: 'unsupported task `type`',
      [Codes.UNKNOWN_TARGET]: 'unknown queue target in `callback.target` (the message lists the configured names)',
      [Codes.EXECUTOR_GROUP]: 'invalid executor group name (`group`, or `callback.executor` of a task): 1 to 64 characters of A-Z a-z 0-9 _ . : -',
      [Codes.EXECUTOR_ADDRESS]: 'executor `address` missing or invalid (an absolute http/https callback URL without credentials)',
    },
  ],
  [
    [503],
    {
      [Codes.STORE_WRITE]: 'store failure while writing (retry)',
      [Codes.STORE_UNAVAILABLE]: 'store unavailable while reading, or the node is not ready (retry)',
    },
  ],
  [
    [404],
    {
      [Codes.TASK_NOT_FOUND]: 'task (or run) not found',
      [Codes.ROUTE_NOT_FOUND]: 'no such endpoint',
      [Codes.RUN_NOT_FOUND]: 'run not found (retryRun)',
      [Codes.EXECUTOR_NOT_FOUND]: 'no such executor instance registered (unregisterExecutor)',
    },
  ],
  [[413], { [Codes.TOO_LARGE]: 'request body or callback body too large' }],
  [[401, 403], { [Codes.UNAUTHORIZED]: 'unauthorized (401: no or unknown token) / forbidden (403: the token lacks the role, or a wrong report token)' }],
  [[405], { [Codes.METHOD_NOT_ALLOWED]: 'method not allowed (the `Allow` header lists the right one)' }],
  [[429], { [Codes.RATE_LIMITED]: 'rate limited (`Retry-After` says when to retry)' }],
  [
    [409],
    {
      [Codes.RUN_CLOSED]: 'the run is already closed with another outcome (reportRun)',
      [Codes.RUN_NOT_ASYNC]: 'the run is a sync run and takes no report (reportRun)',
      [Codes.RUN_NOT_FAILED]: 'the run is not a finished FAIL run, so it cannot be retried (retryRun)',
      [Codes.RUN_RETRIED]: 'the run was retried already (retryRun; the message names the retry run)',
    },
  ],
  [[500], { [Codes.INTERNAL]: 'internal error (a bug; the log has the request uuid)' }],
];

/** Each public code's statuses and meaning. */
export const CODE_INFO = Object.fromEntries(CODES_BY_STATUSES.flatMap(([statuses, meanings]) => Object.entries(meanings).map(([code, meaning]) => [code, { statuses, meaning }]))) as Record<Code, CodeInfo>;

const RATE_LIMITED_PREFIXES = ['/xcron/', '/ui/api/'];

/** The codes an operation can answer besides 0, with the statuses each comes with on it. */
export function errorCodesOf(op: Operation): Map<number, Set<Code>> {
  const codes = new Set<Code>(op.errors ?? []);
  codes.add(Codes.INTERNAL);
  if (op.body) {
    codes.add(Codes.BAD_JSON);
    codes.add(Codes.TOO_LARGE);
  }
  if (op.access === 'read' || op.access === 'admin' || op.access === 'executor' || op.access === 'metrics') codes.add(Codes.UNAUTHORIZED);
  if (op.rateLimited ?? RATE_LIMITED_PREFIXES.some((p) => op.path.startsWith(p))) codes.add(Codes.RATE_LIMITED);
  if (op.store === 'read') codes.add(Codes.STORE_UNAVAILABLE);
  if (op.store === 'write') codes.add(Codes.STORE_WRITE);
  const byStatus = new Map<number, Set<Code>>();
  for (const code of codes) {
    for (const status of statusesOf(op, code)) {
      let set = byStatus.get(status);
      if (!set) byStatus.set(status, (set = new Set()));
      set.add(code);
    }
  }
  return new Map([...byStatus].sort(([a], [b]) => a - b));
}

/** The statuses `code` comes with on `op` (415 only where a body is read; 403 only where a role or a token is checked). */
function statusesOf(op: Operation, code: Code): readonly number[] {
  if (code === Codes.BAD_JSON) return op.body ? [400, 415] : [400];
  // 403 also on read endpoints: an `executor` token may call only its two endpoints.
  if (code === Codes.UNAUTHORIZED) return [401, 403];
  return CODE_INFO[code].statuses;
}
