/**
 * What each configuration key means, next to the schema in ./index.ts. The configuration reference
 * (docs/configuration-reference.md) is generated from the schema and these texts by
 * `npm run docs:config`; a test fails when the committed file differs from a fresh rendering.
 *
 * The types below require a text for every key of the schema: a key added to the schema without one
 * does not compile. Texts are Markdown, written for someone deploying the service.
 */
import type { Config } from './index.js';

/** Sections of named tables (`[targets.<name>]`): described per key of one table. */
type NamedSectionKey = 'targets' | 'flow';
type SectionKey = Exclude<{ [K in keyof Config]: Config[K] extends readonly unknown[] ? never : Config[K] extends object ? K : never }[keyof Config], NamedSectionKey>;

export type KeyDescriptions = {
  [K in keyof Config]-?: K extends NamedSectionKey ? { [S in keyof Config[K][string]]-?: string } : K extends SectionKey ? { [S in keyof Config[K]]-?: string } : string;
};

export const SECTION_DESCRIPTIONS: { readonly [K in SectionKey | NamedSectionKey]: string } = {
  scheduler: 'How tasks are loaded, committed and fired.',
  delivery: 'How callbacks are sent: timeouts, retries, concurrency. A task\'s own `timeout_ms`, `retry` and `async_timeout_ms` override the defaults here.',
  callback: 'Callback bodies, signing, the report-token secret and the SSRF guard (where callbacks and alert webhooks may connect). Guard rule order: `allow_hosts`, then `deny_cidrs`, then `allow_loopback` / `allow_private`.',
  auth: 'API tokens and rate limits. With no token configured the API is open and a warning is logged at start; the server then listens on a loopback address only, unless `allow_open = true`.',
  store: 'The SQLite store of standalone mode.',
  history: 'Retention of run records, completed tasks and run logs.',
  alert: 'Alerts on final failures and auto-pause.',
  cluster: 'Cluster mode: several nodes sharing one Redis. With an empty `redis_url` the process runs standalone on SQLite.',
  targets: 'Named queue targets, one table each: `[targets.orders]`. A task sends to one with `"callback": {"target": "orders", "key": "…", "body": {…}}` instead of an HTTP URL; the URL and its credentials stay here and never appear in tasks, logs or the dashboard. Set in the file only (no environment variables); keep the file readable by the service alone when a URL carries a password. See [Queue targets](targets.md).',
  flow: 'Named flow limits, one table each: `[flow.partner-api]`. A task opts in with `"flow_key": "partner-api"`; every task naming a key shares its limit (across the nodes of a cluster). Fires over the limit wait, in order; they are neither dropped nor failed. A task can instead carry its own limit (`"flow": {…}`). Set in the file only (no environment variables). See [Flow control](flow-control.md).',
  results: 'The results queue: executors report run outcomes (the body of `POST /xcron/reportRun`) by writing to a Redis stream, an AMQP queue or a NATS JetStream subject that xcron consumes, at least once. See [Queue targets](targets.md).',
};

