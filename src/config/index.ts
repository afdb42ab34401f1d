/**
 * Configuration: xcron.toml plus XCRON_* environment overrides, validated once at start and frozen.
 * Only `main` reads it; every other module receives the values it needs.
 *
 * Env names: XCRON_<KEY> for a top-level key, XCRON_<SECTION>_<KEY> for a key in a section.
 * An unknown key (in the file or the environment), a wrong type or an out-of-range value throws a
 * ConfigError whose message names the key.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const schedulerSchema = z.strictObject({
  lookahead_ms: int(1000, 600_000).default(10_000),
  scan_interval_ms: int(50, 60_000).default(1000),
  max_sleep_ms: int(10, 30_000).default(30_000),
  misfire_threshold_ms: int(0, 86_400_000).default(5000),
  batch_size: int(1, 100_000).default(250),
  commit_coalesce_ms: int(0, 50).default(0),
  commit_ahead_ms: int(0, 10_000).default(1000),
  max_loaded: int(100, 10_000_000).default(200_000),
  jitter_seed: z.string().max(200).default(''),
});

const deliverySchema = z.strictObject({
  timeout_ms: int(1, 300_000).default(10_000),
  max_attempts: int(1, 100).default(3),
  backoff_ms: int(0, 3_600_000).default(1000),
  max_backoff_ms: int(0, 86_400_000).default(60_000),
  global_concurrency: int(1, 100_000).default(2048),
  per_origin_concurrency: int(1, 100_000).default(256),
  max_response_bytes: int(0, 100 * 1024 * 1024).default(65_536),
  user_agent: z.string().max(200).default(''),
  async_timeout_ms: int(1000, 7 * 86_400_000).default(3_600_000),
  worker_thread: z.boolean().default(true),
});

/** "a.b.c.d/n", "x::y/n" or a bare IP address. */
const isCidr = (s: string): boolean => {
  const m = /^([^/%]+?)(?:\/(\d{1,3}))?$/.exec(s);
  const v = m ? isIP(m[1]!) : 0;
  return v !== 0 && (m![2] === undefined || Number(m![2]) <= (v === 4 ? 32 : 128));
};
const HOST_PATTERN = /^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/i;

const callbackSchema = z.strictObject({
  body_limit: int(2, 100 * 1024 * 1024).default(65_536),
  signing_secrets: z.array(z.string().min(16, 'a signing secret needs at least 16 characters')).max(2).default([]),
  report_secret: z.string().refine((v) => v === '' || v.length >= 16, 'a report secret needs at least 16 characters').default(''),
  deny_cidrs: z
    .array(z.string().refine(isCidr, 'expected a CIDR such as "169.254.0.0/16" or an IP address'))
    .max(1000)
    .default(['169.254.0.0/16', 'fe80::/10', '169.254.169.254/32', 'fd00:ec2::254/128', '100.100.100.200/32']),
  allow_hosts: z
    .array(z.string().refine((s) => isCidr(s) || (s.length <= 253 && HOST_PATTERN.test(s)), 'expected a hostname, "*.domain", an IP address or a CIDR'))
    .max(1000)
    .default([]),
  allow_loopback: z.boolean().default(false),
  allow_private: z.boolean().default(false),
});

const TOKEN_RE = /^[\x21-\x7e]+$/;
const tokenSchema = z.strictObject({
  token: z.string().min(16, 'a token needs at least 16 characters').max(4096).regex(TOKEN_RE, 'a token is printable ASCII without spaces'),
  role: z.enum(['admin', 'read', 'executor']),
  name: z.string().min(1).max(100).optional(),
});

const authSchema = z.strictObject({
  tokens: z.array(tokenSchema).max(10_000).default([]),
  tokens_file: z.string().default(''),
  rate_limit_per_sec: z.number().min(0).max(1_000_000).default(0),
  rate_limit_burst: int(0, 10_000_000).default(0),
  public_metrics: z.boolean().default(false),
});

const storeSchema = z.strictObject({
  sqlite_file: z.string().min(1).default('xcron.db'),
  synchronous: z.enum(['normal', 'full']).default('normal'),
  worker_thread: z.boolean().default(true),
  /** The check of an existing database file before the store opens: quick (PRAGMA quick_check), full (integrity_check) or off. */
  startup_check: z.enum(['quick', 'full', 'off']).default('quick'),
});

