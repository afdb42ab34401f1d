/**
 * The dashboard client's packaging and its form logic without a browser: bundleClient links the
 * compiled modules into one classic script, refuses imports the browser could not resolve, and the
 * compiled form model (run from dist/ in a VM, as the browser runs it) builds createTask requests
 * and updateTask bodies of only what changed. Needs `bash build.sh` (dist/src/ui/client/).
 */
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CLIENT_JS, bundleClient, compiledClientDir, readClientModules, type ClientModule } from '../../src/ui/client.js';

const cjs = (name: string, code: string): ClientModule => ({ name, code: `"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\n${code}` });

/** Runs a bundle in a fresh VM context; returns what its modules put on `globalThis.out`. */
function run(script: string): Record<string, unknown> {
  const sandbox: { out: Record<string, unknown> } = { out: {} };
  runInNewContext(script, sandbox, { filename: 'bundle.js' });
  return sandbox.out;
}

describe('bundleClient', () => {
  it('runs the entry once, and each module once however often it is required', () => {
    const script = bundleClient(
      [
        cjs('counter', 'globalThis.out.loads = (globalThis.out.loads || 0) + 1;\nexports.n = 41;'),
        cjs('a-b', 'const c = require("./counter.js");\nexports.next = () => c.n + 1;'),
        cjs('main', 'const ab = require("./a-b.js");\nrequire("./counter.js");\nglobalThis.out.answer = ab.next();'),
        cjs('unused', 'globalThis.out.unused = true;'),
      ],
      'main',
    );
    expect(run(script)).toEqual({ loads: 1, answer: 42 });
  });

  it('refuses what the browser could not load, naming the module and the import', () => {
    expect(() => bundleClient([cjs('main', 'require("hono");')], 'main')).toThrow(/module 'main' requires 'hono', which is not a module of the client/);
    expect(() => bundleClient([cjs('main', "require('./nope.js');")], 'main')).toThrow(/requires '\.\/nope\.js'/);
    expect(() => bundleClient([cjs('main', 'require("../api/app.js");')], 'main')).toThrow(/requires '\.\.\/api\/app\.js'/);
    expect(() => bundleClient([cjs('dom', '')], 'main')).toThrow(/no entry module 'main' among dom/);
    expect(() => bundleClient([cjs('main', ''), cjs('Bad.Name', '')], 'main')).toThrow(/bad module name 'Bad\.Name'/);
  });

  it('serves every compiled module of the dashboard in one script', () => {
    const modules = readClientModules(compiledClientDir());
    const names = modules.map((m) => m.name);
    for (const n of ['main', 'api', 'router', 'dom', 'form', 'form-model', 'charts', 'cluster']) expect(names).toContain(n);
    for (const n of names) expect(CLIENT_JS).toContain(`${JSON.stringify(n)}: function (require, exports) {`);
    expect(CLIENT_JS).not.toMatch(/sourceMappingURL|\bimport\s*\(|<script/);
  });
});

interface FormModel {
  buildRequest(f: Record<string, string>): { req: Record<string, unknown>; advanced: Record<string, unknown> };
  buildUpdate(built: { req: Record<string, unknown>; advanced: Record<string, unknown> }, t: Record<string, unknown>): Record<string, unknown>;
  advancedText(t: Record<string, unknown> | null, edit: boolean): string;
}

function formModel(): FormModel {
  const dir = compiledClientDir();
  const modules = readClientModules(dir).filter((m) => m.name === 'form-model' || m.name === 'format');
  const out = run(bundleClient([...modules, cjs('harness', 'globalThis.out.fm = require("./form-model.js");')], 'harness'));
  return out.fm as FormModel;
}

const EMPTY = { type: '1', format: '', name: '', timezone: '', url: '', method: 'POST', headers: '', body: '', advanced: '', timeout: '', attempts: '', backoff: '', maxBackoff: '', misfire: 'fire_once', overlap: 'allow' };

const TASK = {
  task_id: 't1',
  create_time: '1893456000',
  type: 1,
  format: '*/5 * * * *',
  run_count: 0,
  callback: { url: 'https://a.example/hook', body: { x: 1 } },
  state: 'active',
  next_fire_time: null,
  last_fire_time: null,
  last_status: null,
  timezone: 'UTC',
  misfire: 'fire_once',
  overlap: 'allow',
  retry: { max_attempts: 3, backoff_ms: 1000, max_backoff_ms: 60_000 },
  end_time: 1_999_999_999_000,
};

/** The form as the edit page fills it for TASK. */
const TASK_FORM = { ...EMPTY, format: TASK.format, timezone: 'UTC', url: TASK.callback.url, body: '{"x": 1}', attempts: '3', backoff: '1000', maxBackoff: '60000', advanced: '{"end_time": 1999999999000}' };

describe('the dashboard form model (compiled client code)', () => {
  const fm = formModel();

  it('builds a createTask request from the fields', () => {
    const { req } = fm.buildRequest({
      ...EMPTY,
      format: ' @every 30s ',
      name: ' sweep ',
      url: ' https://a.example/hook ',
      method: 'PUT',
      headers: '{"X-Key": "k"}',
      body: '{"a": [1]}',
      attempts: '4',
      misfire: 'skip',
      advanced: '{"on_success": ["t2"], "callback": {"urls": ["https://b.example", "https://c.example"], "route": "broadcast"}}',
    });
    // With urls from the advanced options, the url field's value goes too (the API takes one or the other).
    expect(req).toEqual({
      type: 1,
      format: '@every 30s',
      name: 'sweep',
      callback: { url: 'https://a.example/hook', method: 'PUT', headers: { 'X-Key': 'k' }, body: { a: [1] }, urls: ['https://b.example', 'https://c.example'], route: 'broadcast' },
      retry: { max_attempts: 4 },
      misfire: 'skip',
      overlap: 'allow',
      on_success: ['t2'],
    });
    const urlsOnly = fm.buildRequest({ ...EMPTY, format: '* * * * *', advanced: '{"callback": {"urls": ["https://b.example"]}}' }).req.callback;
    expect(urlsOnly).toEqual({ body: {}, urls: ['https://b.example'] });
  });

  it('names the field of bad input', () => {
    expect(() => fm.buildRequest({ ...EMPTY, timeout: '1.5' })).toThrow('Timeout must be a whole number');
    expect(() => fm.buildRequest({ ...EMPTY, headers: '[1]' })).toThrow('Headers must be a JSON object');
    expect(() => fm.buildRequest({ ...EMPTY, body: '{' })).toThrow(/^Body is not valid JSON: /);
  });

  it('sends only what changed on an edit', () => {
    expect(fm.advancedText(TASK, true)).toBe('{\n  "end_time": 1999999999000\n}');
    expect(fm.buildUpdate(fm.buildRequest(TASK_FORM), TASK)).toEqual({ task_id: 't1' });
    // One retry field changed (the others left empty): the retry goes whole, merged over the stored one.
    expect(fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, attempts: '5', backoff: '', maxBackoff: '', timezone: 'Asia/Tokyo' }), TASK)).toEqual({
      task_id: 't1',
      timezone: 'Asia/Tokyo',
      retry: { max_attempts: 5, backoff_ms: 1000, max_backoff_ms: 60_000 },
    });
    // A changed callback goes whole; an advanced key removed is cleared with null.
    expect(fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, method: 'PATCH', advanced: '' }), TASK)).toEqual({
      task_id: 't1',
      callback: { url: 'https://a.example/hook', method: 'PATCH', body: { x: 1 } },
      end_time: null,
    });
    expect(() => fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, advanced: '{"idempotency_key": "k"}' }), TASK)).toThrow('idempotency_key cannot be changed on an existing task');
  });
});