export const KEY_DESCRIPTIONS: KeyDescriptions = {
  node_id: 'Unique name of this node (run records, `/xcron/cluster`). Empty: `<hostname>-<http_port>`.',
  http_host: 'Address the HTTP API listens on. The default, `127.0.0.1`, serves this machine only. Another address (`0.0.0.0`: every interface) needs API tokens (`[auth] tokens`) or `allow_open = true`, else the server does not start (exit 2).',
  allow_open: 'Serve on an address other machines can reach (`http_host` other than loopback) without API tokens. Without tokens anyone who can connect may create tasks, and so make this server send requests; leave it `false` and configure `[auth] tokens` unless a private network or a proxy in front guards the port. The container image sets it, as a container must listen on every interface.',
  http_port: 'Port of the HTTP API (0 picks a free port).',
  data_dir: 'Directory of the SQLite file (standalone mode); created if missing.',
  default_timezone: 'IANA time zone of cron tasks created without a `timezone` field. Stored with each task at creation, so changing it later does not move existing tasks.',
  log_level: 'Log level. Logs are JSON lines on stdout.',
  shutdown_timeout_ms: 'On SIGTERM/SIGINT: how long deliveries in flight may take to finish (ms). Runs still unfinished are redelivered, with the same fire id, on the next start.',
  request_body_limit: 'Largest accepted API request body (bytes). Larger: HTTP 413, code 1008.',
  scheduler: {
    lookahead_ms: 'Tasks due within this window (ms) are held in memory in the timer heap. Must be larger than `scan_interval_ms`.',
    scan_interval_ms: 'How often the window is extended from the store (ms); every 10th scan is also a safety rescan. Must be smaller than `lookahead_ms`.',
    max_sleep_ms: 'The timer never sleeps longer than this (ms), so clock jumps are noticed quickly.',
    misfire_threshold_ms: 'A periodic tick later than this (ms) is a misfire and follows the task\'s `misfire` policy (`fire_once`: fire once now for the missed ticks; `skip`: record `MISSED` and wait for the next tick). One-shot tasks are never dropped: they fire late.',
    batch_size: 'At most this many fires are committed in one store transaction. Smaller batches hand the first callbacks of a burst to delivery sooner; larger ones cost slightly less per fire. A cluster node commits at least 16 fires per owned slot at a time.',
    commit_coalesce_ms: 'While fires stream in (the last commit held 4 or more), at most one commit per this many ms. Adds at most this much lateness, and only under load. 0 commits as soon as the previous commit returns, which batches enough when the store runs in its own thread; with `[store] worker_thread = false`, 5 helps.',
    commit_ahead_ms: 'A fire is committed up to this many ms before it is due and held until then (the callback never leaves early). `pauseTask`, `updateTask` and `deleteTask` before the due time undo a held fire (in a cluster, through any node until the owner claims it 100 ms before the due time). Tasks with `overlap: "skip"` commit at the due time. 0 commits every fire when due.',
    max_loaded: 'At most this many tasks are held in memory; the window shrinks when more are due.',
    jitter_seed: 'Seed of the jitter offsets (`jitter_ms`): a fire goes out at an offset derived from the seed, the task id and the tick, the same on every node and after a restart. Give every node of a cluster the same seed; changing it moves the offsets of future fires.',
  },
  delivery: {
    timeout_ms: 'Default per-attempt timeout of a callback (ms); a task\'s `timeout_ms` overrides it.',
    max_attempts: 'Default number of attempts per fire (retry policy); a task\'s `retry.max_attempts` overrides it.',
    backoff_ms: 'Default base of the exponential backoff between attempts (ms); a task\'s `retry.backoff_ms` overrides it.',
    max_backoff_ms: 'Default cap of the backoff (ms); must be at least `backoff_ms`. A task\'s `retry.max_backoff_ms` overrides it.',
    global_concurrency: 'Callbacks in flight at once, over all receivers.',
    per_origin_concurrency: 'Callbacks in flight at once to one origin (scheme://host:port); a hanging receiver fills only these. Per node: in a cluster of N nodes, about cap / N on each gives the origin the same total.',
    max_response_bytes: 'Response bytes read at most; the rest is discarded (the first 1 KiB is kept in the run record).',
    user_agent: 'User-Agent of callbacks. Empty: `xcron/<version>`.',
    async_timeout_ms: 'Report deadline of async runs (completion `async`, or a callback answered `202 Accepted`): a run not reported within this time (ms) is retried or fails with error `timeout`. A task\'s `async_timeout_ms` overrides it.',
    worker_thread: 'Send callbacks from a worker thread (`true`) or from the main thread (`false`). The thread keeps the HTTP work off the event loop that runs the timers, the store commits and the API. Cluster nodes sharing one machine\'s cores: `false`.',
  },
  callback: {
    body_limit: 'Largest `callback.body` a task may carry (bytes). Larger: HTTP 413, code 1008.',
    signing_secrets: 'HMAC-SHA256 signing secrets (at most 2: current, then next), at least 16 characters each. Empty: callbacks are not signed. Each secret adds a `v1=` part to `X-Xcron-Signature`, and to the same signature on queue target messages (see [Queue targets](targets.md)). Prefer the environment variable to writing secrets in the file.',
    report_secret: 'Secret behind `X-Xcron-Report-Token`, the per-run token a worker presents to `reportRun` and `appendRunLog`. At least 16 characters. Empty: a random secret is created once and kept in the store, shared by every node. Prefer the environment variable to writing it in the file.',
    deny_cidrs: 'CIDRs or addresses callbacks may not connect to. The default refuses link-local addresses and the cloud metadata endpoints (AWS/GCP/Azure `169.254.169.254`, AWS IPv6 `fd00:ec2::254`, Alibaba `100.100.100.200`). Setting it replaces the list: keep the metadata entries.',
    allow_hosts: 'Hostnames (`receiver.internal`, `*.jobs.internal`), IP addresses or CIDRs always allowed; they beat every other rule.',
    allow_loopback: 'Allow callbacks to loopback destinations (127.0.0.0/8, ::1, 0.0.0.0/8, ::), that is to this machine. Off by default: a task could otherwise reach services that trust local connections. For local development, `./xcron_server --dev` allows loopback and private destinations; in production, name the receivers you allow in `allow_hosts` instead.',
    allow_private: 'Allow callbacks to private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10). Off by default. Receivers on an internal network: name them in `allow_hosts` (hostnames or CIDRs) rather than allowing every private address.',
  },
  auth: {
    tokens: 'API tokens: a list of `{ token, role, name? }`; role `admin` may call every endpoint, role `read` the read endpoints and `/metrics`, role `executor` only `registerExecutor` and `unregisterExecutor` (executors registering themselves). A token is at least 16 printable ASCII characters without spaces. From the environment as a JSON array.',
    tokens_file: 'A file of tokens read at start: lines `<token> <role> [name]` (`#` starts a comment), or a JSON array of `{token, role, name}`. Merged with `tokens`. Empty: none.',
    rate_limit_per_sec: 'Rate limit on `/xcron/*`: requests per second per token (per client IP for requests without a valid token). Over it: HTTP 429, code 1014, `Retry-After`. 0: off.',
    rate_limit_burst: 'Requests a client may send in a burst. 0: the same as `rate_limit_per_sec` (at least 1).',
    public_metrics: 'Serve `GET /metrics` without a token even when tokens are configured.',
  },
  store: {
    sqlite_file: 'SQLite file name inside `data_dir`.',
    synchronous: '`normal`: a committed write survives a crash or `kill -9` of the process (WAL). `full`: it also survives a power loss (fsync on every commit; slower).',
    worker_thread: 'Run the database in its own thread (`true`) or on the main thread (`false`). The thread keeps commits and WAL checkpoints off the event loop that runs the timers and the API.',
    startup_check: 'How the database file is checked before the store opens it. `quick`: `PRAGMA quick_check` (every page of every table and index); `full`: `PRAGMA integrity_check` (also that each index matches its table; about 2.5 times the CPU of `quick`); `off`: no check. A file that fails does not start (exit 1, with a message naming the file and what to do). The check adds to the start-up time: about 1.8 s of CPU for `quick` at 1M tasks and 1M run records (a 766 MB file), plus reading the file from disk.',
  },
  history: {
    retention_days: 'Finished run records older than this many days are pruned in the background. 0: keep forever.',
    max_runs_per_task: 'At most this many run records are kept per task. 0: no limit.',
    completed_retention_days: 'Completed tasks (one-shots that fired, tasks past their `end_time`) are deleted, with their runs, this many days after they completed. 0: keep forever.',
    log_max_lines: 'Execution log of a run (`appendRunLog`): at most this many lines are kept per run; more are dropped and the caller is told how many.',
    log_max_bytes: 'Execution log of a run: at most this many bytes are kept per run.',
  },
  alert: {
    webhook_url: 'Global webhook POSTed when a run finally fails and when a task is auto-paused. A task\'s `alert_url` takes precedence. Empty: no global webhook.',
    max_consecutive_failures: 'Pause a task after this many consecutive final failures and send a `task_paused` alert. 0: never. A task\'s `max_consecutive_failures` overrides it.',
  },
  cluster: {
    redis_url: 'Empty: standalone (SQLite). A Redis URL (`redis://host:port/db`, `rediss://` for TLS): cluster mode. With Sentinel: `redis+sentinel://s1:26379,s2:26379,s3:26379/<primary name>[/db]` (`rediss+sentinel://` for TLS). With `redis_cluster`: a comma-separated list of seed nodes.',
    redis_cluster: 'Use the Redis Cluster client; `redis_url` may then list several seed nodes (`redis://h1:p1,h2:p2`).',
    slots: 'Number of hash slots; fixed for the life of a cluster (a node started with another value refuses to start).',
    lease_ms: 'Slot lease time (ms). A crashed node\'s slots are taken over within about this time + 1 s.',
    key_prefix: 'Prefix of every Redis key (the keys of one slot share the hash tag `{<prefix>:<slot>}`).',
    redis_password: 'Redis password. Prefer the environment variable to writing it in the file.',
    redis_tls: 'Connect to Redis over TLS.',
    redis_sentinel_password: 'The Sentinels\' own password (`redis+sentinel://` URLs). Empty: none.',
    min_replica_acks: 'Replicas that must confirm each task write and each fire commit and claim (Redis `WAIT`) before it is acknowledged or acted on, so a failover to a replica cannot lose it. 0: off. With fewer replicas reachable, writes answer 503 and nothing fires: keep it below your replica count. Not available with `redis_cluster = true`.',
    replica_ack_timeout_ms: 'How long a write waits for those confirmations before it fails as unavailable (HTTP 503, code 1004).',
    connect_timeout_ms: 'How long the start waits for Redis (ms). Meanwhile a `waiting for Redis at <url>` line is logged; then the process exits with code 1 and a message naming the URL (its password hidden). Also the wait of `xcron_server export` and `import`.',
  },
  targets: {
    kind: '`redis_stream` (XADD to a stream), `amqp` (publish to a RabbitMQ exchange with publisher confirms) or `nats` (JetStream publish). Required.',
    url: 'The broker: `redis://[:password@]host:port[/db]` (`rediss://` for TLS), `amqp://user:password@host:port/vhost` (`amqps://`), or `nats://[user:password@]host:port`. Required. It may be another Redis than the cluster store.',
    stream: '`redis_stream`: the stream key (required). A task\'s `key` overrides it.',
    maxlen: '`redis_stream`: trim the stream to about this many entries on each XADD (`MAXLEN ~`). 0: no trimming.',
    exchange: '`amqp`: the exchange to publish to. Empty: the default exchange, where the routing key names a queue.',
    routing_key: '`amqp`: the routing key. A task\'s `key` overrides it. Messages are published mandatory: one that no queue receives counts as refused.',
    subject: '`nats`: the subject (required), which a JetStream stream must capture. A task\'s `key` overrides it.',
  },
  flow: {
    rate: 'At most this many fires go out per `period_ms` (a sliding window). 0: no rate limit.',
    period_ms: 'The window of `rate` (ms).',
    parallelism: 'At most this many runs in flight at once (an async run counts until its report or deadline). 0: no cap. A key needs `rate` or `parallelism`.',
  },
  results: {
    kind: 'Empty: no results queue. `redis_stream`: read a stream through a consumer group. `amqp`: consume a queue with manual acknowledgements. `nats`: a durable JetStream pull consumer with explicit acknowledgements.',
    url: 'The broker of the results queue (`redis://…`, `amqp://…` or `nats://…`). Prefer the environment variable when it carries a password.',
    stream: '`redis_stream`: the stream executors write reports to (entries with a `report` field holding the JSON report). Created with the group if missing. `nats`: the JetStream stream (created capturing `subject` if missing).',
    subject: '`nats`: the subject executors publish reports to (the message data is the JSON report).',
    group: '`redis_stream`: the consumer group (created if missing). Every node of a cluster reads through the same group, as a consumer named after its `node_id`. `nats`: the durable consumer\'s name, shared by every node.',
    queue: '`amqp`: the queue executors publish reports to (declared durable if missing).',
    batch: 'Reports read per XREADGROUP (Redis) or unacknowledged at a time (AMQP prefetch, NATS `max_ack_pending`).',
  },
};
