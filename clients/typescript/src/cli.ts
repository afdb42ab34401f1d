#!/usr/bin/env node
/**
 * `xcron`: the command line of the xcron HTTP API, built on {@link XcronClient}. Human output
 * (tables, `key: value`) by default, `--json` for scripts. Exit codes: 0 ok, 1 the server answered
 * a failure (its code and message go to stderr), 2 usage error, 3 no usable answer (transport).
 */
import { createReadStream, createWriteStream, readFileSync, realpathSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { XcronClient } from './client.js';
import { XcronApiError, XcronTransportError } from './errors.js';
import type { CallbackSpec, CreateTaskRequest, RunView, TaskState, TaskView, UpdateTaskRequest } from './types.js';

export const EXIT = { OK: 0, API: 1, USAGE: 2, TRANSPORT: 3 } as const;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

const USAGE = `usage: xcron [--url URL] [--token TOKEN] [--json] <command> [args]

commands:
  create  [task flags] [--data JSON | --file PATH]     create a task
  list    [--state S] [--name PREFIX] [--limit N] [--cursor C] [--all]
  get     <task_id>                                     a task with its run figures
  update  <task_id> [task flags] [--data JSON | --file PATH]
  pause   <task_id>
  resume  <task_id>
  trigger <task_id>                                     one run now
  delete  <task_id>
  runs    <task_id> [--limit N] [--cursor C] [--all]    run records, newest first
  logs    <run_id> [-f] [--since N] [--interval MS]     a run's execution log (-f: follow)
  export  [--out PATH] [--state S] [--name PREFIX] [--include-completed]
  import  <PATH | ->                                    create the tasks of an export

task flags: --cron EXPR | --at TIME, --callback URL, --body JSON, --method M, --name NAME,
  --timezone TZ, --paused, --idempotency-key KEY

global: --url (env XCRON_URL, default http://127.0.0.1:8000), --token (env XCRON_TOKEN), --json
exit codes: 0 ok, 1 API error, 2 usage error, 3 transport error`;

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  // create / update
  cron: { type: 'string' },
  at: { type: 'string' },
  callback: { type: 'string' },
  body: { type: 'string' },
  method: { type: 'string' },
  name: { type: 'string' },
  timezone: { type: 'string' },
  paused: { type: 'boolean' },
  'idempotency-key': { type: 'string' },
  data: { type: 'string' },
  file: { type: 'string' },
  // list / runs / export
  state: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  all: { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  'include-completed': { type: 'boolean' },
  // logs
  follow: { type: 'boolean', short: 'f' },
  since: { type: 'string' },
  interval: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  env: Record<string, string | undefined>;
}

interface Ctx {
  client: XcronClient;
  v: Values;
  args: string[];
  json: boolean;
  out: (s: string) => void;
  err: (s: string) => void;
  stdout: Writable;
}

const iso = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString());
const dash = (v: unknown): string => (v === null || v === undefined || v === '' ? '-' : String(v));

