/**
 * The OpenAPI 3.1 document, generated from the operation registry (./registry.ts) and the zod
 * schemas the routes use: every schema here comes out of `z.toJSONSchema` (JSON Schema 2020-12,
 * the dialect of OpenAPI 3.1). Named schemas (`.meta({ id })`) become components.
 */
import { z } from 'zod';
import { Codes, type Code } from '../../errors.js';
import { CODE_INFO, errorCodesOf } from './errors.js';
import { operations, type Operation } from './registry.js';
import { WEBHOOKS } from './webhooks.js';

type Json = Record<string, unknown>;

const Uuid = z.uuid().meta({ description: 'A fresh UUID v4 per request, also sent as the `X-Request-Id` header.' });

/** The success envelope of an operation. */
export const okEnvelope = (data: z.ZodType): z.ZodType =>
  z.object({ uuid: Uuid, code: z.literal(0), message: z.string().meta({ description: '"ok", or "ok (…)" with a note.' }), data });

/** The error envelope for the given codes. */
export const errorEnvelope = (codes: readonly Code[]): z.ZodType =>
  z.object({
    uuid: Uuid,
    code: z.literal(codes as [Code, ...Code[]]).meta({ description: 'The error code (see the ErrorCode schema).' }),
    message: z.string().meta({ description: 'What was wrong: the field, what was expected and what was received.' }),
    data: z.null(),
  });

/** Collects named schemas into components while converting. */
class SchemaSink {
  readonly components: Record<string, Json> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): Json {
    // Wrapped, so a named root schema becomes a $ref like any other.
    const doc = z.toJSONSchema(z.object({ root: schema }), { io, target: 'draft-2020-12', unrepresentable: 'throw' }) as Json;
    const defs = (doc.$defs ?? {}) as Record<string, Json>;
    for (const [name, def] of Object.entries(defs)) {
      const fixed = relink(def) as Json;
      const prior = this.components[name];
      if (prior !== undefined && JSON.stringify(prior) !== JSON.stringify(fixed)) {
        // The same name converted for input and for output can differ (open vs closed objects).
        if (io === 'input') throw new Error(`schema ${name} differs between uses; give the input variant its own id`);
        continue;
      }
      this.components[name] = fixed;
    }
    return relink((doc.properties as Json).root) as Json;
  }
}

function relink(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(relink);
  if (typeof v !== 'object' || v === null) return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '$ref' && typeof x === 'string' && x.startsWith('#/$defs/')) out[k] = `#/components/schemas/${x.slice(8)}`;
    else if (k !== '$schema') out[k] = relink(x);
  }
  return out;
}

const SECURITY: Record<Operation['access'], Json[] | undefined> = {
  public: [],
  report: [],
  read: [{ bearerAuth: [] }],
  admin: [{ bearerAuth: [] }],
  executor: [{ bearerAuth: [] }],
  metrics: [{ bearerAuth: [] }, {}],
};

const ACCESS_NOTE: Record<Operation['access'], string> = {
  public: 'No token needed.',
  report: 'No API token: the run\'s report token (`X-Xcron-Report-Token` of the callback) goes in the body.',
  read: 'Needs a token of role `read` or `admin` when API tokens are configured.',
  admin: 'Needs a token of role `admin` when API tokens are configured.',
  executor: 'Needs a token of role `executor` (or `admin`) when API tokens are configured.',
  metrics: 'Needs a token of role `read` or `admin` when API tokens are configured, unless `[auth] public_metrics`.',
};

const REQUEST_ID = { description: 'The request\'s uuid, or the client\'s sane `X-Request-Id` echoed.', schema: { type: 'string' } };

function operationObject(op: Operation, sink: SchemaSink): Json {
  const o: Json = {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    description: [op.description, ACCESS_NOTE[op.access]].filter(Boolean).join('\n\n'),
    security: SECURITY[op.access],
  };
  if (op.query) {
    o.parameters = Object.entries(op.query.shape).map(([name, s]) => {
      const schema = sink.convert(s as z.ZodType, 'input');
      const { description, ...rest } = schema;
      return { name, in: 'query', required: !(s as z.ZodType).safeParse(undefined).success, ...(description ? { description } : {}), schema: rest };
    });
  }
  if (op.body) o.requestBody = { required: true, content: { 'application/json': { schema: sink.convert(op.body, 'input') } } };
  const responses: Json = {};
  if (op.raw) {
    responses['200'] = { description: op.raw.description, content: { [op.raw.type]: { schema: { type: op.raw.type === 'application/json' ? 'object' : 'string' } } } };
  } else {
    responses['200'] = {
      description: 'Success (code 0).',
      headers: { 'X-Request-Id': REQUEST_ID },
      content: { 'application/json': { schema: sink.convert(okEnvelope(op.data ?? z.null()), 'output') } },
    };
  }
  for (const [status, codes] of errorCodesOf(op)) {
    const list = [...codes].sort((a, b) => a - b);
    const headers: Json = { 'X-Request-Id': REQUEST_ID };
    if (status === 429) headers['Retry-After'] = { description: 'Seconds until a request may succeed.', schema: { type: 'string' } };
    if (status === 401) headers['WWW-Authenticate'] = { description: '`Bearer`.', schema: { type: 'string' } };
    responses[String(status)] = {
      description: list.map((c) => `${c}: ${CODE_INFO[c].meaning}`).join('; '),
      headers,
      content: { 'application/json': { schema: sink.convert(errorEnvelope(list), 'output') } },
    };
  }
  o.responses = responses;
  return o;
}

