/**
 * The `xcron` CLI (clients/typescript/src/cli.ts, compiled to clients/typescript/dist/cli.js) as a
 * real child process against the real built server: every subcommand in human and --json output,
 * a run's log (and -f following it until the run is reported), an API error's exit code and
 * message, usage and transport errors, tokens from --token and XCRON_TOKEN, and export from one
 * server then import into a second one with the same tasks.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { idsAsPositionals } from '../../clients/typescript/src/cli.js';
import { XcronClient, type TaskView } from '../../clients/typescript/src/index.js';
import { freePort } from '../helpers/ports.js';
import { Receiver, header } from '../helpers/receiver.js';
import { REPO_ROOT, XcronServer, childEnv, cleanupTempDirs, stopAllServers, takeStarted, tempDir } from '../helpers/server.js';

const CLI = join(REPO_ROOT, 'clients', 'typescript', 'dist', 'cli.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI to its exit. `env` adds to a child env without XCRON_* of ours. */
function xcron(args: string[], env: Record<string, string> = {}, opts: { launcher?: boolean } = {}): Promise<Run> {
  const child = opts.launcher
    ? spawn(join(REPO_ROOT, 'xcron'), args, { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [CLI, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((res) => child.once('close', (code) => res({ code, stdout, stderr })));
}

/** Runs and expects exit 0; returns stdout. */
async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await xcron(args, env);
  expect(r.code, `xcron ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  return r.stdout;
}

let server: XcronServer;
let recv: Receiver;
let client: XcronClient;
let U: string[];

beforeAll(async () => {
  recv = await Receiver.start();
  server = await XcronServer.start();
  client = new XcronClient({ baseUrl: server.baseUrl });
  U = ['--url', server.baseUrl];
});
afterEach((ctx) => {
  const started = takeStarted();
  if (ctx.task.result?.state === 'fail') for (const s of started) console.log(s.tail(30));
});
afterAll(async () => {
  await stopAllServers();
  await recv.close();
  cleanupTempDirs();
});

describe('every subcommand, human and --json output', () => {
  it('create, get, list, update, pause, resume, trigger, runs, delete', async () => {
    // create: human
    const human = await ok([...U, 'create', '--cron', '0 0 1 1 *', '--callback', recv.url('/cli'), '--name', 'cli-a', '--body', '{"job":"a"}']);
    const mA = /^created (\S+) \(next fire (\S+)\)\n$/.exec(human);
    expect(mA, human).not.toBeNull();
    const a = mA![1]!;
    expect(new Date(mA![2]!).getUTCMonth()).toBe(0);
    // create: --json, from --data with a flag on top
    const data = JSON.stringify({ type: 1, format: '0 0 1 1 *', callback: { url: recv.url('/cli'), body: { job: 'b' } }, retry: { max_attempts: 1 } });
    const jb = JSON.parse(await ok([...U, '--json', 'create', '--data', data, '--name', 'cli-b', '--paused'])) as { task_id: string; next_fire_time: number };
    expect(jb).toEqual({ task_id: expect.any(String), next_fire_time: expect.any(Number) });
    const b = jb.task_id;
    const qb = await client.queryTask(b);
    expect(qb).toMatchObject({ name: 'cli-b', state: 'paused', retry: { max_attempts: 1 }, callback: { body: { job: 'b' } } });

    // get
    const g = await ok([...U, 'get', a]);
    expect(g).toMatch(new RegExp(`^task_id: +${a}$`, 'm'));
    expect(g).toMatch(/^name: +cli-a$/m);
    expect(g).toMatch(/^state: +active$/m);
    expect(g).toContain(`callback:       POST ${recv.url('/cli')}`);
    expect(g).toMatch(/^body: +\{"job":"a"\}$/m);
    const gj = JSON.parse(await ok([...U, '--json', 'get', a])) as TaskView & { stats: unknown };
    expect(gj).toMatchObject({ task_id: a, name: 'cli-a', state: 'active', format: '0 0 1 1 *', stats: { window_runs: 0 } });

    // list: a table with a header and our two tasks; --json the page; --limit 1 gives a cursor, --all every task
    const l = await ok([...U, 'list', '--name', 'cli-']);
    const rows = l.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^TASK_ID +NAME +STATE +FORMAT +NEXT_FIRE +LAST +RUNS$/);
    expect(rows).toHaveLength(3);
    expect(rows.find((r) => r.startsWith(b))).toMatch(/ cli-b +paused +0 0 1 1 \* /);
    const lj = JSON.parse(await ok([...U, '--json', 'list', '--name', 'cli-', '--state', 'paused'])) as { tasks: TaskView[]; next_cursor: string | null };
    expect(lj.tasks.map((t) => t.task_id)).toEqual([b]);
    expect(lj.next_cursor).toBeNull();
    const one = await xcron([...U, 'list', '--name', 'cli-', '--limit', '1']);
    expect(one.code).toBe(0);
    expect(one.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(one.stderr).toMatch(/^more tasks: --cursor \S+ \(or --all\)$/m);
    const all = JSON.parse(await ok([...U, '--json', 'list', '--name', 'cli-', '--limit', '1', '--all'])) as { tasks: TaskView[] };
    expect(all.tasks.map((t) => t.task_id).sort()).toEqual([a, b].sort());

    // update
    expect(await ok([...U, 'update', a, '--cron', '0 0 2 1 *', '--name', 'cli-a2'])).toMatch(new RegExp(`^updated ${a}: active, next fire \\S+T00:00:00.000Z\\n$`));
    expect((await client.queryTask(a)).format).toBe('0 0 2 1 *');
    expect(JSON.parse(await ok([...U, '--json', 'update', a, '--body', '{"job":"a2"}']))).toMatchObject({ task_id: a, state: 'active' });
    expect((await client.queryTask(a)).callback).toEqual({ url: recv.url('/cli'), body: { job: 'a2' } }); // the target kept

    // pause / resume
    expect(await ok([...U, 'pause', a])).toBe(`paused ${a} (paused)\n`);
    expect(JSON.parse(await ok([...U, '--json', 'pause', a]))).toEqual({ task_id: a, state: 'paused' });
    expect(await ok([...U, 'resume', a])).toMatch(new RegExp(`^resumed ${a} \\(active\\), next fire `));
    expect(JSON.parse(await ok([...U, '--json', 'resume', b]))).toMatchObject({ task_id: b, state: 'active' });

    // trigger, then the callback arrives, then runs shows it
    const t1 = /^triggered \S+: run (\S+)\n$/.exec(await ok([...U, 'trigger', a]));
    expect(t1).not.toBeNull();
    const run1 = t1![1]!;
    const tj = JSON.parse(await ok([...U, '--json', 'trigger', a])) as { run_id: string };
    expect(tj).toMatchObject({ task_id: a, run_id: expect.stringMatching(new RegExp(`^${a}:\\d+$`)) });
    await recv.waitFor((rs) => [run1, tj.run_id].every((id) => rs.some((r) => header(r, 'x-xcron-fire-id') === id)), 20_000, 'both triggered callbacks');
    let runsJ: { runs: { run_id: string; status: string }[] } = { runs: [] };
    for (let i = 0; i < 200 && runsJ.runs.filter((r) => r.status === 'SUCCESS').length < 2; i++) {
      runsJ = JSON.parse(await ok([...U, '--json', 'runs', a])) as typeof runsJ;
      if (runsJ.runs.filter((r) => r.status === 'SUCCESS').length < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(runsJ.runs.map((r) => r.run_id).sort()).toEqual([run1, tj.run_id].sort());
    const rh = await ok([...U, 'runs', a]);
    const rrows = rh.trimEnd().split('\n');
    expect(rrows[0]).toMatch(/^RUN_ID +STATUS +SCHEDULED +ATTEMPTS +HTTP +DURATION +ERROR$/);
    expect(rrows.find((r) => r.startsWith(run1))).toMatch(/ SUCCESS +\S+ +1 +200 +\d+ms +-$/);
    const r1 = await xcron([...U, 'runs', a, '--limit', '1']);
    expect(r1.stderr).toMatch(/^more runs: --cursor \S+/m);

    // delete
    expect(await ok([...U, 'delete', a])).toBe(`deleted ${a}\n`);
    expect(JSON.parse(await ok([...U, '--json', 'delete', b]))).toEqual({ task_id: b, deleted: true });
    await expect(client.queryTask(a)).rejects.toMatchObject({ code: 1007 });
  });

  it('logs of an async run, and logs -f following it until it is reported (human and --json)', async () => {
    recv.on('/cli-async', { status: 202 });
    const { task_id } = await client.createTask({ type: 1, format: '0 0 1 1 *', completion: 'async', callback: { url: recv.url('/cli-async') } });
    const { run_id } = await client.triggerTask(task_id);
    const cb = await recv.waitForRequest((r) => header(r, 'x-xcron-run-id') === run_id, 20_000, 'the async callback');
    const token = header(cb, 'x-xcron-report-token')!;
    await client.appendRunLog({ run_id, token, lines: ['step one', 'step two'] });

    const h = await xcron([...U, 'logs', run_id]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^\S+Z {2}step one\n\S+Z {2}step two\n$/);
    expect(h.stderr).toMatch(/is RUNNING; more lines may come/);
    const j = (await ok([...U, '--json', 'logs', run_id, '--since', '1'])).trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(j).toEqual([{ seq: 2, time: expect.any(Number), line: 'step two' }]);

    // -f: prints what is there, keeps polling, and exits 0 once the run is reported and read
    const follow = xcron([...U, '--json', 'logs', run_id, '-f', '--interval', '50']);
    await client.appendRunLog({ run_id, token, lines: ['step three'] });
    await client.reportRun({ run_id, token, status: 'SUCCESS' });
    const f = await follow;
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { line: string }).line)).toEqual(['step one', 'step two', 'step three']);
    const fh = await ok([...U, 'logs', run_id, '--follow']);
    expect(fh.trimEnd().split('\n').map((l) => l.split('  ')[1])).toEqual(['step one', 'step two', 'step three']);
    await client.deleteTask(task_id);
  });
});

describe('errors and exit codes', () => {
  it('an API error: exit 1, the code and message on stderr (human and --json), nothing on stdout', async () => {
    const h = await xcron([...U, 'get', 'no-such-task']);
    expect(h.code).toBe(1);
    expect(h.stdout).toBe('');
    expect(h.stderr).toMatch(/^xcron get: error 1007: task "no-such-task" not found \(HTTP 404, request [0-9a-f-]{36}\)\n$/);
    const j = await xcron([...U, '--json', 'create', '--cron', 'not a cron', '--callback', recv.url('/x')]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stderr)).toMatchObject({ error: { code: 1005, http_status: 400, message: expect.stringContaining('invalid cron expression') } });
  });

  it('an id that starts with "-" (nanoid ids can) is an argument, not an unknown flag; flag values are left alone', async () => {
    expect(idsAsPositionals(['logs', '-Xb3_k:1796112002000', '-f'])).toEqual(['logs', '-f', '--', '-Xb3_k:1796112002000']);
    expect(idsAsPositionals(['create', '--body', '-1', '--name', '-nm'])).toEqual(['create', '--body', '-1', '--name', '-nm']);
    expect(idsAsPositionals(['list', '--nope'])).toEqual(['list', '--nope']);
    const r = await xcron([...U, 'get', '-no-such-id-0123456789']);
    expect(r.stderr).toMatch(/^xcron get: error 1007: task "-no-such-id-0123456789" not found/);
    expect(r.code).toBe(1);
  });

  it('usage errors exit 2; no answer (transport) exits 3', async () => {
    for (const args of [[], ['bogus'], ['get'], ['list', '--state', 'sleeping'], ['create', '--callback', 'http://x'], ['list', '--nope'], ['update', 'id'], ['runs', 'x', '--limit', 'ten']]) {
      const r = await xcron([...U, ...args]);
      expect(r.code, `xcron ${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^xcron/);
    }
    expect((await xcron(['--help'])).stdout).toMatch(/^usage: xcron/);
    const dead = await freePort();
    const t = await xcron(['--url', `http://127.0.0.1:${dead}`, 'pause', 'x']);
    expect(t.code).toBe(3);
    expect(t.stderr).toMatch(/^xcron pause: POST \/xcron\/pauseTask: request failed/);
  });

  it('--token and XCRON_TOKEN / XCRON_URL: 1010 without a token, the same command with one works', async () => {
    const ADMIN = { token: 'cli-admin-token-0123456789ab', role: 'admin', name: 'cli-admin' };
    const authed = await XcronServer.start({ env: { XCRON_AUTH_TOKENS: JSON.stringify([ADMIN]) } });
    const anon = await xcron(['list'], { XCRON_URL: authed.baseUrl });
    expect(anon.code).toBe(1);
    expect(anon.stderr).toMatch(/error 1010: .*\(HTTP 401/);
    expect(await ok(['--url', authed.baseUrl, '--token', ADMIN.token, 'list'])).toMatch(/^TASK_ID/);
    expect(JSON.parse(await ok(['--json', 'list'], { XCRON_URL: authed.baseUrl, XCRON_TOKEN: ADMIN.token }))).toEqual({ tasks: [], next_cursor: null });
  });
});