const historySchema = z.strictObject({
  retention_days: int(0, 36_500).default(30),
  max_runs_per_task: int(0, 10_000_000).default(1000),
  completed_retention_days: int(0, 36_500).default(7),
  log_max_lines: int(0, 1_000_000).default(1000),
  log_max_bytes: int(0, 64 * 1024 * 1024).default(262_144),
});

const alertSchema = z.strictObject({
  webhook_url: z.string().default(''),
  max_consecutive_failures: int(0, 10_000).default(0),
});

const clusterSchema = z.strictObject({
  redis_url: z.string().default(''),
  /** Use the Redis Cluster client; redis_url may then list several seed nodes (host:port,host:port). */
  redis_cluster: z.boolean().default(false),
  slots: int(1, 16_384).default(256),
  lease_ms: int(500, 600_000).default(3000),
  key_prefix: z.string().min(1).max(100).default('xcron'),
  redis_password: z.string().default(''),
  redis_tls: z.boolean().default(false),
  /** The Sentinels' own password (redis+sentinel:// URLs); empty: none. */
  redis_sentinel_password: z.string().default(''),
  /**
   * Replicas that must confirm a task write or a fire commit (Redis WAIT) before it counts: with
   * asynchronous replication, a failover can otherwise lose the last acknowledged writes. 0: off.
   */
  min_replica_acks: int(0, 100).default(0),
  /** How long a write waits for those confirmations before it fails as unavailable (503/1004). */
  replica_ack_timeout_ms: int(10, 60_000).default(1000),
  /** How long the start waits for Redis before it gives up (exit 1, naming the URL). */
  connect_timeout_ms: int(100, 86_400_000).default(30_000),
});

/** A URL's scheme, for the checks of the queue targets and the results queue. */
const schemeOf = (url: string): string => /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
const TARGET_SCHEMES = { redis_stream: ['redis', 'rediss'], amqp: ['amqp', 'amqps'], nats: ['nats', 'tls'] } as const;

/** A named queue target (`[targets.<name>]`): where a task's `"callback": {"target": "<name>"}` is published. */
const targetSchema = z.strictObject({
  kind: z.enum(['redis_stream', 'amqp', 'nats']),
  url: z.string().min(1),
  /** redis_stream: the stream key (a task's `key` overrides it). */
  stream: z.string().max(255).default(''),
  /** redis_stream: trim the stream to about this many entries (XADD MAXLEN ~); 0: no trimming. */
  maxlen: int(0, 1_000_000_000).default(0),
  /** amqp: the exchange ("" is the default exchange, where the routing key names a queue). */
  exchange: z.string().max(255).default(''),
  /** amqp: the routing key (a task's `key` overrides it). */
  routing_key: z.string().max(255).default(''),
  /** nats: the JetStream subject (a task's `key` overrides it). */
  subject: z.string().max(255).default(''),
});

/** A named flow limit (`[flow.<key>]`): tasks with `"flow_key": "<key>"` share it. */
const flowSchema = z.strictObject({
  rate: int(0, 1_000_000).default(0),
  period_ms: int(1, 86_400_000).default(1000),
  parallelism: int(0, 100_000).default(0),
});

/** The results queue: run reports from executors, consumed like POST /xcron/reportRun. */
const resultsSchema = z.strictObject({
  kind: z.enum(['', 'redis_stream', 'amqp', 'nats']).default(''),
  url: z.string().default(''),
  stream: z.string().max(255).default('xcron-results'),
  /** nats: the subject executors publish reports to (captured by `stream`). */
  subject: z.string().max(255).default('xcron.results'),
  group: z.string().min(1).max(255).default('xcron'),
  queue: z.string().max(255).default('xcron-results'),
  /** How many reports are read (Redis) or unacknowledged (AMQP prefetch, NATS max_ack_pending) at a time. */
  batch: int(1, 10_000).default(100),
});

