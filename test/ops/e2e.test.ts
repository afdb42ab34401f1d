/**
 * Operations and security against the real built server (./xcron_server) with real receivers:
 * signed callbacks verified by the Node and Python snippets of docs/callbacks.md, structured logs (access
 * lines, run lines, nothing secret), /metrics after real fires, auth from a tokens file, and the
 * SSRF guard refusing a delivery at connect time after the policy was tightened.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Receiver, header } from '../helpers/receiver.js';
import { XcronServer, cleanupTempDirs, runToExit, stopAllServers, takeStarted, tempDir } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { ADMIN, READER, bearer, docSnippet, parseProm, sampleValue } from './helpers.js';

const receivers: Receiver[] = [];
async function receiver(): Promise<Receiver> {
  const r = await Receiver.start();
  receivers.push(r);
  return r;
}

afterEach((ctx) => {
  const started = takeStarted();
  if (ctx.task.result?.state === 'fail') for (const s of started) console.log(s.tail(30));
});
afterAll(async () => {
  await stopAllServers();
  await Promise.all(receivers.map((r) => r.close()));
  cleanupTempDirs();
});

const metricsOf = async (s: XcronServer, headers: Record<string, string> = {}) => {
  const r = await s.client.call('GET', '/metrics', { headers });
  if (r.status !== 200) throw new Error(`/metrics: HTTP ${r.status} ${r.text.slice(0, 200)}`);
  return parseProm(r.text).samples;
};

describe('signed callbacks, verified by the snippets of docs/callbacks.md', () => {
  const CURRENT = 'whsec-current-0123456789abcdef';
  const NEXT = 'whsec-next-0123456789abcdef012';

  it('every callback carries one v1 per secret over the exact body bytes; Node and Python verifiers accept both secrets and reject tampering', async () => {
    const recv = await receiver();
    const server = await XcronServer.start({ env: { XCRON_CALLBACK_SIGNING_SECRETS: JSON.stringify([CURRENT, NEXT]) } });
    const body = { order: 42, note: 'héllo ✓ "quoted" \\ slash', nested: { list: [1, 2.5, null, true] } };
    const task = await server.client.mustCreate({ type: 1, format: '@every 1s', callback: { url: recv.url('/signed'), body } });
    const reqs = await recv.waitFor((all) => all.filter((q) => q.path === '/signed').length >= 2, 20_000, 'two signed callbacks');
    await server.client.deleteTask(task.task_id);
    const signed = reqs.filter((q) => q.path === '/signed');

    const dir = tempDir('xcron-verifier-');
    const nodeFile = join(dir, 'verify.mjs');
    writeFileSync(nodeFile, docSnippet('verify-node'));
    const { verifyXcron } = (await import(pathToFileURL(nodeFile).href)) as { verifyXcron: (secret: string, header: unknown, raw: Buffer | string) => boolean };
    const pyFile = join(dir, 'verify.py');
    writeFileSync(
      pyFile,
      `${docSnippet('verify-python')}\nimport os, sys\nprint("true" if verify_xcron(os.environ["SECRET"], os.environ["SIG"], sys.stdin.buffer.read()) else "false")\n`,
    );
    const python = (secret: string, sig: string, raw: string): string =>
      execFileSync('python3', [pyFile], { input: Buffer.from(raw, 'utf8'), env: { ...process.env, SECRET: secret, SIG: sig } }).toString('utf8').trim();

    for (const q of signed) {
      const sig = header(q, 'x-xcron-signature')!;
      expect(sig).toMatch(/^t=\d{10},v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
      expect(q.body).toBe(JSON.stringify(body)); // the exact bytes that were signed
      const raw = Buffer.from(q.body, 'utf8');
      const tampered = q.body.replace('42', '43');
      expect(verifyXcron(CURRENT, sig, raw)).toBe(true);
      expect(verifyXcron(NEXT, sig, raw)).toBe(true);
      expect(verifyXcron('whsec-wrong-0123456789abcdef', sig, raw)).toBe(false);
      expect(verifyXcron(CURRENT, sig, tampered)).toBe(false);
      expect(verifyXcron(CURRENT, sig.replace(/^t=\d+/, 't=1000000000'), raw)).toBe(false); // stale timestamp
      expect(python(CURRENT, sig, q.body)).toBe('true');
      expect(python(NEXT, sig, q.body)).toBe('true');
      expect(python('whsec-wrong-0123456789abcdef', sig, q.body)).toBe('false');
      expect(python(CURRENT, sig, tampered)).toBe('false');
    }
    // after rotation (only the next secret configured) the receiver that already moved to NEXT still verifies
    server.kill('SIGTERM');
    await server.waitExit();
    const rotated = await server.restart({ env: { XCRON_CALLBACK_SIGNING_SECRETS: JSON.stringify([NEXT]) } });
    const t2 = await rotated.client.mustCreate({ type: 1, format: '@every 1s', callback: { url: recv.url('/rotated'), body } });
    const after = await recv.waitForRequest((q) => q.path === '/rotated', 20_000, 'a callback after rotation');
    await rotated.client.deleteTask(t2.task_id);
    const sig2 = header(after, 'x-xcron-signature')!;
    expect(sig2).toMatch(/^t=\d{10},v1=[0-9a-f]{64}$/);
    expect(verifyXcron(NEXT, sig2, after.body)).toBe(true);
    expect(verifyXcron(CURRENT, sig2, after.body)).toBe(false);
    expect(python(NEXT, sig2, after.body)).toBe('true');
  }, 90_000);
});

describe('logs of the real server', () => {
  it('JSON lines: one access line per API request, run lines with scope fields, and no token, secret, body or header value anywhere', async () => {
    const SECRET = 'whsec-logtest-SIGNING-SECRET-9f8e7d';
    const BODY_MARKER = 'BODY-MARKER-7c1f0a-callback-payload';
    const HEADER_MARKER = 'HEADER-MARKER-55aa-api-key-value';
    const recv = await receiver();
    recv.on('/fail', { status: 500, body: `{"echo":"${BODY_MARKER}"}` });
    const server = await XcronServer.start({
      env: { XCRON_LOG_LEVEL: 'trace', XCRON_CALLBACK_SIGNING_SECRETS: JSON.stringify([SECRET]), XCRON_AUTH_TOKENS: JSON.stringify([ADMIN, READER]) },
    });
    const adminH = bearer(ADMIN);
    const calls: { uuid: string; method: string; path: string; status: number; clientId?: string }[] = [];
    const api = async (method: 'GET' | 'POST', path: string, json?: unknown, extra: Record<string, string> = {}) => {
      const r = await server.client.call<{ task_id: string }>(method, path, { ...(json !== undefined ? { json } : {}), headers: { ...adminH, ...extra } });
      calls.push({ uuid: r.body.uuid, method, path: path.split('?')[0]!, status: r.status, ...(extra['x-request-id'] ? { clientId: extra['x-request-id'] } : {}) });
      return r;
    };
    const ok = await api('POST', '/xcron/createTask', { type: 1, format: '@every 1s', callback: { url: recv.url('/ok'), body: { secret_note: BODY_MARKER }, headers: { 'X-Api-Key': HEADER_MARKER } } });
    const bad = await api('POST', '/xcron/createTask', { type: 1, format: '@every 1s', retry: { max_attempts: 2, backoff_ms: 0 }, callback: { url: recv.url('/fail'), body: { secret_note: BODY_MARKER } } }, { 'x-request-id': 'client-req-123' });
    await api('GET', `/xcron/queryTask?task_id=${ok.body.data.task_id}`);
    await api('POST', '/xcron/createTask', { type: 1, format: 'not a cron', callback: { url: recv.url('/x'), body: { secret_note: BODY_MARKER } } });
    const denied = await server.client.call('POST', '/xcron/pauseTask', { json: { task_id: ok.body.data.task_id }, headers: bearer(READER) });
    expect(denied.status).toBe(403);
    calls.push({ uuid: denied.body.uuid, method: 'POST', path: '/xcron/pauseTask', status: 403 });

    const failLine = await server.waitForLog((l) => l.msg === 'run failed' && l.task_id === bad.body.data.task_id, 20_000, 'a run failed line');
    await recv.waitFor((all) => all.some((q) => q.path === '/ok'), 20_000, 'a successful callback');
    await server.waitForLog((l) => l.msg === 'run finished' && l.task_id === ok.body.data.task_id, 20_000, 'a run finished (debug) line');
    await api('POST', '/xcron/deleteTask', { task_id: ok.body.data.task_id });
    await api('POST', '/xcron/deleteTask', { task_id: bad.body.data.task_id });

    // run lines carry the scope fields
    expect(failLine).toMatchObject({ level: 40, node: expect.any(String), task_id: bad.body.data.task_id, slot: expect.any(Number), status: 'FAIL', attempts: 2, http_status: 500 });
    expect(String(failLine.fire_id)).toMatch(new RegExp(`^${bad.body.data.task_id}:\\d+$`));

    // exactly one access line per API request, matching the response's uuid
    for (const c of calls) await server.waitForLog((l) => l.msg === 'request' && l.req_id === c.uuid, 10_000, `the access line of ${c.method} ${c.path}`);
    const access = server.logs().filter((l) => l.msg === 'request');
    for (const c of calls) {
      const lines = access.filter((l) => l.req_id === c.uuid);
      expect(lines, `${c.method} ${c.path}`).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 30, method: c.method, path: c.path, status: c.status, ms: expect.any(Number), ip: '127.0.0.1' });
      if (c.clientId) expect(lines[0]!.client_req_id).toBe(c.clientId);
    }
    expect(access.filter((l) => l.req_id === denied.body.uuid)[0]?.principal).toBe('dashboard');
    expect(access.filter((l) => l.req_id === ok.body.uuid)[0]?.principal).toBe('ops-admin');

    // nothing secret anywhere in the output (stdout and stderr), even at trace level
    const all = `${server.lines.join('\n')}\n${server.stderr}`;
    for (const needle of [ADMIN.token, READER.token, SECRET, BODY_MARKER, HEADER_MARKER, 'Bearer ']) expect(all, needle).not.toContain(needle);
    expect(server.logs().length).toBeGreaterThan(calls.length);
  }, 90_000);

  it('the level is configurable: at warn there are no access lines, and an open API is warned about', async () => {
    const server = await XcronServer.start({ env: { XCRON_LOG_LEVEL: 'warn' } });
    expect((await server.client.call('GET', '/xcron/stats')).status).toBe(200);
    const warnLine = await server.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('no API tokens configured'), 10_000, 'the open-API warning');
    expect(warnLine.level).toBe(40);
    server.kill('SIGTERM');
    await server.waitExit();
    expect(server.logs().filter((l) => l.msg === 'request')).toEqual([]);
    expect(server.logs().every((l) => Number(l.level) >= 40)).toBe(true);
  }, 60_000);
});

describe('auth on the real server', () => {
  it('tokens from a file: 401 without, 403 for read on writes, 200 with the right role; no open-API warning', async () => {
    const dir = tempDir('xcron-tokens-');
    const file = join(dir, 'tokens');
    writeFileSync(file, `# xcron tokens\n${ADMIN.token} admin deploy\n${READER.token} read grafana\n`);
    const server = await XcronServer.start({ env: { XCRON_AUTH_TOKENS_FILE: file } });
    const c = server.client;
    expect((await c.call('GET', '/xcron/stats')).status).toBe(401);
    expect((await c.call('GET', '/xcron/stats', { headers: { authorization: 'Bearer nope-nope-nope-nope' } })).status).toBe(401);
    expect((await c.call('GET', '/xcron/stats', { headers: bearer(READER) })).status).toBe(200);
    const w = await c.call('POST', '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: 'http://127.0.0.1:9/' } }, headers: bearer(READER) });
    expect(w.status).toBe(403);
    expect(w.body.code).toBe(1010);
    const made = await c.call('POST', '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: 'http://127.0.0.1:9/' } }, headers: bearer(ADMIN) });
    expect(made.body.code).toBe(0);
    expect((await c.call('GET', '/metrics')).status).toBe(401);
    expect((await c.call('GET', '/metrics', { headers: bearer(READER) })).status).toBe(200);
    expect((await c.healthz()).status).toBe(200);
    expect((await c.call('GET', '/readyz')).status).toBe(200);
    const on = await server.waitForLog((l) => l.msg === 'API authentication on', 5000, 'the auth-on line');
    expect(on.tokens).toBe(2);
    expect(server.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('no API tokens configured'))).toBe(false);
  }, 60_000);

  it('a bad tokens file stops the start (exit 2) naming the line, not the token', async () => {
    const dir = tempDir('xcron-tokens-');
    const file = join(dir, 'tokens');
    const secret = 'super-secret-token-value-xyz';
    writeFileSync(file, `${secret} superuser\n`);
    const r = await runToExit([], { XCRON_AUTH_TOKENS_FILE: file, XCRON_HTTP_PORT: '0', XCRON_DATA_DIR: join(dir, 'data') }, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/configuration error: 'auth\.tokens_file' .* line 1: role must be "admin", "read" or "executor"/);
    expect(r.stderr + r.stdout).not.toContain(secret);
  }, 30_000);
});

describe('metrics of the real server', () => {
  it('after real fires: outcomes, lateness, attempts, retries, tasks by state, slots, event-loop lag and process metrics', async () => {
    const recv = await receiver();
    recv.on('/fail', { status: 503 });
    const server = await XcronServer.start();
    const a = await server.client.mustCreate({ type: 1, format: '@every 1s', callback: { url: recv.url('/ok') } });
    const b = await server.client.mustCreate({ type: 1, format: '@every 1s', retry: { max_attempts: 2, backoff_ms: 0 }, callback: { url: recv.url('/fail') } });
    await server.client.mustCreate({ type: 1, format: '0 0 1 1 *', paused: true, callback: { url: recv.url('/never') } });
    const s = await waitUntil(
      () => metricsOf(server),
      (m) => (sampleValue(m, 'xcron_fires_total', { outcome: 'success' }) ?? 0) >= 1 && (sampleValue(m, 'xcron_fires_total', { outcome: 'fail' }) ?? 0) >= 1,
      30_000,
      'a success and a failure in /metrics',
    );
    await server.client.deleteTask(a.task_id);
    await server.client.deleteTask(b.task_id);
    expect(sampleValue(s, 'xcron_fires_committed_total')).toBeGreaterThanOrEqual(2);
    expect(sampleValue(s, 'xcron_fire_lateness_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(sampleValue(s, 'xcron_callback_attempts_total', { result: 'http_5xx' })).toBeGreaterThanOrEqual(2);
    expect(sampleValue(s, 'xcron_callback_attempts_total', { result: 'success' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(s, 'xcron_callback_retries_total')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(s, 'xcron_callback_duration_seconds_count', { result: 'success' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(s, 'xcron_tasks', { state: 'active' })).toBe(2);
    expect(sampleValue(s, 'xcron_tasks', { state: 'paused' })).toBe(1);
    expect(sampleValue(s, 'xcron_owned_slots')).toBe(256);
    expect(sampleValue(s, 'xcron_cluster_member')).toBe(1);
    expect(sampleValue(s, 'xcron_store_errors_total', { source: 'scheduler' })).toBe(0);
    expect(sampleValue(s, 'xcron_http_requests_total', { route: '/xcron/createTask', method: 'POST', status: '200' })).toBe(3);
    for (const n of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
      expect(s.some((x) => x.name === n), n).toBe(true);
    }
    expect(s.find((x) => x.name === 'xcron_build_info')?.labels.node).toMatch(/^e2e-\d+$/);
  }, 60_000);
});

describe('SSRF guard on the real server', () => {
  it('refuses the metadata address at create time (1011); after the policy is tightened, a stored task\'s delivery FAILs at once without reaching the receiver', async () => {
    const recv = await receiver();
    const server = await XcronServer.start();
    const meta = await server.client.createTask({ type: 1, format: '* * * * *', callback: { url: 'http://169.254.169.254/latest/meta-data/' } });
    expect(meta.status).toBe(400);
    expect(meta.body.code).toBe(1011);
    const t = await server.client.mustCreate({ type: 1, format: '@every 1s', callback: { url: recv.url('/internal') } });
    await recv.waitForRequest((q) => q.path === '/internal', 20_000, 'a callback under the default policy');
    server.kill('SIGTERM');
    expect((await server.waitExit()).code).toBe(0);
    const before = recv.to('/internal').length;

    const locked = await server.restart({ env: { XCRON_CALLBACK_ALLOW_LOOPBACK: 'false' } });
    type Runs = { runs: { status: string; error: string | null; attempts: number; run_id: string }[] };
    const runs = await waitUntil(
      async () => (await locked.client.call<Runs>('GET', `/xcron/taskRuns?task_id=${t.task_id}&limit=50`)).body.data.runs,
      (rs) => rs.some((r) => r.status === 'FAIL'),
      30_000,
      'a FAIL run after the policy was tightened',
    );
    await locked.client.deleteTask(t.task_id);
    const failed = runs.find((r) => r.status === 'FAIL')!;
    expect(failed.error).toMatch(/refused by the callback destination policy: 127\.0\.0\.1 is a loopback address/);
    expect(failed.attempts).toBe(1); // the default policy retries 3 times; a refusal is final
    expect(recv.to('/internal').length).toBe(before); // no connection reached the receiver
    const m = await metricsOf(locked);
    expect(sampleValue(m, 'xcron_callback_attempts_total', { result: 'refused' })).toBeGreaterThanOrEqual(1);
    // and new tasks to loopback are now refused up front, by IP and by name
    for (const u of [recv.url('/x'), `http://localhost:${recv.port}/x`]) {
      const r = await locked.client.createTask({ type: 1, format: '* * * * *', callback: { url: u } });
      expect(r.body.code, u).toBe(1011);
    }
    expect(locked.logs().some((l) => l.msg === 'callback destination policy (SSRF guard)' && l.allow_loopback === false)).toBe(true);
  }, 90_000);
});