describe('export and import over HTTP', () => {
  it('export from one server, import into a second: the same tasks; re-import is idempotent; on_success is relinked', async () => {
    const src = await XcronServer.start();
    const dst = await XcronServer.start();
    const s = new XcronClient({ baseUrl: src.baseUrl });
    const d = new XcronClient({ baseUrl: dst.baseUrl });
    const child = await s.createTask({ type: 1, format: '0 0 1 1 *', name: 'x-child', timezone: 'Asia/Shanghai', callback: { url: recv.url('/child'), body: { n: 1 }, method: 'PUT', headers: { 'X-Env': 'test' } }, retry: { max_attempts: 5, backoff_ms: 500 } });
    const parent = await s.createTask({ type: 1, format: '*/5 * * * *', name: 'x-parent', paused: true, misfire: 'skip', overlap: 'skip', on_success: [child.task_id], callback: { urls: [recv.url('/p1'), recv.url('/p2')], route: 'round_robin' } });
    const at = Date.now() + 3_600_000;
    const oneshot = await s.createTask({ type: 2, format: String(at), name: 'x-once', idempotency_key: 'my-own-key', callback: { url: recv.url('/once') } });
    const done = await s.createTask({ type: 2, format: String(Date.now() + 200), name: 'x-done', callback: { url: recv.url('/done') } });
    await recv.waitForRequest((r) => r.path === '/done', 20_000, 'the one-shot that completes');
    for (let i = 0; i < 100 && (await s.queryTask(done.task_id)).state !== 'completed'; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await s.queryTask(done.task_id)).state).toBe('completed');

    const dir = tempDir('xcron-cli-export-');
    const file = join(dir, 'tasks.jsonl');
    const ex = await xcron(['--url', src.baseUrl, 'export', '--out', file]);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toBe(`exported 3 task(s), skipped 1 completed (--include-completed keeps them) to ${file}\n`);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.task_id).sort()).toEqual([child.task_id, parent.task_id, oneshot.task_id].sort());
    expect(lines.find((l) => l.task_id === oneshot.task_id)).toMatchObject({ type: 2, format: String(at), idempotency_key: 'my-own-key' });
    // --json to stdout: the tasks on stdout, the summary on stderr
    const exj = await xcron(['--url', src.baseUrl, '--json', 'export', '--include-completed']);
    expect(exj.stdout.trimEnd().split('\n')).toHaveLength(4);
    expect(JSON.parse(exj.stderr)).toEqual({ exported: 4, skipped_completed: 0, file: null });

    const im = JSON.parse(await ok(['--url', dst.baseUrl, '--json', 'import', file])) as { created: number; existing: number; failed: number; ids: Record<string, string> };
    expect(im).toMatchObject({ created: 3, existing: 0, failed: 0 });
    const strip = (t: TaskView): Record<string, unknown> => {
      const { task_id: _id, create_time: _c, idempotency_key: _k, next_fire_time: _n, on_success, ...rest } = t;
      return { ...rest, on_success: on_success?.map((id) => `<${id === child.task_id || id === im.ids[child.task_id] ? 'child' : id}>`) };
    };
    const before = new Map<string, TaskView>();
    for await (const t of s.iterateTasks()) before.set(t.task_id, t);
    let n = 0;
    for await (const t of d.iterateTasks()) {
      n++;
      const orig = [...before.values()].find((o) => im.ids[o.task_id] === t.task_id)!;
      expect(orig, `an imported task ${t.task_id} with no source`).toBeDefined();
      expect(strip(t)).toEqual(strip(orig));
    }
    expect(n).toBe(3);
    expect((await d.queryTask(im.ids[parent.task_id]!)).on_success).toEqual([im.ids[child.task_id]]);

    // again: nothing new
    const again = await xcron(['--url', dst.baseUrl, 'import', file]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('imported 0 task(s) created, 3 already present, 0 failed\n');

    // a bad line is reported by line number with the server's code, the rest still imported; exit 1
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify({ task_id: 'zz1', type: 1, format: 'nope', callback: { url: recv.url('/x') } })}\nnot json\n${JSON.stringify({ task_id: 'zz2', type: 1, format: '0 0 1 1 *', callback: { url: recv.url('/x') } })}\n`);
    const br = await xcron(['--url', dst.baseUrl, 'import', bad]);
    expect(br.code).toBe(1);
    expect(br.stderr).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:1 \\(zz1\\): error 1005: `, 'm'));
    expect(br.stderr).toMatch(/:2: not valid JSON/);
    expect(br.stdout).toBe('imported 1 task(s) created, 0 already present, 2 failed\n');
  });

  it('./xcron (the launcher build.sh writes) runs the same CLI', async () => {
    const r = await xcron(['--json', 'list', '--limit', '1'], { XCRON_URL: server.baseUrl }, { launcher: true });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('tasks');
  });
});
