/**
 * Redis connections (one Redis, through Sentinels, or Redis Cluster), shared by the store, the
 * cluster (ownership, change feed) and transfer, and the mapping of Redis trouble to
 * StoreUnavailableError.
 *
 * The client has no offline queue and short command timeouts, so a Redis outage fails requests
 * fast instead of piling them up. Connection errors, timeouts and Redis's transient error replies
 * (LOADING, CLUSTERDOWN, …) count as unavailable (the API answers 503).
 */
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { ConfigError, StoreUnavailableError } from '../errors.js';
import { parseRedisUrl } from './url.js';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  url: string;
  /** Overrides the URL's password when not empty. */
  password?: string | undefined;
  /** TLS even for redis:// URLs. */
  tls?: boolean | undefined;
  /** Use the Redis Cluster client (ioredis Cluster) with the URL's hosts as seed nodes. */
  cluster?: boolean | undefined;
  /** The Sentinels' own password (sentinel URLs only; none when empty). */
  sentinelPassword?: string | undefined;
  /** Per-command timeout: a slower reply fails as unavailable. */
  commandTimeoutMs: number;
  /** CLIENT SETNAME, for `CLIENT LIST`. */
  name: string;
  log: Logger;
}

/**
 * Creates a client (not yet connected: call `connectRedis`). No offline queue, no resending after
 * a reconnect, short timeouts, reconnects forever in the background; errors are logged (throttled)
 * instead of crashing the process.
 */
export function createRedisClient(o: RedisConnectOptions): RedisClient {
  const ep = parseRedisUrl(o.url);
  if (ep.sentinel && o.cluster) throw new ConfigError(`'cluster.redis_url': a redis+sentinel:// URL cannot be used with 'cluster.redis_cluster = true' (Redis Cluster fails over by itself; give its nodes as redis://host:port,host:port)`);
  const password = o.password ? o.password : ep.password;
  const tls = o.tls || ep.tls ? {} : undefined;
  const common = {
    username: ep.username,
    password,
    tls,
    commandTimeout: o.commandTimeoutMs,
    connectTimeout: Math.max(1000, o.commandTimeoutMs),
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectionName: o.name,
    protocol: 2 as const,
    keepAlive: 5000,
  };
  const retry = (times: number): number => Math.min(50 * times, 500);
  let client: RedisClient;
  if (o.cluster) {
    const opts: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: retry,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: Math.max(1000, o.commandTimeoutMs),
      redisOptions: { ...common },
    };
    client = new Cluster(ep.nodes, opts);
  } else {
    // One primary, found directly or through the Sentinels. A primary demoted by a failover
    // answers writes with READONLY: reconnect (through the Sentinels, or to whatever the host name
    // points at now) instead of failing every write until the connection happens to drop.
    const single: RedisOptions = {
      ...common,
      db: ep.db,
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      retryStrategy: retry,
      reconnectOnError: (err) => replyCode(err) === 'READONLY',
    };
    const first = ep.nodes[0]!;
    client = new Redis(
      ep.sentinel
        ? {
            ...single,
            // The client asks the Sentinels for the current primary on every (re)connect, checks
            // that the node it reached is a primary, and drops the connection when a Sentinel
            // announces a failover (failoverDetector), so commands go to the new primary at once.
            sentinels: ep.nodes,
            name: ep.sentinel.name,
            role: 'master',
            sentinelPassword: o.sentinelPassword ? o.sentinelPassword : undefined,
            enableTLSForSentinelMode: tls !== undefined,
            sentinelCommandTimeout: Math.max(1000, o.commandTimeoutMs),
            sentinelRetryStrategy: retry,
            failoverDetector: true,
          }
        : { ...single, host: first.host, port: first.port },
    );
  }
  let lastLog = 0;
  client.on('error', (err: Error) => {
    const now = Date.now();
    if (now - lastLog < 5000) return;
    lastLog = now;
    o.log.warn({ err: err.message, redis: o.name }, 'redis connection error');
  });
  return client;
}

/** Connects (retrying until `timeoutMs`), then resolves; rejects with the last error. */
export async function connectRedis(client: RedisClient, timeoutMs: number, log: Logger, target = 'Redis'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // The reason (refused, WRONGPASS, …) arrives as an 'error' event; connect() only says "closed".
  let reason: string | null = null;
  const onError = (e: Error): void => {
    reason = e.message;
  };
  client.on('error', onError);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        if (client.status === 'ready') return;
        if (client.status === 'wait' || client.status === 'end' || client.status === 'close') await client.connect();
        else await waitReady(client, Math.max(100, deadline - Date.now()));
        return;
      } catch (e) {
        const why = reason ?? (e as Error).message;
        if (Date.now() >= deadline) throw new Error(`cannot connect to Redis: ${why}`);
        if (attempt === 1 || attempt % 10 === 0) log.warn({ err: why, redis: target, gives_up_in_ms: Math.max(0, deadline - Date.now()) }, `waiting for Redis at ${target}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    client.off('error', onError);
  }
}

function waitReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`not ready (status ${client.status})`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/**
 * The error code of a Redis error reply ('NOSCRIPT', 'READONLY', 'LOADING', ...), or null for any
 * other error (a reply without a code counts as the generic 'ERR'). The protocol sends the code as
 * the reply's first word and ioredis keeps it only in the message, so this is the one place that
 * reads it; everything else compares codes.
 */
export function replyCode(e: unknown): string | null {
  if (!(e instanceof (ReplyError as new () => Error))) return null;
  const m = /^[A-Z][A-Z0-9_-]*(?=\s|$)/.exec((e as Error).message);
  return m ? m[0] : 'ERR';
}

/** Reply codes that mean the server cannot serve now (loading, failing over, read-only, ...). */
const TRANSIENT_CODES = new Set(['LOADING', 'BUSY', 'OOM', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'NOREPLICAS', 'MISCONF', 'NOAUTH', 'WRONGPASS', 'MOVED', 'ASK']);

/** True for failures that mean "Redis is not usable right now" (not a bug in a script). */
export function isUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e instanceof StoreUnavailableError) return true;
  const code = replyCode(e);
  if (code !== null) return TRANSIENT_CODES.has(code);
  return true; // connection refused/reset, timeouts, no offline queue, cluster not ready, …
}

export function toStoreError(e: unknown): Error {
  if (e instanceof StoreUnavailableError) return e;
  if (isUnavailable(e)) return new StoreUnavailableError(`redis: ${(e as Error).message}`);
  return e instanceof Error ? e : new Error(String(e));
}