export const configSchema = z.strictObject({
  node_id: z.string().max(100).default(''),
  http_host: z.string().min(1).default('127.0.0.1'),
  /** Serve on an address other machines can reach without API tokens (refused at start otherwise). */
  allow_open: z.boolean().default(false),
  http_port: int(0, 65_535).default(8000),
  data_dir: z.string().min(1).default('./data'),
  default_timezone: z.string().min(1).default('UTC'),
  log_level: z.enum(LOG_LEVELS).default('info'),
  shutdown_timeout_ms: int(0, 600_000).default(10_000),
  request_body_limit: int(1024, 100 * 1024 * 1024).default(1_048_576),
  scheduler: schedulerSchema.default(schedulerSchema.parse({})),
  delivery: deliverySchema.default(deliverySchema.parse({})),
  callback: callbackSchema.default(callbackSchema.parse({})),
  auth: authSchema.default(authSchema.parse({})),
  store: storeSchema.default(storeSchema.parse({})),
  history: historySchema.default(historySchema.parse({})),
  alert: alertSchema.default(alertSchema.parse({})),
  cluster: clusterSchema.default(clusterSchema.parse({})),
  targets: z.record(z.string(), targetSchema).default({}),
  flow: z.record(z.string(), flowSchema).default({}),
  results: resultsSchema.default(resultsSchema.parse({})),
});

export type Config = z.infer<typeof configSchema>;

type Raw = Record<string, unknown>;

const isPlainObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses one environment string into the JSON type the key's default has. */
function coerceEnv(envName: string, text: string, example: unknown): unknown {
  if (typeof example === 'number') {
    const n = Number(text.trim());
    if (!/^-?\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(n)) {
      throw new ConfigError(`${envName}: expected a number, got ${JSON.stringify(text)}`);
    }
    return n;
  }
  if (typeof example === 'boolean') {
    const t = text.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(t)) return true;
    if (['0', 'false', 'no', 'off'].includes(t)) return false;
    throw new ConfigError(`${envName}: expected true or false, got ${JSON.stringify(text)}`);
  }
  if (Array.isArray(example)) {
    const t = text.trim();
    if (t.startsWith('[')) {
      try {
        return JSON.parse(t) as unknown;
      } catch {
        throw new ConfigError(`${envName}: expected a JSON array or a comma-separated list`);
      }
    }
    return t === '' ? [] : t.split(',').map((s) => s.trim());
  }
  return text;
}

/** Applies XCRON_* variables onto the raw file object. Unknown XCRON_* names are errors. */
export function applyEnv(raw: Raw, env: NodeJS.ProcessEnv): Raw {
  const defaults = configSchema.parse({}) as unknown as Raw;
  const known = new Map<string, { section: string | null; key: string; example: unknown }>();
  for (const [key, value] of Object.entries(defaults)) {
    if (isPlainObject(value)) {
      for (const [sub, example] of Object.entries(value)) {
        known.set(`XCRON_${key}_${sub}`.toUpperCase(), { section: key, key: sub, example });
      }
    } else {
      known.set(`XCRON_${key}`.toUpperCase(), { section: null, key, example: value });
    }
  }
  const out: Raw = { ...raw };
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith('XCRON_') || text === undefined) continue;
    if (name === 'XCRON_CONFIG') continue; // the config path itself, read by main
    const target = known.get(name);
    if (!target) {
      throw new ConfigError(`${name}: unknown setting (no such key in the configuration; see config/xcron.example.toml)`);
    }
    const value = coerceEnv(name, text, target.example);
    if (target.section === null) {
      out[target.key] = value;
    } else {
      const sec = out[target.section];
      out[target.section] = { ...(isPlainObject(sec) ? sec : {}), [target.key]: value };
    }
  }
  return out;
}

