/**
 * RedisTaskStore: the cluster store. Every key of one slot shares the hash tag `{<prefix>:<slot>}`,
 * and every atomic operation is one Lua script (src/store/lua/<name>-<key count>.lua) on one slot,
 * so the same code runs on a single Redis and on Redis Cluster.
 *
 * Key layout (B = `{<prefix>:<slot>}`, the script's only declared key; the others are derived
 * from it inside the script and share its hash tag):
 *   B:lease            "<epoch>|<node>" with PX = the slot lease (RedisOwnership)
 *   B:epoch            the fencing token: raised by each take of the lease (to Redis's clock in ms,
 *                      or by one; acquire-1.lua)
 *   B:t:<id>           task hash (scalars as text, other fields as `j:<name>` JSON; null = absent)
 *   B:ids, B:st:<s>    every id / ids by state (score 0, lexicographic) for listTasks and stats
 *   B:due              active tasks by next_fire_time
 *   B:r:<run_id>       run hash
 *   B:runs:<task_id>   a task's runs by scheduled_time (history)
 *   B:open             unfinished runs by scheduled_time (the outbox)
 *   B:done             finished runs by creation time (retention)
 *   B:completed        completed tasks by update_time (purgeCompleted)
 *   B:runstat          run counts by status
 *   B:log:<run_id>     a run's log lines ("<time>|<line>", seq = position + 1), B:logm:<run_id> totals
 * Global keys, each written by a one-key command of its own (never in a slot script):
 *   {<prefix>}:slots, {<prefix>}:members, {<prefix>}:idem:<key> (idempotency key -> task id),
 *   {<prefix>}:secret:<name> (sharedSecret).
 *
 * Connection errors, timeouts and Redis's transient error replies (LOADING, CLUSTERDOWN, …) become
 * StoreUnavailableError (the API answers 503); the client has no offline queue and short
 * command timeouts, so a Redis outage fails requests fast instead of piling them up.
 *
 * Durability: a write is acknowledged once Redis acknowledged it. Run Redis with `appendonly yes`
 * and `appendfsync always` (each write is fsynced before Redis replies; the tests use this): then
 * neither a Redis crash nor a power loss loses an acknowledged task. With `appendfsync everysec`
 * a crash of the Redis process loses nothing either (the AOF is written before the reply), but an
 * OS crash or power loss can lose up to about one second of acknowledged writes. With replicas,
 * `replicaAcks` makes task writes and fire commits and claims wait for replicas' confirmations
 * (WAIT) as well, so a failover to a replica does not lose them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { slotOf } from '../cluster/ownership.js';
import { ConfigError, StoreUnavailableError } from '../errors.js';
import type { Run, RunStatus, Task } from '../task/index.js';
import { CLAIMED_BY, HELD, type HeldFire } from './types.js';
import type {
  ClaimRequest,
  ClaimResult,
  CreateResult,
  DueKey,
  DueQuery,
  FireRequest,
  FireResult,
  ListRunsQuery,
  ListTasksQuery,
  LogCaps,
  OutboxQuery,
  PendingDelivery,
  ReportRequest,
  ReportResult,
  RunLogLine,
  RunUpdate,
  StoreStats,
  TaskChanges,
  TaskExpectation,
  TaskStore,
} from './types.js';

export type RedisClient = Redis | Cluster;

// ---------------------------------------------------------------------------------------------
// Connections

export interface RedisEndpoint {
  /** The Redis nodes, or with `sentinel` the Sentinels to ask for the current primary. */
  nodes: { host: string; port: number }[];
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: boolean;
  /** Sentinel mode: the monitored primary's name (`redis+sentinel://…/<name>`). */
  sentinel: { name: string } | null;
}

const URL_FORMS = 'redis://[user:password@]host:port[,host:port…][/db] (rediss:// for TLS), or redis+sentinel://[user:password@]sentinel:port[,sentinel:port…]/<primary name>[/db] (rediss+sentinel:// for TLS)';

/**
 * Parses `redis://[user:pass@]host:port[,host:port…][/db]` (`rediss://` = TLS). Several hosts are
 * the seed nodes of a Redis Cluster. `redis+sentinel://[user:pass@]host:port[,…]/<name>[/db]`
 * names Sentinels (default port 26379) and the primary they monitor; the user and password are
 * the data nodes' (the Sentinels' own password is `cluster.redis_sentinel_password`).
 */