/** Left-aligned columns with a header row. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

function intFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${flag} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

function jsonFlag(v: string, flag: string): unknown {
  try {
    return JSON.parse(v) as unknown;
  } catch (e) {
    throw new UsageError(`--${flag} is not valid JSON: ${(e as Error).message}`);
  }
}

function stateFlag(v: string | undefined): TaskState | undefined {
  if (v === undefined) return undefined;
  if (v !== 'active' && v !== 'paused' && v !== 'completed') throw new UsageError(`--state must be active, paused or completed, got ${JSON.stringify(v)}`);
  return v;
}

function oneId(c: Ctx, what: string): string {
  if (c.args.length !== 1) throw new UsageError(`expects exactly one ${what}, got ${c.args.length}`);
  return c.args[0]!;
}

/** The task fields of --data/--file, then the individual flags on top. */
function taskFields(v: Values): Record<string, unknown> {
  let base: Record<string, unknown> = {};
  if (v.data !== undefined && v.file !== undefined) throw new UsageError('give --data or --file, not both');
  const raw = v.data !== undefined ? jsonFlag(v.data, 'data') : v.file !== undefined ? jsonFlag(readFileSync(v.file === '-' ? 0 : v.file, 'utf8'), 'file') : {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError('--data/--file must hold a JSON object');
  base = { ...(raw as Record<string, unknown>) };
  if (v.cron !== undefined && v.at !== undefined) throw new UsageError('give --cron or --at, not both');
  if (v.cron !== undefined) Object.assign(base, { type: 1, format: v.cron });
  if (v.at !== undefined) {
    // unix seconds / ms as given, or an ISO date turned into ms
    const at = /^\d+$/.test(v.at) ? v.at : Date.parse(v.at);
    if (typeof at === 'number' && Number.isNaN(at)) throw new UsageError(`--at must be unix seconds, unix ms or an ISO date, got ${JSON.stringify(v.at)}`);
    Object.assign(base, { type: 2, format: String(at) });
  }
  const cb: Record<string, unknown> = { ...((base.callback as Record<string, unknown> | undefined) ?? {}) };
  let cbChanged = false;
  if (v.callback !== undefined) ((cb.url = v.callback), (cbChanged = true));
  if (v.body !== undefined) ((cb.body = jsonFlag(v.body, 'body')), (cbChanged = true));
  if (v.method !== undefined) ((cb.method = v.method.toUpperCase()), (cbChanged = true));
  if (cbChanged) base.callback = cb;
  if (v.name !== undefined) base.name = v.name;
  if (v.timezone !== undefined) base.timezone = v.timezone;
  if (v.paused) base.paused = true;
  if (v['idempotency-key'] !== undefined) base.idempotency_key = v['idempotency-key'];
  return base;
}

function printTask(c: Ctx, t: TaskView & { stats?: unknown }): void {
  const cb = t.callback;
  const rows: [string, unknown][] = [
    ['task_id', t.task_id],
    ['name', t.name],
    ['state', t.state],
    ['type', t.type === 1 ? 'periodic' : 'one-shot'],
    ['format', t.format],
    ['timezone', t.timezone],
    ['callback', `${cb.method ?? 'POST'} ${cb.urls ? `${cb.urls.join(', ')} (${cb.route ?? 'failover'})` : cb.url}`],
    ['body', JSON.stringify(cb.body)],
    ['next_fire_time', iso(t.next_fire_time)],
    ['last_fire_time', iso(t.last_fire_time)],
    ['last_status', t.last_status],
    ['run_count', t.run_count],
    ['created', iso(Number(t.create_time) * 1000)],
  ];
  const s = t.stats as { success_rate?: number | null; window_runs?: number } | undefined;
  if (s) rows.push(['success_rate', s.success_rate === null || s.success_rate === undefined ? null : `${(s.success_rate * 100).toFixed(1)}% of ${s.window_runs ?? 0} runs`]);
  c.out(rows.map(([k, val]) => `${(k + ':').padEnd(16)}${dash(val)}`).join('\n') + '\n');
}

const taskRows = (ts: TaskView[]): string[][] =>
  ts.map((t) => [t.task_id, dash(t.name), t.state, t.format, iso(t.next_fire_time), dash(t.last_status), String(t.run_count)]);
const TASK_HEAD = ['TASK_ID', 'NAME', 'STATE', 'FORMAT', 'NEXT_FIRE', 'LAST', 'RUNS'];

const runRows = (rs: RunView[]): string[][] =>
  rs.map((r) => [r.run_id, r.status, iso(r.scheduled_time), String(r.attempts), dash(r.http_status), r.duration_ms === null ? '-' : `${r.duration_ms}ms`, dash(r.error)]);
const RUN_HEAD = ['RUN_ID', 'STATUS', 'SCHEDULED', 'ATTEMPTS', 'HTTP', 'DURATION', 'ERROR'];

/** A task as a createTask request (the export line), with its original id in `task_id`. */
export function toCreateRequest(t: TaskView): CreateTaskRequest & { task_id: string } {
  const cb: CallbackSpec = { body: t.callback.body };
  if (t.callback.urls) {
    cb.urls = t.callback.urls;
    if (t.callback.route) cb.route = t.callback.route;
  } else cb.url = t.callback.url;
  if (t.callback.method) cb.method = t.callback.method;
  if (t.callback.headers) cb.headers = t.callback.headers;
  const req: CreateTaskRequest & { task_id: string } = {
    task_id: t.task_id,
    type: t.type,
    format: t.format,
    callback: cb,
    timezone: t.timezone,
    misfire: t.misfire,
    overlap: t.overlap,
    idempotency_key: t.idempotency_key ?? t.task_id,
  };
  if (t.state === 'paused') req.paused = true;
  const opt = ['name', 'timeout_ms', 'retry', 'start_time', 'end_time', 'on_success', 'alert_url', 'max_consecutive_failures', 'completion', 'async_timeout_ms'] as const;
  for (const k of opt) if (t[k] !== undefined) (req as unknown as Record<string, unknown>)[k] = t[k];
  return req;
}

const commands: Record<string, (c: Ctx) => Promise<number>> = {
  async create(c) {
    if (c.args.length > 0) throw new UsageError(`create takes no positional arguments, got ${JSON.stringify(c.args[0])}`);
    const req = taskFields(c.v);
    if (req.type === undefined || req.format === undefined) throw new UsageError('create needs a schedule: --cron EXPR or --at TIME (or type and format in --data/--file)');
    if (req.callback === undefined) throw new UsageError('create needs --callback URL (or callback in --data/--file)');
    const r = await c.client.createTask(req as unknown as CreateTaskRequest);
    c.out(c.json ? JSON.stringify(r) + '\n' : `created ${r.task_id} (next fire ${iso(r.next_fire_time)})\n`);
    return EXIT.OK;
  },

  async list(c) {
    const q = { state: stateFlag(c.v.state), name: c.v.name, limit: intFlag(c.v.limit, 'limit') };
    let tasks: TaskView[];
    let next: string | null = null;
    if (c.v.all) {
      tasks = [];
      for await (const t of c.client.iterateTasks(q)) tasks.push(t);
    } else {
      const page = await c.client.listTasks({ ...q, cursor: c.v.cursor ?? null });
      tasks = page.tasks;
      next = page.next_cursor;
    }
    if (c.json) c.out(JSON.stringify({ tasks, next_cursor: next }) + '\n');
    else {
      c.out(table(TASK_HEAD, taskRows(tasks)));
      if (next !== null) c.err(`more tasks: --cursor ${next} (or --all)\n`);
    }
    return EXIT.OK;
  },

  async get(c) {
    const t = await c.client.queryTask(oneId(c, 'task_id'));
    if (c.json) c.out(JSON.stringify(t) + '\n');
    else printTask(c, t);
    return EXIT.OK;
  },

  async update(c) {
    const task_id = oneId(c, 'task_id');
    const fields = taskFields(c.v);
    delete fields.type; // a task's type cannot change; --cron/--at only set its format
    if (Object.keys(fields).length === 0) throw new UsageError('update needs at least one change (task flags, --data or --file)');
    const cb = fields.callback as Record<string, unknown> | undefined;
    if (cb !== undefined && cb.url === undefined && cb.urls === undefined) {
      // updateTask replaces the whole callback: --body / --method alone keep the task's targets and the rest
      const cur = toCreateRequest(await c.client.queryTask(task_id)).callback;
      fields.callback = { ...cur, ...cb };
    }
    const r = await c.client.updateTask({ ...fields, task_id } as UpdateTaskRequest);
    c.out(c.json ? JSON.stringify(r) + '\n' : `updated ${r.task_id}: ${r.state}, next fire ${iso(r.next_fire_time)}\n`);
    return EXIT.OK;
  },

  async pause(c) {
    const r = await c.client.pauseTask(oneId(c, 'task_id'));
    c.out(c.json ? JSON.stringify(r) + '\n' : `paused ${r.task_id} (${r.state})\n`);
    return EXIT.OK;
  },

  async resume(c) {
    const r = await c.client.resumeTask(oneId(c, 'task_id'));
    c.out(c.json ? JSON.stringify(r) + '\n' : `resumed ${r.task_id} (${r.state}), next fire ${iso(r.next_fire_time)}\n`);
    return EXIT.OK;
  },

  async trigger(c) {
    const r = await c.client.triggerTask(oneId(c, 'task_id'));
    c.out(c.json ? JSON.stringify(r) + '\n' : `triggered ${r.task_id}: run ${r.run_id}\n`);
    return EXIT.OK;
  },

  async delete(c) {
    const id = oneId(c, 'task_id');
    await c.client.deleteTask(id);
    c.out(c.json ? JSON.stringify({ task_id: id, deleted: true }) + '\n' : `deleted ${id}\n`);
    return EXIT.OK;
  },

  async runs(c) {
    const id = oneId(c, 'task_id');
    const q = { limit: intFlag(c.v.limit, 'limit') };
    let runs: RunView[];
    let next: string | null = null;
    if (c.v.all) {
      runs = [];
      for await (const r of c.client.iterateTaskRuns(id, q)) runs.push(r);
    } else {
      const page = await c.client.taskRuns(id, { ...q, cursor: c.v.cursor ?? null });
      runs = page.runs;
      next = page.next_cursor;
    }
    if (c.json) c.out(JSON.stringify({ runs, next_cursor: next }) + '\n');
    else {
      c.out(table(RUN_HEAD, runRows(runs)));
      if (next !== null) c.err(`more runs: --cursor ${next} (or --all)\n`);
    }
    return EXIT.OK;
  },

  async logs(c) {
    const runId = oneId(c, 'run_id');
    const since = intFlag(c.v.since, 'since') ?? 0;
    const line = (l: { seq: number; time: number; line: string }): void => c.out(c.json ? JSON.stringify(l) + '\n' : `${iso(l.time)}  ${l.line}\n`);
    if (c.v.follow) {
      const intervalMs = intFlag(c.v.interval, 'interval') ?? 1000;
      for await (const l of c.client.followRunLog(runId, { since, intervalMs })) line(l);
      return EXIT.OK;
    }
    // every line there is now, batch after batch
    for (let at = since; ; ) {
      const page = await c.client.runLog(runId, { since: at });
      for (const l of page.lines) line(l);
      if (page.lines.length === 0) {
        if (!c.json && !page.finished) c.err(`run ${runId} is ${page.status}; more lines may come (-f follows)\n`);
        return EXIT.OK;
      }
      at = page.next_since;
    }
  },

  async export(c) {
    if (c.args.length > 0) throw new UsageError(`export takes no positional arguments (use --out PATH), got ${JSON.stringify(c.args[0])}`);
    const state = stateFlag(c.v.state);
    const out: Writable = c.v.out !== undefined && c.v.out !== '-' ? createWriteStream(c.v.out) : c.stdout;
    let exported = 0;
    let skipped = 0;
    for await (const t of c.client.iterateTasks({ state, name: c.v.name, limit: 500 })) {
      if (t.state === 'completed' && !c.v['include-completed'] && state !== 'completed') {
        skipped++;
        continue;
      }
      if (!out.write(JSON.stringify(toCreateRequest(t)) + '\n')) await new Promise((r) => out.once('drain', r));
      exported++;
    }
    if (out !== c.stdout) await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
    const summary = { exported, skipped_completed: skipped, file: c.v.out ?? null };
    // the summary goes to stderr when the tasks themselves are on stdout
    const say = out === c.stdout ? c.err : c.out;
    say(c.json ? JSON.stringify(summary) + '\n' : `exported ${exported} task(s)${skipped ? `, skipped ${skipped} completed (--include-completed keeps them)` : ''}${c.v.out ? ` to ${c.v.out}` : ''}\n`);
    return EXIT.OK;
  },

  async import(c) {
    const file = oneId(c, 'file (or - for stdin)');
    const rl = createInterface({ input: file === '-' ? process.stdin : createReadStream(file, 'utf8'), crlfDelay: Infinity });
    const idMap = new Map<string, string>();
    const pendingLinks: { line: number; from: string; onSuccess: string[] }[] = [];
    const failures: { line: number; task_id: string | null; code: number | null; message: string }[] = [];
    let created = 0;
    let existing = 0;
    let n = 0;
    for await (const text of rl) {
      n++;
      if (text.trim() === '') continue;
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (e) {
        failures.push({ line: n, task_id: null, code: null, message: `not valid JSON: ${(e as Error).message}` });
        continue;
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        failures.push({ line: n, task_id: null, code: null, message: 'not a JSON object' });
        continue;
      }
      const { task_id: origId, on_success, ...req } = raw as Record<string, unknown>;
      const orig = typeof origId === 'string' ? origId : null;
      if (req.idempotency_key === undefined && orig !== null) req.idempotency_key = orig;
      try {
        // on_success names tasks by their ids on the source: linked in a second pass, once every task exists here
        const r = await c.client.call<{ task_id: string }>('POST', '/xcron/createTask', { body: req });
        if (r.message === 'ok') created++;
        else existing++;
        if (orig !== null) idMap.set(orig, r.data.task_id);
        if (Array.isArray(on_success) && on_success.length > 0) pendingLinks.push({ line: n, from: r.data.task_id, onSuccess: on_success as string[] });
      } catch (e) {
        if (!(e instanceof XcronApiError)) throw e;
        failures.push({ line: n, task_id: orig, code: e.code, message: e.serverMessage });
      }
    }
    for (const p of pendingLinks) {
      try {
        await c.client.updateTask({ task_id: p.from, on_success: p.onSuccess.map((id) => idMap.get(id) ?? id) });
      } catch (e) {
        if (!(e instanceof XcronApiError)) throw e;
        failures.push({ line: p.line, task_id: p.from, code: e.code, message: `on_success: ${e.serverMessage}` });
      }
    }
    const summary = { created, existing, failed: failures.length, failures, ids: Object.fromEntries(idMap) };
    if (c.json) c.out(JSON.stringify(summary) + '\n');
    else {
      for (const f of failures) c.err(`${file}:${f.line}${f.task_id ? ` (${f.task_id})` : ''}: ${f.code !== null ? `error ${f.code}: ` : ''}${f.message}\n`);
      c.out(`imported ${created} task(s) created, ${existing} already present, ${failures.length} failed\n`);
    }
    return failures.length > 0 ? EXIT.API : EXIT.OK;
  },
};

/**
 * Task and run ids may start with '-' (nanoid's alphabet): a word that is not one of our flags and
 * not a flag's value is an argument, so it is moved after the `--` that ends the flags.
 */
export function idsAsPositionals(argv: string[]): string[] {
  const flags: string[] = [];
  const moved: string[] = [];
  const short = new Map<string, string>(Object.entries(OPTIONS).flatMap(([k, o]) => ('short' in o ? [[o.short, k] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return [...flags, '--', ...moved, ...argv.slice(i + 1)];
    const name = a.startsWith('--') ? a.slice(2).split('=')[0]! : /^-[a-zA-Z]$/.test(a) ? short.get(a.slice(1)) : undefined;
    const opt = name !== undefined ? (OPTIONS as Record<string, { type: string }>)[name] : undefined;
    if (a.startsWith('-') && a !== '-' && opt === undefined && !/^-[a-zA-Z]$/.test(a) && !/^--[a-z-]+(=|$)/.test(a)) {
      moved.push(a); // not flag-shaped (e.g. "-Xb3_k:1796112002000"): an id
      continue;
    }
    flags.push(a);
    if (opt?.type === 'string' && !a.includes('=') && i + 1 < argv.length) flags.push(argv[++i]!); // its value, whatever it looks like
  }
  return moved.length > 0 ? [...flags, '--', ...moved] : flags;
}

/** Runs one command line; returns the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const err = (s: string): void => void io.stderr.write(s);
  const out = (s: string): void => void io.stdout.write(s);
  let v: Values;
  let positionals: string[];
  try {
    ({ values: v, positionals } = parseArgs({ args: idsAsPositionals(argv), options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (e) {
    err(`xcron: ${(e as Error).message}\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const [name, ...args] = positionals;
  if (v.help || name === 'help') {
    out(USAGE + '\n');
    return EXIT.OK;
  }
  const cmd = name === undefined ? undefined : commands[name];
  if (cmd === undefined) {
    err(`xcron: ${name === undefined ? 'no command given' : `unknown command ${JSON.stringify(name)}`}\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const json = v.json ?? false;
  try {
    const baseUrl = v.url ?? io.env.XCRON_URL ?? 'http://127.0.0.1:8000';
    const token = v.token ?? io.env.XCRON_TOKEN;
    let client: XcronClient;
    try {
      client = new XcronClient({ baseUrl, ...(token ? { token } : {}) });
    } catch (e) {
      throw new UsageError(`--url: ${(e as Error).message}`);
    }
    return await cmd({ client, v, args, json, out, err, stdout: io.stdout });
  } catch (e) {
    if (e instanceof UsageError) {
      err(`xcron ${name}: ${e.message}\n`);
      return EXIT.USAGE;
    }
    if (e instanceof XcronApiError) {
      err(json ? JSON.stringify({ error: { code: e.code, message: e.serverMessage, http_status: e.httpStatus, request_id: e.requestId } }) + '\n' : `xcron ${name}: error ${e.code}: ${e.serverMessage} (HTTP ${e.httpStatus}, request ${e.requestId ?? '-'})\n`);
      return EXIT.API;
    }
    if (e instanceof XcronTransportError) {
      err(json ? JSON.stringify({ error: { code: null, message: e.message } }) + '\n' : `xcron ${name}: ${e.message}\n`);
      return EXIT.TRANSPORT;
    }
    const m = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `no such file: ${(e as NodeJS.ErrnoException).path ?? ''}` : (e as Error).message;
    err(`xcron ${name}: ${m}\n`);
    return EXIT.USAGE;
  }
}

// Run when executed (as the `xcron` bin or `node dist/cli.js`), not when imported.
function isMain(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false; // argv[1] is not a file (node -e, a REPL): imported, not run
  }
}
if (isMain()) {
  // `xcron list | head`: the reader went away; stop quietly instead of an EPIPE stack trace
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT.OK);
    throw e;
  });
  void runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then((code) => {
    process.exitCode = code;
  });
}
