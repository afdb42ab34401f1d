/**
 * Report tokens of async runs: HMAC-SHA256(secret, run_id), hex. Unguessable without the secret,
 * different for every run, and any node holding the cluster-wide secret can verify one without
 * storing it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function reportToken(secret: string, runId: string): string {
  return createHmac('sha256', secret).update(`report:${runId}`).digest('hex');
}

/** Constant-time check of a presented token. */
export function checkReportToken(secret: string, runId: string, presented: string): boolean {
  const want = Buffer.from(reportToken(secret, runId), 'utf8');
  const got = Buffer.from(presented, 'utf8');
  return got.length === want.length && timingSafeEqual(got, want);
}
