/** The executor registry's request and answer types (registerExecutor, unregisterExecutor, listExecutors). */

export interface RegisterExecutorRequest {
  /** Group name: 1 to 64 characters of A-Z a-z 0-9 _ . : - */
  group: string;
  /** The instance's callback URL (the server's destination policy applies). */
  address: string;
  /** 1000..3600000: the instance drops out when no heartbeat comes within this time. */
  ttl_ms: number;
  /** Free-form JSON object (at most 4096 bytes). */
  meta?: Record<string, unknown> | null;
}

export interface RegisteredExecutor {
  group: string;
  address: string;
  ttl_ms: number;
  last_heartbeat: number;
  registered_at: number;
  expires_at: number;
  /** False: a heartbeat of a registered instance. */
  created: boolean;
}

export interface UnregisteredExecutor {
  group: string;
  address: string;
  removed: true;
}

export interface ExecutorInstance {
  address: string;
  ttl_ms: number;
  meta: Record<string, unknown> | null;
  last_heartbeat: number;
  registered_at: number;
  expires_at: number;
  live: boolean;
}

export interface ExecutorGroup {
  group: string;
  /** Live instances. */
  live: number;
  instances: ExecutorInstance[];
}

export interface ExecutorList {
  /** The node's time the live flags were computed at (ms epoch). */
  now: number;
  groups: ExecutorGroup[];
}
