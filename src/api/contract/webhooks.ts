/**
 * What xcron sends, as OpenAPI webhooks: the task callback (each fire) and the failure alert. The
 * header names are the delivery's (src/delivery, src/scheduler); the receiving side answers.
 */
import { z } from 'zod';

export interface WebhookHeader {
  name: string;
  required: boolean;
  description: string;
}

export interface Webhook {
  name: string;
  operationId: string;
  summary: string;
  description: string;
  headers: readonly WebhookHeader[];
  body: z.ZodType;
  responses: Record<string, { description: string }>;
}

const CALLBACK_HEADERS: readonly WebhookHeader[] = [
  { name: 'X-Xcron-Task-Id', required: true, description: 'The task id.' },
  { name: 'X-Xcron-Fire-Id', required: true, description: '`<task_id>:<scheduled ms>`: identical on every retry and redelivery of one fire. Dedupe on it.' },
  { name: 'X-Xcron-Run-Id', required: true, description: 'The run id, the same as `X-Xcron-Fire-Id`; pass it to reportRun.' },
  { name: 'X-Xcron-Scheduled-Time', required: true, description: 'Scheduled fire time, ms epoch.' },
  { name: 'X-Xcron-Attempt', required: true, description: '1, 2, …: keeps counting across crashes and handovers.' },
  { name: 'X-Xcron-Report-Token', required: true, description: 'The run\'s report token (64 hex characters), for reportRun and appendRunLog.' },
  {
    name: 'X-Xcron-Signature',
    required: false,
    description: '`t=<unix s>,v1=<hex HMAC-SHA256 of "t.body">`, one `v1` per configured secret; present when `[callback] signing_secrets` is set. A GET callback signs the empty body.',
  },
  { name: 'X-Xcron-Shard-Index', required: false, description: 'With `route: "broadcast"` only: which target (0-based).' },
  { name: 'X-Xcron-Shard-Total', required: false, description: 'With `route: "broadcast"` only: how many targets.' },
  { name: 'User-Agent', required: true, description: 'xcron and its version.' },
];

const AlertBody = z
  .object({
    event: z.enum(['run_failed', 'task_paused']),
    task_id: z.string(),
    task_name: z.string().nullable(),
    run_id: z.string(),
    scheduled_time: z.number(),
    error: z.string().nullable(),
    http_status: z.int().nullable(),
    attempts: z.int(),
    node: z.string(),
    time: z.number().meta({ description: 'When the alert was made, ms epoch.' }),
    consecutive_failures: z.int().optional().meta({ description: 'task_paused only: the failures that paused the task.' }),
  })
  .meta({ id: 'Alert', description: 'A final failure, or a task paused after too many consecutive failures.' });

export const WEBHOOKS: readonly Webhook[] = [
  {
    name: 'taskCallback',
    operationId: 'taskCallback',
    summary: 'A task fires: its callback',
    description:
      'Sent to `callback.url` (or one or every target of `callback.urls`) with the task\'s `callback.method` (POST by default; PUT, PATCH, DELETE, or GET without a body) and its `callback.headers`. The body is the task\'s `callback.body`, byte for byte as given. Content-Type is application/json.',
    headers: CALLBACK_HEADERS,
    body: z.record(z.string(), z.unknown()).meta({ description: 'The task\'s `callback.body`.' }),
    responses: {
      '2XX': { description: 'Done: the run succeeds (a task with `completion: "async"` stays RUNNING until reportRun).' },
      '202': { description: 'Accepted: the run stays RUNNING until the worker calls reportRun (any task).' },
      default: { description: 'Any other answer, a timeout or a connection error fails the attempt; it is retried by the task\'s retry policy.' },
    },
  },
  {
    name: 'failureAlert',
    operationId: 'failureAlert',
    summary: 'A run failed for good: the alert',
    description: 'POSTed to the task\'s `alert_url`, else to `[alert] webhook_url`, with up to 3 attempts.',
    headers: [
      ...CALLBACK_HEADERS.filter((h) => ['X-Xcron-Task-Id', 'X-Xcron-Scheduled-Time', 'X-Xcron-Attempt', 'X-Xcron-Signature', 'User-Agent'].includes(h.name)),
      { name: 'X-Xcron-Fire-Id', required: true, description: '`alert:<event>:<run_id>`: the same on every attempt of one alert. Dedupe on it.' },
    ],
    body: AlertBody,
    responses: { '2XX': { description: 'Received.' }, default: { description: 'Retried (up to 3 attempts).' } },
  },
];