export function parseRedisUrl(url: string): RedisEndpoint {
  const m = /^(rediss?)(\+sentinel)?:\/\/(?:([^@/]*)@)?([^/]+)(?:\/([^/]*))?(?:\/([^/]*))?$/.exec(url.trim());
  if (!m) throw new ConfigError(`'cluster.redis_url': invalid Redis URL ${JSON.stringify(url)}: expected ${URL_FORMS}`);
  const [, scheme, sentinelMode, auth, hosts, first, second] = m;
  let name: string | null = null;
  let dbText: string | undefined;
  if (sentinelMode) {
    name = first ? decodeURIComponent(first) : '';
    if (name === '') throw new ConfigError(`'cluster.redis_url': ${JSON.stringify(url)} names no primary: expected redis+sentinel://sentinel:port[,sentinel:port…]/<primary name>[/db]`);
    dbText = second;
  } else {
    if (second !== undefined) throw new ConfigError(`'cluster.redis_url': invalid Redis URL ${JSON.stringify(url)}: expected ${URL_FORMS}`);
    dbText = first;
  }
  if (dbText !== undefined && dbText !== '' && !/^\d+$/.test(dbText)) throw new ConfigError(`'cluster.redis_url': invalid database number ${JSON.stringify(dbText)} in ${JSON.stringify(url)}`);
  let username: string | undefined;
  let password: string | undefined;
  if (auth) {
    const i = auth.indexOf(':');
    const u = i < 0 ? '' : decodeURIComponent(auth.slice(0, i));
    const p = decodeURIComponent(i < 0 ? auth : auth.slice(i + 1));
    username = u === '' ? undefined : u;
    password = p === '' ? undefined : p;
  }
  const defaultPort = sentinelMode ? 26379 : 6379;
  const nodes = hosts!.split(',').map((h) => {
    const hm = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h.trim());
    if (!hm) throw new ConfigError(`'cluster.redis_url': invalid host ${JSON.stringify(h)} in ${JSON.stringify(url)}`);
    return { host: hm[1]!.replace(/^\[|\]$/g, ''), port: hm[2] ? Number(hm[2]) : defaultPort };
  });
  return { nodes, username, password, db: dbText ? Number(dbText) : 0, tls: scheme === 'rediss', sentinel: name === null ? null : { name } };
}

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
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
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
export async function connectRedis(client: RedisClient, timeoutMs: number, log: Logger): Promise<void> {
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
        if (attempt === 1 || attempt % 10 === 0) log.warn({ err: why }, 'waiting for Redis');
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

// ---------------------------------------------------------------------------------------------
// Lua scripts

export interface LuaScript {
  name: string;
  keys: number;
  lua: string;
  sha: string;
}

const LUA_DIR = fileURLToPath(new URL('./lua/', import.meta.url));
let scriptCache: Map<string, LuaScript> | null = null;

/**
 * The scripts of src/store/lua: `<name>-<key count>.lua`; `--@include <file>` lines are replaced
 * by that file (helpers whose names start with `_`). Read once per process.
 */
export function luaScripts(): Map<string, LuaScript> {
  if (scriptCache) return scriptCache;
  const out = new Map<string, LuaScript>();
  for (const file of readdirSync(LUA_DIR)) {
    const m = /^([A-Za-z]+)-(\d+)\.lua$/.exec(file);
    if (!m) continue;
    const src = readFileSync(LUA_DIR + file, 'utf8');
    const lua = src.replace(/^--@include ([\w.-]+)\s*$/gm, (_, inc: string) => readFileSync(LUA_DIR + inc, 'utf8'));
    out.set(m[1]!, { name: m[1]!, keys: Number(m[2]), lua, sha: createHash('sha1').update(lua).digest('hex') });
  }
  scriptCache = out;
  return out;
}

export function script(name: string): LuaScript {
  const s = luaScripts().get(name);
  if (!s) throw new Error(`Lua script ${name} not found in ${LUA_DIR}`);
  return s;
}

/** EVALSHA, falling back to EVAL (which also caches it) when the server does not know the script. */
export async function evalScript(client: RedisClient, s: LuaScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  if (keys.length !== s.keys) throw new Error(`script ${s.name} takes ${s.keys} keys, got ${keys.length}`);
  try {
    return await client.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('NOSCRIPT')) return await client.eval(s.lua, keys.length, ...keys, ...args);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Keys and errors

/** The key base (hash tag) of a slot: `{<prefix>:<slot>}`. */
export const slotBase = (prefix: string, slot: number): string => `{${prefix}:${slot}}`;
/** A cluster-wide key: `{<prefix>}:<name>`. */
export const globalKey = (prefix: string, name: string): string => `{${prefix}}:${name}`;
/** The pub/sub channel of task changes. */
export const changesChannel = (prefix: string): string => `${prefix}:changes`;

const TRANSIENT_REPLY = /^(LOADING|BUSY|OOM|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF|NOAUTH|WRONGPASS|MOVED|ASK)\b/;

/** True for failures that mean "Redis is not usable right now" (not a bug in a script). */
export function isUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e instanceof StoreUnavailableError) return true;
  if (e instanceof (ReplyError as new () => Error)) return TRANSIENT_REPLY.test(e.message);
  return true; // connection refused/reset, timeouts, no offline queue, cluster not ready, …
}

