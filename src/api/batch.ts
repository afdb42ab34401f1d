/**
 * Batch create: POST /xcron/createTasks {tasks: [...]} stores up to MAX_BATCH tasks in one request.
 * The answer is 200 with a result per item, in input order: {task_id, next_fire_time} (plus
 * existing: true when its idempotency key named a task already there), or {code, message} with the
 * code and message a single createTask would have answered. Each item is atomic and independent.
 */
import type { Context, Hono } from 'hono';
import type { Logger } from 'pino';
import { destinationsOf } from '../delivery/ssrf.js';
import { Codes, StoreUnavailableError, XcronError, describe } from '../errors.js';
import type { TaskService } from '../service/index.js';
import type { CreateResult } from '../store/types.js';
import { arrayItemTexts, exactBodyText, isObject, mayLoseNumbers } from '../task/index.js';
import { z } from 'zod';
import { reply, xcronOperations } from './contract/registry.js';
import { TaskId } from './contract/schemas.js';
import type { ApiDeps } from './deps.js';
import { readJson, requestText } from './request.js';

/** The operations of this file (see xcronOperations): under the tag 'tasks' unless they name another. */
const operation = xcronOperations('tasks');

/** Most tasks one createTasks request may hold. */
export const MAX_BATCH = 1000;

const BatchItem = z.union([
  z.object({ task_id: TaskId, next_fire_time: z.int().nullable(), existing: z.literal(true).optional().meta({ description: 'Its idempotency key named a task already there.' }) }),
  z.object({ code: z.int().meta({ description: 'The code a single createTask would have answered.' }), message: z.string() }),
]);

export const createTasksOp = operation.change('createTasks', {
  summary: 'Create up to 1,000 tasks in one request',
  description: 'Each item is a createTask body, created on its own: a bad item stores nothing and never blocks the others. The answer holds a result per item, in input order.',
  body: z
    .strictObject({
      tasks: z.array(z.unknown().meta({ description: 'A createTask body (CreateTaskInput); each item is checked on its own.' })).min(1).max(1000),
    })
    .meta({ id: 'CreateTasksInput' }),
  data: z.object({ results: z.array(BatchItem), succeeded: z.int(), failed: z.int() }).meta({ id: 'CreatedTasks' }),
  errors: [Codes.INVALID_OPTION],
});

export type BatchItemResult = { task_id: string; next_fire_time: number | null; existing?: true } | { code: number; message: string };

/** An item's failure as the single createTask would have answered it (code and message). */
export function itemFailure(err: unknown, log: Logger): { code: number; message: string } {
  if (err instanceof XcronError) return { code: err.code, message: err.message };
  if (err instanceof StoreUnavailableError) return { code: Codes.STORE_WRITE, message: `store unavailable, retry later: ${err.message}` };
  log.error({ err }, 'unhandled error in a createTasks item');
  return { code: Codes.INTERNAL, message: 'internal error; see the server log for this request uuid' };
}

function itemResult(r: CreateResult | Error, log: Logger): BatchItemResult {
  if (r instanceof Error) return itemFailure(r, log);
  const out: BatchItemResult = { task_id: r.task.id, next_fire_time: r.task.state === 'completed' ? null : r.task.next_fire_time };
  if (!r.created) out.existing = true;
  return out;
}

export function batchRoutes(app: Hono, deps: ApiDeps & { service: TaskService }): void {
  const guard = deps.destinations;

  /** Why an item's callback URLs are refused by the SSRF policy (code 1011), or null. */
  const refused = async (item: unknown): Promise<XcronError | null> => {
    if (!guard) return null;
    for (const { field, url } of destinationsOf(item)) {
      const why = await guard.urlRefusal(url);
      if (why !== null) return new XcronError(Codes.SSRF_REFUSED, 400, `'${field}' is refused by the callback destination policy: ${why}`);
    }
    return null;
  };

  app.post(createTasksOp.path, async (c: Context) => {
    const body = await readJson(c);
    if (!isObject(body)) throw new XcronError(Codes.BAD_JSON, 400, `request body must be a JSON object {"tasks": [...]}, got ${describe(body)}`);
    for (const k of Object.keys(body)) if (k !== 'tasks') throw new XcronError(Codes.BAD_JSON, 400, `unknown field '${k}' (known fields: tasks)`);
    const tasks = body.tasks;
    if (!Array.isArray(tasks)) throw new XcronError(Codes.BAD_JSON, 400, `'tasks' is required: an array of createTask bodies, got ${describe(tasks)}`);
    if (tasks.length === 0 || tasks.length > MAX_BATCH) throw new XcronError(Codes.INVALID_OPTION, 400, `'tasks' must hold 1 to ${MAX_BATCH} tasks, got ${tasks.length}`);
    // The exact text of each item's callback body, where parsing would change one of its numbers.
    const text = requestText(c);
    const itemTexts = text !== undefined && mayLoseNumbers(text) ? arrayItemTexts(text, 'tasks') : null;
    const results: BatchItemResult[] = new Array<BatchItemResult>(tasks.length);
    const items: { body: unknown; text: string | null }[] = [];
    const at: number[] = [];
    const refusals = await Promise.all(tasks.map(refused));
    tasks.forEach((item, i) => {
      const no = refusals[i];
      if (no) results[i] = { code: no.code, message: no.message };
      else {
        items.push({ body: item, text: itemTexts ? exactBodyText(itemTexts[i]) : null });
        at.push(i);
      }
    });
    const created = await deps.service.createMany(items);
    created.forEach((r, k) => (results[at[k]!] = itemResult(r, deps.log)));
    const failed = results.reduce((n, r) => n + ('code' in r ? 1 : 0), 0);
    return reply(c, createTasksOp, { results, succeeded: results.length - failed, failed });
  });
}
