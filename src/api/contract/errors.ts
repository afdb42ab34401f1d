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

/** Every public code (src/errors.ts), with the statuses it comes with. A test keeps both in step. */
export const CODE_INFO: Record<Code, CodeInfo> = {
  [Codes.OK]: { statuses: [200], meaning: 'success' },
  [Codes.BAD_JSON]: { statuses: [400, 415], meaning: 'body is not valid JSON, not JSON at all (415), a field has the wrong JSON type, a required field is missing, or an unknown field' },
  [Codes.ONESHOT_FORMAT]: { statuses: [400], meaning: 'one-shot `format` is not a unix timestamp (10-digit seconds or 13-digit ms)' },
  [Codes.ONESHOT_TIME]: { statuses: [400], meaning: 'one-shot timestamp is in the past (more than 1 s ago)' },
  [Codes.CALLBACK_URL]: { statuses: [400], meaning: 'callback url missing or invalid (absolute http/https URL, no credentials)' },
  [Codes.STORE_WRITE]: { statuses: [503], meaning: 'store failure while writing (retry)' },
  [Codes.CRON_INVALID]: { statuses: [400], meaning: "cron expression invalid (the message includes the parser's reason)" },
  [Codes.TIMEZONE]: { statuses: [400], meaning: 'unknown timezone' },
  [Codes.TASK_NOT_FOUND]: { statuses: [404], meaning: 'task (or run) not found' },
  [Codes.TOO_LARGE]: { statuses: [413], meaning: 'request body or callback body too large' },
  [Codes.INVALID_OPTION]: { statuses: [400], meaning: 'invalid option value (retry, timeout_ms, misfire, overlap, headers, window, children, limit, cursor, …)' },
  [Codes.UNAUTHORIZED]: { statuses: [401, 403], meaning: 'unauthorized (401: no or unknown token) / forbidden (403: the token lacks the role, or a wrong report token)' },
  [Codes.SSRF_REFUSED]: { statuses: [400], meaning: 'callback url refused by the destination policy (SSRF guard)' },
  [Codes.ROUTE_NOT_FOUND]: { statuses: [404], meaning: 'no such endpoint' },
  [Codes.METHOD_NOT_ALLOWED]: { statuses: [405], meaning: 'method not allowed (the `Allow` header lists the right one)' },
  [Codes.RATE_LIMITED]: { statuses: [429], meaning: 'rate limited (`Retry-After` says when to retry)' },
  [Codes.STORE_UNAVAILABLE]: { statuses: [503], meaning: 'store unavailable while reading, or the node is not ready (retry)' },
  [Codes.RUN_CLOSED]: { statuses: [409], meaning: 'the run is already closed with another outcome (reportRun)' },
  [Codes.RUN_NOT_ASYNC]: { statuses: [409], meaning: 'the run is a sync run and takes no report (reportRun)' },
  [Codes.UNSUPPORTED_TYPE]: { statuses: [400], meaning: 'unsupported task `type`' },
  [Codes.RUN_NOT_FOUND]: { statuses: [404], meaning: 'run not found (retryRun)' },
  [Codes.RUN_NOT_FAILED]: { statuses: [409], meaning: 'the run is not a finished FAIL run, so it cannot be retried (retryRun)' },
  [Codes.RUN_RETRIED]: { statuses: [409], meaning: 'the run was retried already (retryRun; the message names the retry run)' },
  [Codes.UNKNOWN_TARGET]: { statuses: [400], meaning: 'unknown queue target in `callback.target` (the message lists the configured names)' },
  [Codes.EXECUTOR_GROUP]: { statuses: [400], meaning: 'invalid executor group name (`group`, or `callback.executor` of a task): 1 to 64 characters of A-Z a-z 0-9 _ . : -' },
  [Codes.EXECUTOR_ADDRESS]: { statuses: [400], meaning: 'executor `address` missing or invalid (an absolute http/https callback URL without credentials)' },
  [Codes.EXECUTOR_NOT_FOUND]: { statuses: [404], meaning: 'no such executor instance registered (unregisterExecutor)' },
  [Codes.INTERNAL]: { statuses: [500], meaning: 'internal error (a bug; the log has the request uuid)' },
};

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
