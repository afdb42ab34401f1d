/**
 * The operation registry behind /openapi.json. Each route declares its operation next to itself
 * with `defineOperation` (path, method, who may call it, its query or body schema, the schema of
 * its envelope's `data`, and the error codes it answers), and answers through `reply`, which types
 * the data by that same schema. The OpenAPI document (./openapi.ts) is generated from this
 * registry, so adding an endpoint is one declaration beside its route.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import type { Code } from '../../errors.js';
import { ok } from '../envelope.js';

/**
 * Who may call an operation. `read` / `admin`: a bearer token of that role when API tokens are
 * configured; `public`: no token; `report`: no API token, the run's report token in the body;
 * `metrics`: a read token unless `[auth] public_metrics`; `executor`: a token of role `executor` or
 * `admin` (executors registering themselves).
 */
export type Access = 'public' | 'read' | 'admin' | 'executor' | 'report' | 'metrics';

export interface OperationSpec<D extends z.ZodType = z.ZodType> {
  method: 'get' | 'post';
  path: string;
  /** Unique, camelCase: the name a generated client gives the method. */
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  access: Access;
  /** Query parameters (each property one parameter; all strings on the wire). */
  query?: z.ZodObject;
  /** The JSON request body. */
  body?: z.ZodType;
  /** The envelope's `data` on success (HTTP 200, code 0). */
  data?: D;
  /** A success answer that is not the JSON envelope (metrics, pages): its media type and text. */
  raw?: { type: string; description: string };
  /** Error codes this operation answers besides the ones every operation of its kind can. */
  errors?: readonly Code[];
  /** Whether the operation reads or writes the store (its 503 code: 1016 or 1004). None: no store. */
  store?: 'read' | 'write';
  /** Under the per-client rate limit (all /xcron/* and /ui/api/* paths are). Default: by path. */
  rateLimited?: boolean;
}

export interface Operation<D extends z.ZodType = z.ZodType> extends Readonly<OperationSpec<D>> {
  readonly key: string;
}

const registry = new Map<string, Operation>();
const ids = new Set<string>();

/** Declares an operation (once per method and path; a second declaration is a programming error). */
export function defineOperation<D extends z.ZodType>(spec: OperationSpec<D>): Operation<D> {
  const key = `${spec.method.toUpperCase()} ${spec.path}`;
  if (registry.has(key)) throw new Error(`operation ${key} is declared twice`);
  if (ids.has(spec.operationId)) throw new Error(`operationId ${spec.operationId} is used twice`);
  if (spec.data && spec.raw) throw new Error(`operation ${key} declares both an envelope and a raw answer`);
  const op: Operation<D> = { ...spec, key };
  registry.set(key, op as unknown as Operation);
  ids.add(spec.operationId);
  return op;
}

/** Every declared operation, in declaration order. */
export function operations(): readonly Operation[] {
  return [...registry.values()];
}

/** Answers an operation's success envelope; the data is typed by the operation's `data` schema. */
export function reply<D extends z.ZodType>(c: Context, _op: Operation<D>, data: z.output<D>, message = 'ok', raw = false): Response {
  return ok(c, data, message, raw);
}
