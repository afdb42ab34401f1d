/**
 * The OpenAPI document at /openapi.json: generated (not written), complete (every route of the
 * route table, every error code, the callback webhook), well formed (every $ref resolves, every
 * schema keyword is one the response check understands), and the response check itself catches
 * an undeclared field, an undeclared code and an undeclared status.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/api/app.js';
import { CODE_INFO } from '../../src/api/contract/errors.js';
import { Codes } from '../../src/errors.js';
import { CreateTaskInput } from '../../src/task/schema.js';
import { createTestApi, send, type TestApi } from '../helpers/app.js';
import { ContractError, checkExchange, openApiDocument } from '../helpers/contract.js';
import { REPO_ROOT } from '../helpers/server.js';

type Json = Record<string, unknown>;

let api: TestApi;
let doc: Json;

beforeAll(async () => {
  api = await createTestApi();
  const res = await api.app.request('/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = (await res.json()) as Json;
});
afterAll(async () => api.close());

const paths = (): Record<string, Json> => doc.paths as Record<string, Json>;

describe('the document', () => {
  it('is OpenAPI 3.1 and the same document the test check uses', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });

  it('covers every route of the route table with its methods, and nothing the service does not serve', () => {
    const documented = new Map(Object.entries(paths()).map(([p, item]) => [p, Object.keys(item).map((m) => m.toUpperCase()).sort()]));
    for (const [path, methods] of Object.entries(ROUTES)) {
      expect(documented.get(path), `route ${path}`).toEqual([...methods].sort());
    }
    const outside = ['/ui/api/next-fires', '/openapi.json', '/docs']; // the dashboard's and the reference's own routes
    for (const path of documented.keys()) expect(path in ROUTES || outside.includes(path), `documented path ${path}`).toBe(true);
  });

  it('has unique operation ids and a success answer on every operation', () => {
    const ids: string[] = [];
    for (const item of Object.values(paths())) {
      for (const op of Object.values(item) as Json[]) {
        ids.push(op.operationId as string);
        expect(Object.keys(op.responses as Json)).toContain('200');
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('lists every error code with its statuses, as src/errors.ts and docs/api.md state them', () => {
    const all = Object.values(Codes).filter((c) => c !== 0);
    const schemas = (doc.components as Json).schemas as Record<string, Json>;
    expect(schemas.ErrorCode!.enum).toEqual(all);
    expect(Object.keys(CODE_INFO).map(Number).sort()).toEqual(Object.values(Codes).map(Number).sort());
    // docs/api.md's table: | code | HTTP | meaning |
    const md = readFileSync(join(REPO_ROOT, 'docs/api.md'), 'utf8');
    const rows = new Map([...md.matchAll(/^\| (\d{1,4}) \| ([\d /]+) \|/gm)].map((m) => [Number(m[1]), m[2]!.split('/').map((s) => Number(s.trim()))]));
    for (const c of Object.values(Codes)) expect(rows.get(c), `docs/api.md row of code ${c}`).toEqual([...CODE_INFO[c].statuses]);
    // Every code can be answered by some operation, or by any request (404 / 405).
    const answered = new Set<number>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === 'object' && v !== null) {
        const o = v as Json;
        if (o.code && typeof o.code === 'object') {
          const c = o.code as Json;
          if (typeof c.const === 'number') answered.add(c.const);
          if (Array.isArray(c.enum)) for (const x of c.enum) answered.add(x as number);
        }
        Object.values(o).forEach(walk);
      }
    };
    walk(doc.paths);
    walk((doc.components as Json).responses);
    for (const c of Object.values(Codes)) expect(answered.has(c), `code ${c} is answered somewhere`).toBe(true);
  });

  it('describes the callback as a webhook with the fire id, attempt and signature headers', () => {
    const cb = ((doc.webhooks as Json).taskCallback as Json).post as Json;
    const headers = (cb.parameters as Json[]).map((p) => [p.name, p.required]);
    expect(headers).toEqual(expect.arrayContaining([['X-Xcron-Fire-Id', true], ['X-Xcron-Attempt', true], ['X-Xcron-Report-Token', true], ['X-Xcron-Signature', false]]));
    expect(cb.requestBody).toBeDefined();
    expect(Object.keys((doc.webhooks as Json) ?? {})).toContain('failureAlert');
  });

  it('documents the async report endpoints without an API token', () => {
    for (const p of ['/xcron/reportRun', '/xcron/appendRunLog']) {
      const op = paths()[p]!.post as Json;
      expect(op.security).toEqual([]);
      expect(Object.keys(op.responses as Json)).toEqual(expect.arrayContaining(['200', '401', '403', '404']));
    }
    expect(Object.keys((paths()['/xcron/reportRun']!.post as Json).responses as Json)).toContain('409');
  });

  it('shows the request fields the validator accepts (one list, from the request schema)', async () => {
    const body = (paths()['/xcron/createTask']!.post as Json).requestBody as Json;
    const ref = ((body.content as Json)['application/json'] as Json).schema as Json;
    const schema = ((doc.components as Json).schemas as Record<string, Json>)[String(ref.$ref).split('/').pop()!]!;
    expect(Object.keys(schema.properties as Json)).toEqual(Object.keys(CreateTaskInput.shape));
    expect(schema.additionalProperties).toBe(false);
    // A field the schema does not list is refused by the service with a message naming the list.
    const r = await send(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: 'http://x.test/' }, bogus: 1 } });
    expect(r.body.code).toBe(1000);
    expect(r.body.message).toContain(`known fields: ${Object.keys(CreateTaskInput.shape).join(', ')}`);
  });

  it('every $ref resolves and every schema keyword is one the response check understands', () => {
    const known = new Set(['description', 'examples', 'deprecated', 'title', 'default', 'format', '$ref', 'type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'propertyNames', 'items', 'anyOf', 'oneOf', 'allOf', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems']);
    const bad: string[] = [];
    const visitSchema = (s: unknown, at: string): void => {
      if (typeof s !== 'object' || s === null) return;
      const o = s as Json;
      for (const [k, v] of Object.entries(o)) {
        if (!known.has(k)) bad.push(`${at}: ${k}`);
        if (k === '$ref') {
          const target = String(v).slice(2).split('/').reduce<unknown>((x, part) => (x as Json | undefined)?.[part], doc);
          if (target === undefined) bad.push(`${at}: $ref ${String(v)} points nowhere`);
        }
        if (k === 'properties') for (const [name, sub] of Object.entries(v as Json)) visitSchema(sub, `${at}/${name}`);
        else if (k === 'anyOf' || k === 'oneOf' || k === 'allOf') (v as unknown[]).forEach((sub, i) => visitSchema(sub, `${at}/${k}/${i}`));
        else if (k === 'items' || k === 'additionalProperties' || k === 'propertyNames') visitSchema(v, `${at}/${k}`);
      }
    };
    const visitAll = (v: unknown, at: string): void => {
      if (Array.isArray(v)) v.forEach((x, i) => visitAll(x, `${at}/${i}`));
      else if (typeof v === 'object' && v !== null) {
        for (const [k, x] of Object.entries(v as Json)) {
          if (k === 'schema') visitSchema(x, `${at}/schema`);
          else visitAll(x, `${at}/${k}`);
        }
      }
    };
    visitAll(doc.paths, '#/paths');
    visitAll(doc.webhooks, '#/webhooks');
    visitAll((doc.components as Json).responses, '#/components/responses');
    for (const [name, s] of Object.entries((doc.components as Json).schemas as Json)) visitSchema(s, `#/components/schemas/${name}`);
    expect(bad).toEqual([]);
  });
});

describe('the response check catches what the document does not declare', () => {
  const okExchange = async (): Promise<{ url: string; text: string }> => {
    const created = await send<{ task_id: string }>(api.app, '/xcron/createTask', { json: { type: 1, format: '0 1 * * *', callback: { url: 'http://x.test/hook' } } });
    const url = `/xcron/queryTask?task_id=${created.body.data.task_id}`;
    const r = await send(api.app, url);
    expect(r.status).toBe(200);
    return { url, text: r.text };
  };
  const base = { method: 'GET', status: 200, contentType: 'application/json' };

  it('a real answer passes', async () => {
    const { url, text } = await okExchange();
    expect(() => checkExchange({ ...base, url, text })).not.toThrow();
  });

  it('an undeclared field in data fails', async () => {
    const { url, text } = await okExchange();
    const body = JSON.parse(text) as Json;
    (body.data as Json).surprise = 1;
    expect(() => checkExchange({ ...base, url, text: JSON.stringify(body) })).toThrow(/the field 'surprise' is not declared/);
  });

  it('an undeclared field nested in a named schema fails, and a missing required one', async () => {
    const { url, text } = await okExchange();
    const body = JSON.parse(text) as { data: Json & { callback: Json; stats: Json } };
    body.data.callback.extra = 'x';
    delete body.data.stats.fires;
    expect(() => checkExchange({ ...base, url, text: JSON.stringify(body) })).toThrow(/callback: the field 'extra' is not declared[\s\S]*the required field 'fires' is missing/);
  });

  it('a wrong type fails', async () => {
    const { url, text } = await okExchange();
    const body = JSON.parse(text) as Json;
    (body.data as Json).run_count = '3';
    expect(() => checkExchange({ ...base, url, text: JSON.stringify(body) })).toThrow(/run_count: expected type "integer", got string/);
  });

  it('an undeclared status fails', () => {
    const text = JSON.stringify({ uuid: '2b1e4f0e-8c4a-4d6e-9a43-0c3d8e6f1a22', code: 1017, message: 'x', data: null });
    expect(() => checkExchange({ ...base, url: '/xcron/queryTask?task_id=a', status: 409, text })).toThrow(ContractError);
    expect(() => checkExchange({ ...base, url: '/healthz', status: 400, text })).toThrow(/status 400 is not declared/);
  });

  it('an error code not declared for that status and operation fails', () => {
    const text = JSON.stringify({ uuid: '2b1e4f0e-8c4a-4d6e-9a43-0c3d8e6f1a22', code: 1005, message: 'x', data: null });
    expect(() => checkExchange({ ...base, url: '/xcron/queryTask?task_id=a', status: 404, text })).toThrow(/code: expected 1007, got 1005/);
  });

  it('an undeclared path or method only passes as the route table\'s 404 / 405', () => {
    const env = (code: number): string => JSON.stringify({ uuid: '2b1e4f0e-8c4a-4d6e-9a43-0c3d8e6f1a22', code, message: 'x', data: null });
    expect(() => checkExchange({ ...base, url: '/xcron/nothing', status: 404, text: env(1012) })).not.toThrow();
    expect(() => checkExchange({ ...base, url: '/xcron/nothing', status: 200, text: env(0) })).toThrow(/undeclared path/);
    expect(() => checkExchange({ ...base, method: 'DELETE', url: '/xcron/queryTask', status: 405, text: env(1013) })).not.toThrow();
    expect(() => checkExchange({ ...base, method: 'DELETE', url: '/xcron/queryTask', status: 200, text: env(0) })).toThrow(/not declared/);
  });

  it('an accepted request body the document refuses fails', async () => {
    const text = JSON.stringify({ uuid: '2b1e4f0e-8c4a-4d6e-9a43-0c3d8e6f1a22', code: 0, message: 'ok', data: { task_id: 'a', next_fire_time: 1 } });
    const requestBody = JSON.stringify({ type: 1, format: '* * * * *', callback: { url: 'http://x.test/' }, undeclared_option: true });
    expect(() => checkExchange({ ...base, method: 'POST', url: '/xcron/createTask', requestBody, text })).toThrow(/accepted a request body the document refuses[\s\S]*undeclared_option/);
  });
});