const INFO_DESCRIPTION = `An HTTP-callback cron service. Every JSON answer is the envelope \`{uuid, code, message, data}\`:
code 0 is success, anything else is one of the error codes (schema ErrorCode) with a message naming the problem.

A known path called with another method answers 405 with code 1013 and an \`Allow\` header; an unknown path
answers 404 with code 1012. The HTTP layer answers 431 (code 1008) when the request line and headers are over
Node's limit, 408 (code 1000) when headers did not arrive in time, and 400 (code 1000) for a request that is not
HTTP; these are in the envelope too.`;

/** The OpenAPI 3.1 document of the declared operations. */
export function buildOpenApi(version: string): Json {
  const sink = new SchemaSink();
  const paths: Record<string, Json> = {};
  const tags = new Set<string>();
  for (const op of operations()) {
    const path = (paths[op.path] ??= {});
    path[op.method] = operationObject(op, sink);
    tags.add(op.tag);
  }
  const webhooks: Json = {};
  for (const w of WEBHOOKS) {
    webhooks[w.name] = {
      post: {
        operationId: w.operationId,
        summary: w.summary,
        description: w.description,
        parameters: w.headers.map((h) => ({ name: h.name, in: 'header', required: h.required, description: h.description, schema: { type: 'string' } })),
        requestBody: { required: true, content: { 'application/json': { schema: sink.convert(w.body, 'output') } } },
        responses: w.responses,
      },
    };
  }
  // Answers any request can get, whatever its path and method (the route table and the HTTP layer).
  const anyRequest = (code: Code, description: string): Json => ({
    description,
    content: { 'application/json': { schema: sink.convert(errorEnvelope([code]), 'output') } },
  });
  const responses = {
    NoSuchEndpoint: anyRequest(Codes.ROUTE_NOT_FOUND, 'No such endpoint (code 1012): an unknown path.'),
    MethodNotAllowed: anyRequest(Codes.METHOD_NOT_ALLOWED, 'A known path called with another method (code 1013); the `Allow` header lists the right one.'),
    Unauthorized: anyRequest(Codes.UNAUTHORIZED, 'With API tokens configured, any path under /xcron/ (and /metrics, /ui/api/) needs a token (401), of the right role (403), before the route is looked up (code 1010).'),
    RateLimited: anyRequest(Codes.RATE_LIMITED, 'Any path under /xcron/ and /ui/api/ is rate limited per client before the route is looked up (code 1014).'),
    RequestTimeout: anyRequest(Codes.BAD_JSON, 'The request headers did not arrive in time (code 1000).'),
    HeadersTooLarge: anyRequest(Codes.TOO_LARGE, "The request line and headers are over Node's limit, 16 KB by default; a long query string counts (code 1008)."),
  };
  const codes = Object.values(Codes).filter((c) => c !== Codes.OK);
  sink.components.ErrorCode = {
    type: 'integer',
    enum: codes,
    description: codes.map((c) => `- ${c} (HTTP ${CODE_INFO[c].statuses.join(' / ')}): ${CODE_INFO[c].meaning}`).join('\n'),
  };
  return {
    openapi: '3.1.0',
    info: { title: 'xcron', version, description: INFO_DESCRIPTION },
    servers: [{ url: '/' }],
    tags: [...tags].map((name) => ({ name })),
    paths,
    webhooks,
    'x-xcron-any-request': {
      '404': { $ref: '#/components/responses/NoSuchEndpoint' },
      '405': { $ref: '#/components/responses/MethodNotAllowed' },
      '401': { $ref: '#/components/responses/Unauthorized' },
      '403': { $ref: '#/components/responses/Unauthorized' },
      '429': { $ref: '#/components/responses/RateLimited' },
      '408': { $ref: '#/components/responses/RequestTimeout' },
      '431': { $ref: '#/components/responses/HeadersTooLarge' },
    },
    components: {
      schemas: Object.fromEntries(Object.entries(sink.components).sort(([a], [b]) => a.localeCompare(b))),
      responses,
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API token (`[auth] tokens`); its role decides what it may call.' } },
    },
  };
}

let cached: { version: string; text: string } | null = null;
/** The document as JSON text (built once per process). */
export function openApiText(version: string): string {
  if (cached === null || cached.version !== version) cached = { version, text: JSON.stringify(buildOpenApi(version)) };
  return cached.text;
}
