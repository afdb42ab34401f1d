/**
 * The request bodies of createTask and updateTask as zod schemas: the field lists the validator
 * (./validate.ts) accepts are read from these shapes, and the OpenAPI document is generated from
 * them, so the published contract and the accepted fields cannot drift apart. The validator keeps
 * its own checks (with messages that name the field) for everything a schema cannot say: cron
 * syntax, time windows, header values, body size.
 */
import { z } from 'zod';
import { ROUTES } from './types.js';

const MAX_URL = 2048;
/** `null` is accepted wherever a field is optional: it means "not given" (or, on update, "clear"). */
const opt = <T extends z.ZodType>(s: T) => s.nullable().optional();

const CallbackUrl = z.string().min(1).max(MAX_URL).meta({ description: 'Absolute http:// or https:// URL without credentials.', examples: ['http://settle.internal/run'] });
const UnixTime = z
  .union([z.int().min(0), z.string().regex(/^\d{10}$|^\d{13}$/)])
  .meta({ description: 'Unix timestamp in seconds (10 digits) or milliseconds (13 digits), as a number or a string.' });

export const RetryInput = z
  .strictObject({
    max_attempts: z.int().min(1).max(100).optional().meta({ description: 'Attempts per fire (default 3).' }),
    backoff_ms: z.int().min(0).max(3_600_000).optional().meta({ description: 'First backoff (default 1000 ms), doubling per attempt.' }),
    max_backoff_ms: z.int().min(0).max(86_400_000).optional().meta({ description: 'Backoff ceiling (default max(60000, backoff_ms)); not below backoff_ms.' }),
  })
  .meta({ id: 'RetryInput', description: 'Retry policy of a task (defaults from `[delivery]`).' });

export const CallbackInput = z
  .strictObject({
    url: opt(CallbackUrl).meta({ description: 'The target called when the task fires. Required unless `urls` or `target` is given.' }),
    urls: opt(z.array(CallbackUrl).min(1).max(32)).meta({ description: 'Several targets; `route` decides how a fire uses them.' }),
    route: opt(z.enum(ROUTES)).meta({ description: 'How a fire picks among `urls` (default `failover`) or among the live instances of `executor` (default `round_robin`); `first`, `last`, `lru`, `lfu` and `busy_over` only with `executor`.' }),
    executor: opt(z.string()).meta({ description: 'An executor group (registered with registerExecutor), instead of `url`: each fire goes to a live instance picked by `route`.' }),
    target: opt(z.string()).meta({ description: 'A queue target named in the configuration (`[targets.<name>]`), instead of `url`.' }),
    key: opt(z.string()).meta({ description: "With `target`: overrides the target's stream name, routing key or subject." }),
    body: opt(z.record(z.string(), z.unknown())).meta({ description: 'JSON object sent as the callback body (default `{}`), exactly as written; at most `[callback] body_limit` bytes.' }),
    method: opt(z.enum(['POST', 'PUT', 'PATCH', 'DELETE', 'GET'])).meta({ description: 'HTTP method of the callback (default POST; GET sends no body).' }),
    headers: opt(z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/), z.string().max(8192))).meta({
      description: 'Extra request headers (at most 50). Transport headers and `X-Xcron-*` are reserved; values are visible ASCII with inner spaces and tabs.',
    }),
  })
  .meta({ id: 'CallbackInput', description: 'Where and how a fire is delivered.' });

export const FlowInput = z
  .strictObject({
    rate: z.int().min(0).max(1_000_000).optional().meta({ description: 'At most this many fires go out per period_ms (0 or absent: no rate).' }),
    period_ms: z.int().min(1).max(86_400_000).optional().meta({ description: 'The rate window (default 1000 ms).' }),
    parallelism: z.int().min(0).max(100_000).optional().meta({ description: 'At most this many runs in flight (0 or absent: no cap).' }),
  })
  .meta({ id: 'FlowInput', description: "The task's own flow limit; fires over it wait (in order), they are not dropped or failed. Not together with flow_key." });