export function toStoreError(e: unknown): Error {
  if (e instanceof StoreUnavailableError) return e;
  if (isUnavailable(e)) return new StoreUnavailableError(`redis: ${(e as Error).message}`);
  return e instanceof Error ? e : new Error(String(e));
}

// ---------------------------------------------------------------------------------------------
// Encoding: a task or run is a hash; scalars are plain text, null is an absent field, any other
// field is JSON under `j:<name>` (so fields added to Task later are stored without changes here).

type Kind = 'str' | 'int';
const TASK_SCALARS: Record<string, { kind: Kind; nullable: boolean }> = {
  id: { kind: 'str', nullable: false },
  slot: { kind: 'int', nullable: false },
  type: { kind: 'int', nullable: false },
  format: { kind: 'str', nullable: false },
  name: { kind: 'str', nullable: true },
  state: { kind: 'str', nullable: false },
  next_fire_time: { kind: 'int', nullable: true },
  create_time: { kind: 'int', nullable: false },
  update_time: { kind: 'int', nullable: false },
  last_fire_time: { kind: 'int', nullable: true },
  last_status: { kind: 'str', nullable: true },
  run_count: { kind: 'int', nullable: false },
  idempotency_key: { kind: 'str', nullable: true },
};
const RUN_SCALARS: Record<string, { kind: Kind; nullable: boolean }> = {
  run_id: { kind: 'str', nullable: false },
  task_id: { kind: 'str', nullable: false },
  slot: { kind: 'int', nullable: false },
  node: { kind: 'str', nullable: true },
  scheduled_time: { kind: 'int', nullable: false },
  start_time: { kind: 'int', nullable: true },
  end_time: { kind: 'int', nullable: true },
  attempts: { kind: 'int', nullable: false },
  status: { kind: 'str', nullable: false },
  http_status: { kind: 'int', nullable: true },
  error: { kind: 'str', nullable: true },
  duration_ms: { kind: 'int', nullable: true },
  response_body: { kind: 'str', nullable: true },
  deadline: { kind: 'int', nullable: true },
  message: { kind: 'str', nullable: true },
  output: { kind: 'str', nullable: true },
};
/** Run fields kept for the store's own use (not part of Run). */
const RUN_INTERNAL = new Set(['created', 'tok']);

/** A task as a flat field/value list for HSET. */
export function taskFields(t: Task): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(t)) {
    if (v === undefined) continue;
    if (k in TASK_SCALARS) {
      if (v !== null) out.push(k, String(v));
    } else {
      out.push(`j:${k}`, JSON.stringify(v));
    }
  }
  return out;
}

function decode(flat: unknown, scalars: Record<string, { kind: Kind; nullable: boolean }>, internal?: Set<string>): Record<string, unknown> {
  const arr = flat as string[];
  const o: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(scalars)) if (spec.nullable) o[k] = null;
  for (let i = 0; i + 1 < arr.length; i += 2) {
    const k = arr[i]!;
    const v = arr[i + 1]!;
    if (k.startsWith('j:')) o[k.slice(2)] = JSON.parse(v) as unknown;
    else if (internal?.has(k)) continue;
    else {
      const spec = scalars[k];
      o[k] = spec?.kind === 'int' ? Number(v) : v;
    }
  }
  return o;
}

/** A task hash: the fields of Task, plus the held-fire marker (h_*) as the HELD symbol. */
export function decodeTask(flat: unknown): Task {
  const o = decode(flat, TASK_SCALARS);
  if (o.h_run !== undefined) {
    const held: HeldFire = { run_id: o.h_run as string, tick: Number(o.h_tick), last_fire_time: o.h_last === '' || o.h_last === undefined ? null : Number(o.h_last) };
    Object.defineProperty(o, HELD, { value: held, enumerable: false });
  }
  delete o.h_run;
  delete o.h_tick;
  delete o.h_last;
  return o as unknown as Task;
}

export function decodeRun(flat: unknown): Run {
  const o = decode(flat, RUN_SCALARS, RUN_INTERNAL);
  if (o.shards === undefined) o.shards = null;
  if (o.claimed_by !== undefined) Object.defineProperty(o, CLAIMED_BY, { value: o.claimed_by, enumerable: false });
  delete o.claimed_by;
  return o as unknown as Run;
}

