/**
 * The dashboard client's packaging and its form logic without a browser: bundleClient links the
 * compiled modules into one classic script, refuses imports the browser could not resolve, and the
 * compiled form model (run from dist/ in a VM, as the browser runs it) builds createTask requests
 * and updateTask bodies of only what changed (a cleared field back to its default, unknown advanced
 * keys refused); the list's search and the overview's per-minute history are checked the same way.
 * Needs `bash build.sh` (dist/src/ui/client/).
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
  buildUpdate(built: { req: Record<string, unknown>; advanced: Record<string, unknown> }, t: Record<string, unknown>, defaultTz: string): Record<string, unknown>;
  advancedText(t: Record<string, unknown> | null, edit: boolean): string;
}

function formModel(): FormModel {
  const dir = compiledClientDir();
  const modules = readClientModules(dir).filter((m) => m.name === 'form-model' || m.name === 'format');
  const out = run(bundleClient([...modules, cjs('harness', 'globalThis.out.fm = require("./form-model.js");')], 'harness'));
  return out.fm as FormModel;
}

const EMPTY = { type: '1', format: '', name: '', timezone: '', url: '', method: 'POST', headers: '', body: '', advanced: '', timeout: '', attempts: '', backoff: '', maxBackoff: '', misfire: 'fire_once', overlap: 'allow', completion: 'sync', asyncTimeout: '', tags: '' };

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
    expect(fm.buildUpdate(fm.buildRequest(TASK_FORM), TASK, 'UTC')).toEqual({ task_id: 't1' });
    // Retry fields cleared go back to the server's defaults: the retry is sent with only what is left.
    expect(fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, attempts: '5', backoff: '', maxBackoff: '', timezone: 'Asia/Tokyo' }), TASK, 'UTC')).toEqual({
      task_id: 't1',
      timezone: 'Asia/Tokyo',
      retry: { max_attempts: 5 },
    });
    // A cleared timezone goes back to the server's default zone; cleared retry: no policy (defaults).
    expect(fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, timezone: '', attempts: '', backoff: '', maxBackoff: '' }), { ...TASK, timezone: 'Asia/Tokyo' }, 'Europe/Berlin')).toEqual({
      task_id: 't1',
      timezone: 'Europe/Berlin',
      retry: null,
    });
    // completion and async_timeout_ms: set, and cleared back to null; tags replace the list.
    const asyncTask = { ...TASK, completion: 'async', async_timeout_ms: 5000, tags: ['a'] };
    const asyncForm = { ...TASK_FORM, completion: 'async', asyncTimeout: '5000', tags: 'a' };
    expect(fm.buildUpdate(fm.buildRequest(asyncForm), asyncTask, 'UTC')).toEqual({ task_id: 't1' });
    expect(fm.buildUpdate(fm.buildRequest({ ...asyncForm, completion: 'sync', asyncTimeout: '', tags: 'a, b b' }), asyncTask, 'UTC')).toEqual({
      task_id: 't1',
      completion: 'sync',
      async_timeout_ms: null,
      tags: ['a', 'b'],
    });
    expect(fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, completion: 'async', asyncTimeout: '90000' }), TASK, 'UTC')).toEqual({ task_id: 't1', completion: 'async', async_timeout_ms: 90000 });
    // A changed callback goes whole; an advanced key removed is cleared with null.
    expect(fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, method: 'PATCH', advanced: '' }), TASK, 'UTC')).toEqual({
      task_id: 't1',
      callback: { url: 'https://a.example/hook', method: 'PATCH', body: { x: 1 } },
      end_time: null,
    });
    expect(() => fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, advanced: '{"idempotency_key": "k"}' }), TASK, 'UTC')).toThrow('idempotency_key cannot be changed on an existing task');
  });

  it('keeps a queue target (target + key) through an edit and a clone, and refuses mixing it with HTTP fields', () => {
    // queryTask shows a queue target as its name and key, without a URL; the edit page fills the
    // target fields from it and leaves the URL empty.
    const queued = { ...TASK, callback: { target: 'orders', key: 'orders.eu', body: { x: 1 } }, end_time: undefined };
    const form = { ...TASK_FORM, url: '', target: 'orders', key: 'orders.eu', advanced: '' };
    // Saved unchanged: nothing is sent (before, the callback went as {url: ""} and was refused, or lost its target).
    expect(fm.buildUpdate(fm.buildRequest(form), queued, 'UTC')).toEqual({ task_id: 't1' });
    // Another field changed: the callback is left alone.
    expect(fm.buildUpdate(fm.buildRequest({ ...form, name: 'renamed' }), queued, 'UTC')).toEqual({ task_id: 't1', name: 'renamed' });
    // The body or the key changed: the callback goes whole, with its target.
    expect(fm.buildUpdate(fm.buildRequest({ ...form, body: '{"x": 2}' }), queued, 'UTC')).toEqual({ task_id: 't1', callback: { target: 'orders', key: 'orders.eu', body: { x: 2 } } });
    expect(fm.buildUpdate(fm.buildRequest({ ...form, key: '' }), queued, 'UTC')).toEqual({ task_id: 't1', callback: { target: 'orders', body: { x: 1 } } });
    // From a queue target to a URL, and back.
    expect(fm.buildUpdate(fm.buildRequest({ ...form, target: '', key: '', url: 'https://a.example/hook' }), queued, 'UTC')).toEqual({ task_id: 't1', callback: { url: 'https://a.example/hook', body: { x: 1 } } });
    expect(fm.buildUpdate(fm.buildRequest({ ...TASK_FORM, url: '', target: 'orders' }), TASK, 'UTC')).toEqual({ task_id: 't1', callback: { target: 'orders', body: { x: 1 } } });
    // A clone (a createTask request from the same fields) keeps the target.
    expect(fm.buildRequest({ ...form, name: 'copy' }).req.callback).toEqual({ target: 'orders', key: 'orders.eu', body: { x: 1 } });
    // Mixed with HTTP fields: refused before it is sent, naming the problem.
    expect(() => fm.buildRequest({ ...form, url: 'https://a.example/hook' })).toThrow('Give either a callback URL or a queue target, not both');
    expect(() => fm.buildRequest({ ...form, method: 'PUT' })).toThrow('A queue target takes no method, headers or callback.urls');
    expect(() => fm.buildRequest({ ...form, headers: '{"X-A": "1"}' })).toThrow('A queue target takes no method, headers or callback.urls');
    expect(() => fm.buildRequest({ ...TASK_FORM, key: 'k' })).toThrow('Queue key needs a queue target');
  });

  it('refuses unknown keys in the advanced options, naming them', () => {
    expect(() => fm.buildRequest({ ...EMPTY, advanced: '{"end_tme": 1999999999}' })).toThrow("Advanced options: unknown key 'end_tme'");
    expect(() => fm.buildRequest({ ...EMPTY, advanced: '{"timeout_ms": 5}' })).toThrow("unknown key 'timeout_ms'");
    expect(() => fm.buildRequest({ ...EMPTY, advanced: '{"callback": {"urls": ["https://b.example"], "body": {}}}' })).toThrow("unknown key 'callback.body'");
    expect(fm.buildRequest({ ...EMPTY, format: '* * * * *', advanced: '{"max_consecutive_failures": 3}' }).req.max_consecutive_failures).toBe(3);
  });
});

describe('the task list search and the overview history (compiled client code)', () => {
  const out = run(bundleClient([...readClientModules(compiledClientDir()), cjs('harness', 'globalThis.out.tasks = require("./tasks.js");\nglobalThis.out.history = require("./history.js");')], 'harness'));
  const { matches } = out.tasks as { matches(t: Record<string, unknown>, q: string): boolean };
  const { activityOf } = out.history as { activityOf(runs: Record<string, unknown>[], from: number, to: number): Record<string, [number, number | null][]> };

  it('matches any part of the name, the id or a URL, ignoring case', () => {
    const t = { task_id: 'Ab12_xy', name: 'Nightly-Settlement', callback: { url: 'https://Pay.example/hooks/settle', urls: ['https://backup.example/Z9'] } };
    for (const q of ['settle', 'NIGHTLY', 'ly-set', 'ab12', '_XY', 'pay.example/hooks', 'z9']) expect(matches(t, q), q).toBe(true);
    for (const q of ['nightly settlement', 'abc', 'https://other']) expect(matches(t, q), q).toBe(false);
    expect(matches({ task_id: 'x1', callback: { url: 'https://a.example' } }, 'x1')).toBe(true);
  });

  it('counts runs per minute and their lateness from run records', () => {
    const t0 = 1_900_000_020_000 - (1_900_000_020_000 % 60_000);
    const run = (at: number, status: string, late: number | null): Record<string, unknown> => ({ run_id: `t:${at}`, scheduled_time: at, start_time: late === null ? null : at + late, status });
    const runs = [run(t0 + 1000, 'SUCCESS', 10), run(t0 + 2000, 'FAIL', 30), run(t0 + 61_000, 'SUCCESS', 20), run(t0 + 62_000, 'MISSED', null), run(t0 - 5000, 'SUCCESS', 1)];
    const a = activityOf(runs, t0, t0 + 120_000);
    expect(a.fired!.map((p) => p[1])).toEqual([2, 1]);
    expect(a.ok!.map((p) => p[1])).toEqual([1, 1]);
    expect(a.fail!.map((p) => p[1])).toEqual([1, 0]);
    expect(a.miss!.map((p) => p[1])).toEqual([0, 1]);
    expect(a.p50!.map((p) => p[1])).toEqual([30, 20]);
    expect(a.p99!.map((p) => p[1])).toEqual([30, 20]);
  });
});
