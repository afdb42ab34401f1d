/**
 * Checks one HTTP exchange against the OpenAPI document (/openapi.json as the service generates
 * it): the status must be declared for the path and method, and the JSON answer must match the
 * declared schema (closed objects: an undeclared field fails). A 2xx answer to a JSON request body
 * also checks that body against the declared request schema, so the published request shapes are
 * never narrower than what the service accepts. The HTTP helpers of the tests (./http.ts `call`
 * and ./app.ts `send`) run it on every response.
 */
import '../../src/api/app.js'; // declares every operation
import { buildOpenApi } from '../../src/api/contract/openapi.js';
import { VERSION } from '../../src/config/index.js';
import { SchemaValidator, type Schema } from './json-schema.js';

type Json = Record<string, unknown>;

export interface Exchange {
  method: string;
  /** Path with the query string. */
  url: string;
  requestBody?: string | undefined;
  requestType?: string | undefined;
  status: number;
  contentType: string | null;
  text: string;
}

export class ContractError extends Error {
  override readonly name = 'ContractError';
}

let doc: Json | null = null;
let validator: SchemaValidator | null = null;

/** The OpenAPI document the service serves (built from the same registry). */
export function openApiDocument(): Json {
  doc ??= buildOpenApi(VERSION);
  return doc;
}

function resolve(ref: string): Json {
  if (!ref.startsWith('#/')) throw new ContractError(`unsupported $ref ${ref}`);
  let at: unknown = openApiDocument();
  for (const part of ref.slice(2).split('/')) at = (at as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  if (at === undefined) throw new ContractError(`$ref ${ref} points nowhere`);
  return at as Json;
}

function schemaValidator(): SchemaValidator {
  validator ??= new SchemaValidator((ref) => resolve(ref) as Schema);
  return validator;
}

const deref = (x: Json): Json => (typeof x.$ref === 'string' ? deref(resolve(x.$ref)) : x);

/** Paths the contract leaves out: the dashboard's page and static files (not an API). */
const UNDOCUMENTED = /^\/ui(?:\/(?!api\/).*)?$/;

/** Throws a ContractError naming the problem when the exchange does not match the document. */
export function checkExchange(ex: Exchange): void {
  const d = openApiDocument();
  const path = new URL(ex.url, 'http://x').pathname;
  const where = `${ex.method} ${path} → HTTP ${ex.status}`;
  const method = ex.method.toLowerCase() === 'head' ? 'get' : ex.method.toLowerCase();
  const item = (d.paths as Record<string, Json>)[path];
  const anyRequest = d['x-xcron-any-request'] as Record<string, Json>;
  let response: Json | undefined;
  let op: Json | undefined;
  if (item === undefined && UNDOCUMENTED.test(path)) return;
  if (item !== undefined && item[method] !== undefined) {
    op = item[method] as Json;
    response = (op.responses as Record<string, Json>)[String(ex.status)];
  }
  // Answers any request can get: 404 (unknown path), 405 (known path, other method), 408, 431.
  if (response === undefined) {
    const generic = anyRequest[String(ex.status)];
    const fits = ex.status === 404 ? item === undefined : ex.status === 405 ? item !== undefined && op === undefined : generic !== undefined;
    if (generic && fits) response = deref(generic);
  }
  if (response === undefined) {
    const declared = op ? Object.keys(op.responses as Json).join(', ') : item ? `methods ${Object.keys(item).join(', ')}` : 'nothing (undeclared path)';
    throw new ContractError(`${where}: status ${ex.status} is not declared (declared: ${declared}); body: ${ex.text.slice(0, 300)}`);
  }
  if (ex.method.toUpperCase() === 'HEAD' || ex.status === 304) return;
  const content = response.content as Record<string, Json> | undefined;
  const type = (ex.contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (content === undefined) return;
  const media = content[type];
  if (media === undefined) throw new ContractError(`${where}: Content-Type ${JSON.stringify(ex.contentType)} is not declared (declared: ${Object.keys(content).join(', ')})`);
  if (type === 'application/json') {
    let value: unknown;
    try {
      value = JSON.parse(ex.text);
    } catch {
      throw new ContractError(`${where}: the answer is not JSON: ${ex.text.slice(0, 200)}`);
    }
    const problems = schemaValidator().errors(media.schema as Schema, value);
    if (problems.length) throw new ContractError(`${where}: the answer does not match the document:\n  ${problems.slice(0, 10).join('\n  ')}\nbody: ${ex.text.slice(0, 500)}`);
  }
  if (op && ex.status >= 200 && ex.status < 300) checkRequest(op, ex, where);
}

function checkRequest(op: Json, ex: Exchange, where: string): void {
  const query = new URL(ex.url, 'http://x').searchParams;
  for (const p of (op.parameters as Json[] | undefined) ?? []) {
    if (p.in === 'query' && p.required === true && !query.has(p.name as string)) throw new ContractError(`${where}: succeeded without the required query parameter '${p.name as string}'`);
  }
  const body = (op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined;
  if (!body || ex.requestBody === undefined || ex.requestBody === '') return;
  let value: unknown;
  try {
    value = JSON.parse(ex.requestBody);
  } catch {
    return; // not JSON, yet accepted: the route's own affair (a test of odd bodies)
  }
  const problems = schemaValidator().errors(body['application/json']!.schema as Schema, value);
  if (problems.length) throw new ContractError(`${where}: the service accepted a request body the document refuses:\n  ${problems.slice(0, 10).join('\n  ')}\nrequest: ${ex.requestBody.slice(0, 500)}`);
}
