/** Shared pieces of the executor registry tests: API calls through a server's test client, run polling. */
import type { ApiResponse } from '../helpers/http.js';
import type { XcronServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

export interface RunView {
  run_id: string;
  status: string;
  attempts: number;
  error: string | null;
  http_status: number | null;
  shards?: { index: number; url: string; ok: boolean }[] | null;
}

export interface ExecutorsView {
  now: number;
  groups: { group: string; live: number; instances: { address: string; ttl_ms: number; meta: Record<string, unknown> | null; last_heartbeat: number; registered_at: number; expires_at: number; live: boolean }[] }[];
}

export const post = <T = unknown>(srv: { client: XcronServer['client'] }, path: string, json: unknown, token?: string): Promise<ApiResponse<T>> =>
  srv.client.call<T>('POST', path, { json, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });

export const register = (srv: XcronServer, group: string, address: string, ttl_ms = 60_000, meta?: Record<string, unknown>, token?: string) =>
  post<{ created: boolean; registered_at: number; last_heartbeat: number; expires_at: number }>(srv, '/xcron/registerExecutor', { group, address, ttl_ms, ...(meta ? { meta } : {}) }, token);

export const executors = async (srv: XcronServer, token?: string): Promise<ApiResponse<ExecutorsView>> =>
  srv.client.call<ExecutorsView>('GET', '/xcron/executors', token ? { headers: { authorization: `Bearer ${token}` } } : {});

/** Fires the task once now and waits for that run's final state. */
export async function triggerAndWait(srv: XcronServer, taskId: string, timeoutMs = 30_000): Promise<RunView> {
  const t = await post<{ run_id: string }>(srv, '/xcron/triggerTask', { task_id: taskId });
  if (t.status !== 200) throw new Error(`triggerTask: ${t.text}`);
  return finalRun(srv, taskId, t.body.data.run_id, timeoutMs);
}

export async function finalRun(srv: XcronServer, taskId: string, runId: string, timeoutMs = 30_000): Promise<RunView> {
  const runs = await waitUntil(
    async () => (await srv.client.call<{ runs: RunView[] }>('GET', `/xcron/taskRuns?task_id=${taskId}`)).body.data.runs,
    (rs) => rs.some((r) => r.run_id === runId && (r.status === 'SUCCESS' || r.status === 'FAIL')),
    timeoutMs,
    `run ${runId} to finish`,
  );
  return runs.find((r) => r.run_id === runId)!;
}

/** A periodic task that never fires on its own (manual runs only), to executor group `group`. */
export const groupTask = (group: string, route?: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: 1,
  format: '0 0 1 1 *',
  retry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 },
  callback: { executor: group, ...(route ? { route } : {}), body: { job: 'x' } },
  ...extra,
});