/** Validates a raw object (file + env) into a frozen Config. */
export function validateConfig(raw: Raw): Config {
  const r = configSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      if (i.code === 'unrecognized_keys') {
        const prefix = i.path.length ? `${i.path.join('.')}.` : '';
        return `unknown key ${i.keys.map((k) => `'${prefix}${k}'`).join(', ')}`;
      }
      return `'${i.path.join('.') || '(root)'}': ${i.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const cfg = r.data;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: cfg.default_timezone });
  } catch {
    throw new ConfigError(`'default_timezone': unknown IANA timezone ${JSON.stringify(cfg.default_timezone)}`);
  }
  if (cfg.delivery.max_backoff_ms < cfg.delivery.backoff_ms) {
    throw new ConfigError(`'delivery.max_backoff_ms' (${cfg.delivery.max_backoff_ms}) must be >= 'delivery.backoff_ms' (${cfg.delivery.backoff_ms})`);
  }
  if (cfg.scheduler.scan_interval_ms >= cfg.scheduler.lookahead_ms) {
    throw new ConfigError(`'scheduler.scan_interval_ms' must be smaller than 'scheduler.lookahead_ms'`);
  }
  if (cfg.alert.webhook_url !== '' && !/^https?:\/\/[^\s]+$/.test(cfg.alert.webhook_url)) {
    throw new ConfigError(`'alert.webhook_url' must be an absolute http(s) URL, got ${JSON.stringify(cfg.alert.webhook_url)}`);
  }
  if (cfg.cluster.min_replica_acks > 0 && cfg.cluster.redis_cluster) {
    throw new ConfigError(`'cluster.min_replica_acks' is not supported with 'cluster.redis_cluster = true' (a WAIT must reach the primary of each written slot); use a single primary with replicas, or Sentinel`);
  }
  checkTargets(cfg);
  if (cfg.node_id === '') cfg.node_id = `${hostname()}-${cfg.http_port}`;
  if (cfg.delivery.user_agent === '') cfg.delivery.user_agent = `xcron/${VERSION}`;
  return deepFreeze(cfg);
}

/** The rules across the keys of each `[targets.<name>]`, `[flow.<key>]` and of `[results]`. */
function checkTargets(cfg: Config): void {
  for (const [name, t] of Object.entries(cfg.targets)) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new ConfigError(`[targets.${JSON.stringify(name)}]: a target name is 1 to 64 letters, digits, _ or -`);
    const schemes: readonly string[] = TARGET_SCHEMES[t.kind];
    if (!schemes.includes(schemeOf(t.url))) throw new ConfigError(`'targets.${name}.url' must be a ${schemes.map((x) => `${x}://`).join(' or ')} URL for kind "${t.kind}"`);
    if (t.kind === 'redis_stream' && t.stream === '') throw new ConfigError(`'targets.${name}.stream' is required for kind "redis_stream"`);
    if (t.kind === 'amqp' && t.exchange === '' && t.routing_key === '') throw new ConfigError(`'targets.${name}': kind "amqp" needs 'exchange' or 'routing_key' (with the default exchange, the routing key names the queue)`);
    if (t.kind === 'nats' && t.subject === '') throw new ConfigError(`'targets.${name}.subject' is required for kind "nats"`);
  }
  for (const [key, f] of Object.entries(cfg.flow)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(key)) throw new ConfigError(`[flow.${JSON.stringify(key)}]: a flow key is 1 to 64 letters, digits, _, . or -`);
    if (f.rate === 0 && f.parallelism === 0) throw new ConfigError(`[flow.${key}]: sets neither 'rate' nor 'parallelism'`);
  }
  const r = cfg.results;
  if (r.kind === '') return;
  const schemes: readonly string[] = TARGET_SCHEMES[r.kind];
  if (!schemes.includes(schemeOf(r.url))) throw new ConfigError(`'results.url' must be a ${schemes.map((x) => `${x}://`).join(' or ')} URL for kind "${r.kind}"`);
  if (r.kind === 'redis_stream' && r.stream === '') throw new ConfigError(`'results.stream' is required for kind "redis_stream"`);
  if (r.kind === 'amqp' && r.queue === '') throw new ConfigError(`'results.queue' is required for kind "amqp"`);
  if (r.kind === 'nats' && (r.stream === '' || r.subject === '')) throw new ConfigError(`'results.stream' and 'results.subject' are required for kind "nats"`);
  if (r.kind === 'nats' && !/^[A-Za-z0-9_-]+$/.test(r.stream)) throw new ConfigError(`'results.stream' must be a JetStream stream name (letters, digits, _ or -) for kind "nats"`);
}

export const VERSION = '0.1.0';

/**
 * Reads the TOML file (if it exists or was named explicitly), applies env, validates. `dev` (the
 * server's --dev flag) then allows callbacks to loopback and private addresses, over file and env.
 */
export function loadConfig(opts: { path?: string | undefined; explicit: boolean; env: NodeJS.ProcessEnv; dev?: boolean }): Config {
  let raw: Raw = {};
  if (opts.path) {
    let text: string | null = null;
    try {
      text = readFileSync(opts.path, 'utf8');
    } catch (e) {
      if (opts.explicit || (e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ConfigError(`cannot read config file ${opts.path}: ${(e as Error).message}`);
      }
    }
    if (text !== null) {
      try {
        raw = parseToml(text) as Raw;
      } catch (e) {
        throw new ConfigError(`config file ${opts.path} is not valid TOML: ${(e as Error).message}`);
      }
    }
  }
  const merged = applyEnv(raw, opts.env);
  if (opts.dev) merged.callback = { ...(isPlainObject(merged.callback) ? merged.callback : {}), allow_loopback: true, allow_private: true };
  return validateConfig(merged);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