/** Options shared by createTask and updateTask. */
const optionFields = {
  name: opt(z.string().min(1).max(200)).meta({ description: 'Free text, searchable by prefix in listTasks.' }),
  timezone: opt(z.string()).meta({ description: 'IANA timezone name (default: the server `default_timezone`).', examples: ['Asia/Shanghai'] }),
  timeout_ms: opt(z.int().min(1).max(300_000)).meta({ description: 'Per-attempt timeout (default `[delivery] timeout_ms`).' }),
  retry: opt(RetryInput),
  misfire: opt(z.enum(['fire_once', 'skip'])).meta({ description: 'Ticks missed while nothing could fire them: fired once, late (`fire_once`, default), or recorded MISSED (`skip`).' }),
  overlap: opt(z.enum(['allow', 'skip', 'queue'])).meta({ description: 'A tick whose previous run is still being delivered: fired (`allow`, default), recorded SKIPPED, or queued.' }),
  paused: opt(z.boolean()).meta({ description: 'Create (or set) the task paused.' }),
  start_time: opt(UnixTime).meta({ description: 'Periodic tasks fire only from this time on.' }),
  end_time: opt(UnixTime).meta({ description: 'Periodic tasks fire only until this time; after it the task is completed.' }),
  on_success: opt(z.array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/)).max(32)).meta({ description: 'Task ids triggered once each when a run of this task succeeds; unknown ids and cycles are refused (1009).' }),
  alert_url: opt(CallbackUrl).meta({ description: 'Where a final failure is POSTed (else the global `[alert] webhook_url`).' }),
  max_consecutive_failures: opt(z.int().min(0).max(10_000)).meta({ description: 'Pause the task after this many consecutive final failures (0: never).' }),
  completion: opt(z.enum(['sync', 'async'])).meta({ description: '`sync` (default): a 2xx answer finishes the run; `async`: the run stays RUNNING until the worker reports it.' }),
  async_timeout_ms: opt(z.int().min(1000).max(7 * 86_400_000)).meta({ description: 'Report deadline of an async run (default `[delivery] async_timeout_ms`).' }),
  jitter_ms: opt(z.int().min(0).max(3_600_000)).meta({ description: 'Periodic tasks: each fire goes out at a deterministic offset in [tick, tick + jitter_ms); the fire id keeps the tick. 0 or null: at the tick.' }),
  flow_key: opt(z.string()).meta({ description: 'The fires wait on the flow limit `[flow.<key>]` of the configuration (rate and/or parallelism, shared by every task naming it).' }),
  flow: opt(FlowInput),
  tags: opt(z.array(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/)).max(16)).meta({ description: 'Up to 16 labels (1 to 64 characters of A-Z a-z 0-9 _ . : -) for listTasks?tag= and the bulk operations; [] or null clears them.' }),
};

export const CreateTaskInput = z
  .strictObject({
    type: z.literal([1, 2]).meta({ description: '1: periodic (cron expression); 2: one-shot (unix timestamp).' }),
    format: z.string().min(1).max(256).meta({ description: 'Type 1: cron expression (5 or 6 fields, or Quartz). Type 2: unix timestamp in seconds (10 digits) or milliseconds (13 digits).', examples: ['0 1 * * *'] }),
    callback: CallbackInput,
    idempotency_key: opt(z.string().min(1).max(200)).meta({ description: 'The same key again returns the existing task instead of creating a duplicate.' }),
    ...optionFields,
  })
  .meta({ id: 'CreateTaskInput', description: 'A task to create. Unknown fields are refused (code 1000).' });

export const UpdateTaskInput = z
  .strictObject({
    task_id: z.string().meta({ description: 'The task to change.' }),
    format: z.string().min(1).max(256).optional().meta({ description: 'A new schedule (the type cannot change).' }),
    callback: CallbackInput.optional().meta({ description: 'Replaces the callback whole.' }),
    ...optionFields,
  })
  .meta({ id: 'UpdateTaskInput', description: 'Changes to a task: fields not given are kept. `type` cannot change.' });

/** The field names a schema's object accepts (the validator refuses any other). */
export const fieldsOf = (s: z.ZodObject): Set<string> => new Set(Object.keys(s.shape));
