/** What the API is built from (createApp's dependencies), apart from the routes that use them. */
import type { Logger } from 'pino';
import type { Clock } from '../clock/index.js';
import type { Notifier, Ownership } from '../cluster/index.js';
import type { TaskService } from '../service/index.js';
import type { LiveStats } from '../scheduler/stats.js';
import type { LogCaps, TaskStore } from '../store/types.js';
import type { Run, Task } from '../task/index.js';
import type { TokenAuth } from './auth.js';

/** Where the API tells the scheduler (or, in a cluster, the slot owner) about changes (defined below the API, in cluster). */
export type { Notifier } from '../cluster/index.js';

export interface ApiLimits {
  requestBodyLimit: number;
  callbackBodyLimit: number;
  defaultTimezone: string;
  pastGraceMs: number;
}

export interface ApiDeps {
  store: TaskStore;
  notifier: Notifier;
  /**
   * The task operations. Default: a TaskService over `store` and `notifier` (the composition root
   * passes the one the scheduler's follow-ups share).
   */
  service?: TaskService;
  /**
   * The task as queryTask and listTasks show it: a fire committed ahead of its due time and still
   * held is shown as not made yet (standalone; see Scheduler.viewOf). Default: as stored.
   */
  viewTask?: (t: Task) => Task;
  ownership: Ownership;
  clock: Clock;
  log: Logger;
  slots: number;
  limits: ApiLimits;
  version: string;
  /** Readiness beyond the store ping (e.g. cluster membership). */
  isReady?: () => Promise<boolean>;
  newId?: () => string;
  nodeId: string;
  /** Async completion (reportRun, appendRunLog, runLog). Absent: those endpoints are not served. */
  runs?: RunsDeps;
  /** In-memory figures merged into /xcron/stats (lateness, latency, rates). */
  liveStats?: () => LiveStats;
  /** GET /metrics (Prometheus text) and the per-request observer. Absent: no /metrics. */
  metrics?: ApiMetrics;
  /** API tokens. Absent or empty: the API is open. */
  auth?: TokenAuth;
  /** Serve /metrics without a token even when auth is on. */
  publicMetrics?: boolean;
  /** Per-client rate limit on /xcron/* (requests per second; 0 = off). */
  rateLimit?: { perSec: number; burst: number };
  /** The SSRF guard's create-time check: why a callback URL is refused, or null. */
  destinations?: { urlRefusal(url: string): Promise<string | null> };
}

export interface ApiMetrics {
  readonly contentType: string;
  render(): Promise<string>;
  /** `cpuSeconds`: process CPU time (user + system) used while the request was handled. */
  observeRequest(route: string, method: string, status: number, seconds: number, cpuSeconds?: number): void;
}

/** What the async-completion routes need beyond the common ApiDeps. */
export interface RunsDeps {
  /** The cluster-wide secret behind X-Xcron-Report-Token. */
  reportSecret: string;
  /** This node closed a run by report: children, alerts and stats act on it (scheduler.reported). */
  onRunClosed(run: Run, task: Task | null): void;
  /**
   * Called before a report is applied: resolves once this node has recorded the run's callback
   * answer, when that exchange is still in progress here (a fast worker can report before its own
   * 202 reaches the scheduler). Optional.
   */
  beforeReport?(runId: string): Promise<void>;
  /** Per-run log caps. */
  logCaps: LogCaps;
  /**
   * A store shared by nodes: how long (ms) a report for a sync run whose answer is not recorded yet
   * waits for the node delivering it to record a 202 the report overtook (see applyReport).
   */
  answerWaitMs?: number;
}