/** A nullable script argument: '' is null, else '=' + the value. */
const opt = (v: string | number | null | undefined): string => (v === null || v === undefined ? '' : `=${v}`);
/** opt() of free text (an error, a response body): a lone UTF-16 surrogate becomes U+FFFD, as
 * when the string is sent as UTF-8, so the JSON of a batch (packed()) always decodes in Redis. */
const optText = (v: string | null | undefined): string => (v === null || v === undefined ? '' : `=${(v as WellFormed).toWellFormed()}`);
type WellFormed = string & { toWellFormed(): string };
/**
 * A batch of script arguments as one JSON array of strings (ARGV[1]; the script decodes it with
 * cjson): the hot batch scripts take thousands of values per call, and one string costs the
 * client and Redis far less to frame and parse than an argument each.
 */
const packed = (values: readonly string[]): string => JSON.stringify(values);

// ---------------------------------------------------------------------------------------------
// Merging per-slot ordered reads

interface SlotPage<T> {
  items: T[];
  /** The last position read in the slot (the cursor of the next read), null when nothing was read. */
  last: DueKey | null;
  exhausted: boolean;
}

const cmpKey = (a: DueKey, b: DueKey): number => (a.time !== b.time ? a.time - b.time : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * The first `limit` items over several slots in (time, id) order after `after`: a k-way merge
 * that reads each slot in chunks and reads a slot again only when its buffer runs out. A slot's
 * first chunk is its even share of `limit`; each refill of it doubles its chunk (up to what is
 * still wanted, at most 1,000): items spread over many slots are read about once, and a page that
 * lies in a few slots still takes few round trips. (Reading all that is still wanted at the
 * first refill, as before, read up to 2.4 tasks per fire in a 20,000-task burst spread over the
 * slots: what a page did not use was read again by the next.)
 */
async function mergeSlots<T>(
  slots: readonly number[],
  after: DueKey | null,
  limit: number,
  keyOf: (t: T) => DueKey,
  read: (slot: number, after: DueKey | null, n: number) => Promise<SlotPage<T>>,
): Promise<T[]> {
  if (slots.length === 0 || limit <= 0) return [];
  const first = Math.min(limit, Math.ceil(limit / slots.length) + 2);
  const src = slots.map((slot) => ({ slot, items: [] as T[], pos: 0, cursor: after, exhausted: false, chunk: first }));
  const fill = async (s: (typeof src)[number], n: number): Promise<void> => {
    const p = await read(s.slot, s.cursor, n);
    s.items = p.items;
    s.pos = 0;
    if (p.last) s.cursor = p.last;
    s.exhausted = p.exhausted;
  };
  const out: T[] = [];
  while (out.length < limit) {
    const empty = src.filter((s) => s.pos >= s.items.length && !s.exhausted);
    if (empty.length > 0) {
      const want = Math.min(limit - out.length, 1000);
      await Promise.all(
        empty.map((s) => {
          const n = Math.max(1, Math.min(s.chunk, want));
          s.chunk = Math.min(s.chunk * 2, 1000);
          return fill(s, n);
        }),
      );
      continue;
    }
    let best: (typeof src)[number] | null = null;
    let bestKey: DueKey | null = null;
    for (const s of src) {
      if (s.pos >= s.items.length) continue;
      const k = keyOf(s.items[s.pos]!);
      if (bestKey === null || cmpKey(k, bestKey) < 0) {
        best = s;
        bestKey = k;
      }
    }
    if (!best) break;
    out.push(best.items[best.pos++]!);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The store

export interface RedisStoreOptions {
  client: RedisClient;
  /** Key prefix (the hash tags are `{<prefix>:<slot>}`). */
  prefix: string;
  slots: number;
  log: Logger;
  /** Whether close() quits the client (default true). */
  ownsClient?: boolean;
  /**
   * Replicas that must confirm a task write or a fire commit (WAIT) before it is acknowledged or
   * acted on; fewer within `timeoutMs` fail the operation as unavailable. Count 0: no WAIT.
   */
  replicaAcks?: { count: number; timeoutMs: number };
}

export class RedisTaskStore implements TaskStore {
  readonly kind = 'redis' as const;
  readonly client: RedisClient;
  private readonly prefix: string;
  private readonly slots: number;
  private readonly log: Logger;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: RedisStoreOptions) {
    this.client = o.client;
    this.prefix = o.prefix;
    this.slots = o.slots;
    this.log = o.log;
    luaScripts(); // fail at construction when the scripts are missing
  }

  private base(slot: number): string {
    return slotBase(this.prefix, slot);
  }
  private slotOfTask(id: string): number {
    return slotOf(id, this.slots);
  }
  private slotOfRun(runId: string): number {
    const i = runId.indexOf(':');
    return this.slotOfTask(i < 0 ? runId : runId.slice(0, i));
  }
  private allSlots(): number[] {
    return Array.from({ length: this.slots }, (_, i) => i);
  }
  private idemKey(key: string): string {
    return globalKey(this.prefix, `idem:${key}`);
  }

  private run(name: string, slot: number, args: readonly (string | number)[]): Promise<unknown> {
    return evalScript(this.client, script(name), [this.base(slot)], args);
  }

  /**
   * Runs the write `fn` under guard(), then, with replicaAcks set, waits until that many replicas
   * confirm every write sent on this connection so far (WAIT; it covers `fn`'s writes, which went
   * first on the same connection). Too few confirmations: StoreUnavailableError. The write stands
   * on the primary; what it means for each caller is in the README ("When Redis fails").
   */
  private replicated<T>(fn: () => Promise<T>): Promise<T> {
    const acks = this.o.replicaAcks;
    if (!acks || acks.count === 0) return this.guard(fn);
    return this.guard(async () => {
      const r = await fn();
      const n = await (this.client as Redis).wait(acks.count, acks.timeoutMs);
      if (n < acks.count) {
        throw new StoreUnavailableError(`the write reached the Redis primary, but ${n} of the ${acks.count} replicas required ('cluster.min_replica_acks') confirmed it within ${acks.timeoutMs} ms`);
      }
      return r;
    });
  }

  /** Runs `fn`, mapping Redis trouble to StoreUnavailableError. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing) throw new StoreUnavailableError('store is closed');
    try {
      return await fn();
    } catch (e) {
      throw toStoreError(e);
    }
  }

  create(task: Task): Promise<CreateResult> {
    return this.replicated(async () => {
      if (task.idempotency_key !== null) {
        const existing = await this.claimIdempotencyKey(task.idempotency_key, task.id);
        if (existing) return { task: existing, created: false };
      }
      try {
        const res = await this.run('create', task.slot, [task.id, task.state, task.next_fire_time ?? '', ...taskFields(task)]);
        if (res !== 1) throw new Error(`task id ${task.id} already exists`);
      } catch (e) {
        if (task.idempotency_key !== null) {
          await evalScript(this.client, script('delIfEq'), [this.idemKey(task.idempotency_key)], [task.id]).catch(() => undefined);
        }
        throw e;
      }
      return { task, created: true };
    });
  }

  /**
   * Claims an idempotency key for `id` (SET NX, its own key: it lives outside the task's slot).
   * Returns the task already holding it, or null when the claim is ours. A claim pointing at no
   * task is a create in progress (waited for briefly) or one that failed half-way (taken over).
   */
  private async claimIdempotencyKey(key: string, id: string): Promise<Task | null> {
    const k = this.idemKey(key);
    for (let attempt = 0; attempt < 20; attempt++) {
      if ((await this.client.set(k, id, 'NX')) === 'OK') return null;
      const holder = await this.client.get(k);
      if (holder === null) continue;
      const t = await this.get(holder);
      if (t) return t;
      if (attempt < 3) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if ((await evalScript(this.client, script('setIfEq'), [k], [holder, id])) === 1) return null;
    }
    throw new StoreUnavailableError(`could not claim idempotency key ${JSON.stringify(key)}`);
  }

  get(id: string): Promise<Task | null> {
    return this.guard(async () => {
      const flat = await this.client.hgetall(`${this.base(this.slotOfTask(id))}:t:${id}`);
      return Object.keys(flat).length === 0 ? null : decodeTask(Object.entries(flat).flat());
    });
  }

  delete(id: string): Promise<Task | null> {
    return this.replicated(async () => {
      const flat = (await this.run('delete', this.slotOfTask(id), [id])) as string[];
      if (flat.length === 0) return null;
      const task = decodeTask(flat);
      if (task.idempotency_key !== null) {
        await evalScript(this.client, script('delIfEq'), [this.idemKey(task.idempotency_key)], [id]).catch((err: unknown) =>
          this.log.warn({ err, task_id: id }, 'could not release the idempotency key of a deleted task'),
        );
      }
      return task;
    });
  }

  dueTasks(q: DueQuery): Promise<Task[]> {
    return this.guard(() =>
      mergeSlots<Task>(
        q.slots ?? this.allSlots(),
        q.after,
        q.limit,
        (t) => ({ time: t.next_fire_time!, id: t.id }),
        async (slot, after, n) => {
          const r = (await this.run('dueTasks', slot, [after ? after.time : '', after ? after.id : '', q.upTo, n])) as unknown[];
          return {
            exhausted: r[0] === 1,
            last: r[1] === '' ? null : { time: Number(r[1]), id: r[2] as string },
            items: r.slice(3).map(decodeTask),
          };
        },
      ),
    );
  }

  dueKeys(q: DueQuery): Promise<DueKey[]> {
    return this.guard(() =>
      mergeSlots<DueKey>(q.slots ?? this.allSlots(), q.after, q.limit, (k) => k, async (slot, after, n) => {
        const r = (await this.run('dueKeys', slot, [after ? after.time : '', after ? after.id : '', q.upTo, n])) as (number | string)[];
        const items: DueKey[] = [];
        for (let i = 1; i < r.length; i += 2) items.push({ id: r[i] as string, time: Number(r[i + 1]) });
        return { exhausted: r[0] === 1, last: items.length > 0 ? items[items.length - 1]! : null, items };
      }),
    );
  }

  commitFires(reqs: readonly FireRequest[]): Promise<FireResult[]> {
    if (reqs.length === 0) return Promise.resolve([]);
    return this.replicated(async () => {
      const bySlot = new Map<number, number[]>();
      reqs.forEach((r, i) => {
        const g = bySlot.get(r.slot);
        if (g) g.push(i);
        else bySlot.set(r.slot, [i]);
      });
      const results: FireResult[] = new Array<FireResult>(reqs.length).fill('conflict');
      let failures = 0;
      let lastError: unknown = null;
      await Promise.all(
        [...bySlot].map(async ([slot, idx]) => {
          const args: string[] = [];
          for (const i of idx) {
            const r = reqs[i]!;
            args.push(String(r.token), r.task_id, String(r.expected), r.next === null ? '' : String(r.next), String(r.now), r.run.run_id, r.run.node, r.run.status, optText(r.run.error), r.ahead === true ? '1' : '', r.retry === true ? '1' : '');
          }
          try {
            const res = (await this.run('commitFires', slot, [packed(args)])) as FireResult[];
            idx.forEach((i, j) => (results[i] = res[j]!));
          } catch (e) {
            if (!isUnavailable(e)) throw e;
            // The reply is lost, but the script may have run: look for our run records.
            const resolved = await this.resolveCommits(idx.map((i) => reqs[i]!)).catch(() => null);
            if (resolved === null) {
              failures++;
              lastError = e;
              return;
            }
            idx.forEach((i, j) => (results[i] = resolved[j]!));
          }
        }),
      );
      // Nothing known committed: the caller retries the whole batch. Otherwise a slot whose outcome
      // is unknown answers 'conflict' (its tasks are re-read; a committed run is in the outbox).
      if (failures === bySlot.size) throw toStoreError(lastError);
      return results;
    });
  }

  /** After a lost reply: a fire is committed when its run exists with the caller's token. */
  private async resolveCommits(reqs: readonly FireRequest[]): Promise<FireResult[]> {
    return Promise.all(
      reqs.map(async (r) => {
        const tok = await this.client.hget(`${this.base(r.slot)}:r:${r.run.run_id}`, 'tok');
        return tok === String(r.token) ? 'committed' : 'conflict';
      }),
    );
  }

  claimFires(reqs: readonly ClaimRequest[], node: string): Promise<ClaimResult[]> {
    if (reqs.length === 0) return Promise.resolve([]);
    return this.replicated(async () => {
      const results: ClaimResult[] = new Array<ClaimResult>(reqs.length).fill('fenced');
      const groups = new Map<string, number[]>();
      reqs.forEach((r, i) => {
        if (r.token === null) return; // not owned: fenced without asking
        const k = `${r.slot}|${r.token}`;
        const g = groups.get(k);
        if (g) g.push(i);
        else groups.set(k, [i]);
      });
      await Promise.all(
        [...groups.values()].map(async (idx) => {
          const first = reqs[idx[0]!]!;
          const args: string[] = [String(first.token!), node];
          for (const i of idx) args.push(reqs[i]!.task_id, reqs[i]!.run_id);
          const res = (await this.run('claimFires', first.slot, [packed(args)])) as ClaimResult[];
          idx.forEach((i, j) => (results[i] = res[j]!));
        }),
      );
      return results;
    });
  }

  releaseClaims(runIds: readonly string[], node: string): Promise<void> {
    if (runIds.length === 0) return Promise.resolve();
    return this.guard(async () => {
      const bySlot = new Map<number, string[]>();
      for (const id of runIds) {
        const slot = this.slotOfRun(id);
        const g = bySlot.get(slot);
        if (g) g.push(id);
        else bySlot.set(slot, [id]);
      }
      await Promise.all([...bySlot].map(([slot, ids]) => this.run('releaseClaims', slot, [node, ...ids])));
    });
  }

  uncommitHeld(taskId: string): Promise<boolean> {
    return this.replicated(async () => (await this.run('uncommitHeld', this.slotOfTask(taskId), [taskId])) === 1);
  }

  updateRuns(updates: readonly RunUpdate[]): Promise<void> {
    if (updates.length === 0) return Promise.resolve();
    return this.guard(async () => {
      const bySlot = new Map<number, string[]>();
      for (const u of updates) {
        const slot = this.slotOfTask(u.task_id);
        let args = bySlot.get(slot);
        if (!args) bySlot.set(slot, (args = []));
        args.push(
          u.run_id,
          u.task_id,
          u.status,
          String(u.attempts),
          opt(u.node),
          opt(u.start_time),
          opt(u.end_time),
          opt(u.http_status),
          optText(u.error),
          opt(u.duration_ms),
          optText(u.response_body),
          optText(u.shards ? JSON.stringify(u.shards) : null),
          u.deadline === undefined ? '' : u.deadline === null ? '!' : `=${u.deadline}`,
        );
      }
      await Promise.all([...bySlot].map(([slot, args]) => this.run('updateRuns', slot, [packed(args)])));
    });
  }

  unfinishedRuns(q: OutboxQuery): Promise<PendingDelivery[]> {
    return this.guard(() =>
      mergeSlots<PendingDelivery>(
        q.slots ?? this.allSlots(),
        q.after,
        q.limit,
        (p) => ({ time: p.run.scheduled_time, id: p.run.run_id }),
        async (slot, after, n) => {
          const r = (await this.run('unfinishedRuns', slot, [after ? after.time : '', after ? after.id : '', n, q.upTo ?? ''])) as unknown[];
          return {
            exhausted: r[0] === 1,
            last: r[1] === '' ? null : { time: Number(r[1]), id: r[2] as string },
            items: (r.slice(3) as [unknown, unknown][]).map(([run, task]) => ({ run: decodeRun(run), task: decodeTask(task) })),
          };
        },
      ),
    );
  }

  getRun(runId: string): Promise<Run | null> {
    return this.guard(async () => {
      const flat = await this.client.hgetall(`${this.base(this.slotOfRun(runId))}:r:${runId}`);
      return Object.keys(flat).length === 0 ? null : decodeRun(Object.entries(flat).flat());
    });
  }

  listRuns(taskId: string, limit: number): Promise<Run[]> {
    return this.pageRuns({ task_id: taskId, before: null, limit });
  }

  pageRuns(q: ListRunsQuery): Promise<Run[]> {
    return this.guard(async () => {
      const r = (await this.run('pageRuns', this.slotOfTask(q.task_id), [q.task_id, q.before ? q.before.time : '', q.before ? q.before.id : '', q.limit])) as unknown[];
      return r.map(decodeRun);
    });
  }

  updateTask(id: string, changes: TaskChanges, expect: TaskExpectation): Promise<Task | 'conflict' | null> {
    return this.replicated(async () => {
      const set: string[] = [];
      const del: string[] = [];
      for (const [k, v] of Object.entries(changes)) {
        if (v === undefined) continue;
        if (k in TASK_SCALARS) {
          if (v === null) del.push(k);
          else set.push(k, String(v));
        } else {
          set.push(`j:${k}`, JSON.stringify(v));
        }
      }
      const res = await this.run('updateTask', this.slotOfTask(id), [id, expect.state, expect.next_fire_time ?? '', set.length / 2, ...set, ...del]);
      if (res === 0) return null;
      if (res === 1) return 'conflict';
      return decodeTask(res);
    });
  }

  commitTrigger(req: Parameters<TaskStore['commitTrigger']>[0]): Promise<FireResult> {
    return this.replicated(async () => (await this.run('commitTrigger', req.slot, [req.task_id, req.run_id, req.scheduled_time, req.node, req.now])) as FireResult);
  }

  listTasks(q: ListTasksQuery): Promise<Task[]> {
    return this.guard(() =>
      mergeSlots<Task>(
        this.allSlots(),
        q.after === null ? null : { time: 0, id: q.after },
        q.limit,
        (t) => ({ time: 0, id: t.id }),
        async (slot, after, n) => {
          const r = (await this.run('listTasks', slot, [q.state ?? '', after ? after.id : '', n, q.namePrefix ?? ''])) as unknown[];
          return {
            exhausted: r[0] === 1,
            last: r[1] === '' ? null : { time: 0, id: r[1] as string },
            items: r.slice(2).map(decodeTask),
          };
        },
      ),
    );
  }

  stats(): Promise<StoreStats> {
    return this.guard(async () => {
      const tasks: StoreStats['tasks'] = { active: 0, paused: 0, completed: 0 };
      const runs: Record<string, number> = {};
      const per = (await Promise.all(this.allSlots().map((s) => this.run('stats', s, [])))) as [number, number, number, string[]][];
      for (const [a, p, c, rs] of per) {
        tasks.active += a;
        tasks.paused += p;
        tasks.completed += c;
        for (let i = 0; i + 1 < rs.length; i += 2) {
          const n = Number(rs[i + 1]);
          if (n !== 0) runs[rs[i]! as RunStatus] = (runs[rs[i]!] ?? 0) + n;
        }
      }
      return { tasks, runs };
    });
  }

  pruneRuns(olderThan: number, maxPerTask: number, only?: readonly number[] | null): Promise<number> {
    return this.guard(async () => {
      let total = 0;
      const slots = only ? [...only] : this.allSlots();
      const worker = async (): Promise<void> => {
        for (let s = slots.shift(); s !== undefined; s = slots.shift()) {
          let cursor = 'age';
          while (cursor !== '') {
            const [n, next] = (await this.run('pruneRuns', s, [olderThan, maxPerTask, cursor, 500])) as [number, string];
            total += n;
            cursor = next;
          }
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
      return total;
    });
  }

  purgeCompleted(olderThan: number, only?: readonly number[] | null): Promise<number> {
    return this.guard(async () => {
      let total = 0;
      const slots = only ? [...only] : this.allSlots();
      const worker = async (): Promise<void> => {
        for (let s = slots.shift(); s !== undefined; s = slots.shift()) {
          for (let more = true; more; ) {
            const r = (await this.run('purgeCompleted', s, [olderThan, 200])) as unknown[];
            more = r[0] === 1;
            for (let i = 1; i + 1 < r.length; i += 2) {
              total++;
              const id = r[i] as string;
              const key = r[i + 1] as string;
              if (key !== '') await evalScript(this.client, script('delIfEq'), [this.idemKey(key)], [id]);
            }
          }
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
      return total;
    });
  }

  reportRun(req: ReportRequest): Promise<ReportResult> {
    return this.guard(async () => {
      const [result, run] = (await this.run('reportRun', this.slotOfRun(req.run_id), [req.run_id, req.status, opt(req.message), opt(req.output), req.now, req.expire ? 1 : 0])) as [
        ReportResult['result'],
        string[],
      ];
      return { result, run: run.length === 0 ? null : decodeRun(run) };
    });
  }

  appendRunLog(runId: string, lines: readonly string[], now: number, caps: LogCaps): Promise<{ accepted: number; dropped: number } | null> {
    return this.guard(async () => {
      const args: (string | number)[] = [runId, now, caps.maxLines, caps.maxBytes];
      for (const l of lines) args.push(l, Buffer.byteLength(l));
      const r = (await this.run('appendRunLog', this.slotOfRun(runId), args)) as number[];
      return r[0] === -1 ? null : { accepted: r[0]!, dropped: r[1]! };
    });
  }

  readRunLog(runId: string, since: number, limit: number): Promise<RunLogLine[]> {
    return this.guard(async () => {
      if (limit <= 0) return [];
      const from = Math.max(0, since);
      const rows = await this.client.lrange(`${this.base(this.slotOfRun(runId))}:log:${runId}`, from, from + limit - 1);
      return rows.map((v, i) => {
        const bar = v.indexOf('|');
        return { seq: from + i + 1, time: Number(v.slice(0, bar)), line: v.slice(bar + 1) };
      });
    });
  }

  sharedSecret(name: string): Promise<string> {
    return this.guard(async () => {
      const k = globalKey(this.prefix, `secret:${name}`);
      await this.client.set(k, randomBytes(32).toString('hex'), 'NX');
      const v = await this.client.get(k);
      if (v === null) throw new StoreUnavailableError(`shared secret ${name} vanished`);
      return v;
    });
  }

  async ping(): Promise<boolean> {
    if (this.closing || this.client.status !== 'ready') return false;
    try {
      return (await this.client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /** Quits the client (when owned). Safe to call twice: returns the same promise. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.o.ownsClient === false) return;
      try {
        await this.client.quit();
      } catch {
        this.client.disconnect();
      }
    })();
    return this.closing;
  }
}
