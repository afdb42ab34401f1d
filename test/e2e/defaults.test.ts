/**
 * Safe defaults and friendly start-up errors, against the real built server (./xcron_server):
 * loopback-only listening, the refusal of an open address without tokens, the default callback
 * policy and --dev, a busy port, an unreachable Redis, and the 415 of a form-encoded body (sent by
 * the real curl when it is installed).
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { call } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { XcronServer, runToExit, tempDir } from '../helpers/server.js';
import { receiverPerTest } from '../helpers/suites.js';

const WAIT = 30_000;
const ADMIN = { token: 'defaults-test-admin-token-0001', role: 'admin' };
/** A JavaScript stack frame in an error output. */
const STACK = /\n\s+at /;

const holders: Server[] = [];
const fx = receiverPerTest({ after: () => Promise.all(holders.splice(0).map((h) => new Promise((done) => h.close(done)))) });

const every2s = (url: string) => ({ type: 1, format: '*/2 * * * * *', name: 'defaults', callback: { url, body: { hello: 'xcron' } } });

/** Where the start log line says the server listens. */
async function listeningHost(srv: XcronServer): Promise<unknown> {
  const line = await srv.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('xcron listening on '), WAIT, 'the listening line');
  return line.host;
}

describe('the default configuration', () => {
  it('listens on 127.0.0.1 and refuses callbacks to loopback and private addresses, naming the fix', async () => {
    const srv = await XcronServer.start({ devCallbacks: false });
    expect(await listeningHost(srv)).toBe('127.0.0.1');

    const loop = await srv.client.createTask(every2s(fx.receiver.url('/tick')));
    expect(loop.status).toBe(400);
    expect(loop.body.code).toBe(1011);
    expect(loop.body.message).toMatch(/'callback.url' is refused by the callback destination policy: 127\.0\.0\.1 is a loopback address .*allow_loopback is false.*--dev/);

    const priv = await srv.client.createTask(every2s('http://10.1.2.3:9000/tick'));
    expect(priv.status).toBe(400);
    expect(priv.body.code).toBe(1011);
    expect(priv.body.message).toMatch(/10\.1\.2\.3 is a private address .*allow_private is false.*allow_hosts/);
    // Nothing was created.
    const list = await srv.client.call<{ tasks: unknown[] }>('GET', '/xcron/listTasks');
    expect(list.body.data.tasks).toEqual([]);
  });

  it('./xcron_server --dev lets callbacks reach a receiver on 127.0.0.1, over a file or env that says otherwise, and warns', async () => {
    const srv = await XcronServer.start({ devCallbacks: false, args: ['--dev'], env: { XCRON_CALLBACK_ALLOW_LOOPBACK: 'false' } });
    await srv.waitForLog((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.includes('development mode (--dev)'), WAIT, 'the --dev warning');
    const policy = await srv.waitForLog((l) => l.msg === 'callback destination policy (SSRF guard)', WAIT, 'the policy line');
    expect(policy).toMatchObject({ allow_loopback: true, allow_private: true });
    const { task_id } = await srv.client.mustCreate(every2s(fx.receiver.url('/tick')));
    const [req] = await fx.receiver.waitFor((rs) => rs.some((r) => r.url === '/tick'), WAIT, 'a callback on 127.0.0.1');
    expect(req).toBeDefined();
    expect(fx.receiver.forTask(task_id).length).toBeGreaterThan(0);
  });
});

describe('an address other machines can reach', () => {
  it('without API tokens is refused at start (exit 2) with a message naming tokens, http_host and allow_open', async () => {
    const dir = tempDir();
    for (const host of ['0.0.0.0', '::']) {
      const r = await runToExit([], { XCRON_HTTP_HOST: host, XCRON_HTTP_PORT: '0', XCRON_DATA_DIR: join(dir, 'data') }, dir);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`'http_host' is ${JSON.stringify(host)}, an address other machines can reach, and no API tokens are configured`);
      expect(r.stderr).toContain('XCRON_AUTH_TOKENS');
      expect(r.stderr).toContain('allow_open = true (XCRON_ALLOW_OPEN=true)');
      expect(r.stderr).not.toMatch(STACK);
    }
  });

  it('starts with allow_open = true', async () => {
    const srv = await XcronServer.start({ env: { XCRON_HTTP_HOST: '0.0.0.0', XCRON_ALLOW_OPEN: 'true' } });
    expect(await listeningHost(srv)).toBe('0.0.0.0');
    expect((await srv.client.call('GET', '/xcron/listTasks')).body.code).toBe(0);
  });

  it('starts with API tokens, and then answers only with one', async () => {
    const srv = await XcronServer.start({ env: { XCRON_HTTP_HOST: '0.0.0.0', XCRON_AUTH_TOKENS: JSON.stringify([ADMIN]) } });
    expect(await listeningHost(srv)).toBe('0.0.0.0');
    expect((await srv.client.call('GET', '/xcron/listTasks')).status).toBe(401);
    const ok = await srv.client.call('GET', '/xcron/listTasks', { headers: { authorization: `Bearer ${ADMIN.token}` } });
    expect(ok.body.code).toBe(0);
  });
});

describe('start-up errors', () => {
  it('a busy port: "port N is in use; set XCRON_HTTP_PORT or http_port", exit 1, no stack trace', async () => {
    const holder = createServer();
    holders.push(holder);
    const port = await new Promise<number>((res) => holder.listen(0, '127.0.0.1', () => res((holder.address() as { port: number }).port)));
    const dir = tempDir();
    const r = await runToExit([], { XCRON_HTTP_PORT: String(port), XCRON_DATA_DIR: join(dir, 'data') }, dir);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim()).toBe(`xcron: failed to start: port ${port} is in use (listening on 127.0.0.1:${port}); set XCRON_HTTP_PORT or http_port to a free port, or stop the process that holds it`);
  });

  it('an unreachable Redis: the wait names the URL (password hidden), gives up after connect_timeout_ms, exit 1, no stack trace', async () => {
    const port = await freePort(); // nothing listens there
    const url = `redis://:not-shown-pw@127.0.0.1:${port}`;
    const shown = `redis://:***@127.0.0.1:${port}`;
    const dir = tempDir();
    const r = await runToExit([], { XCRON_CLUSTER_REDIS_URL: url, XCRON_CLUSTER_CONNECT_TIMEOUT_MS: '1500', XCRON_HTTP_PORT: '0', XCRON_DATA_DIR: join(dir, 'data') }, dir, 60_000);
    expect(r.code, r.stderr).toBe(1);
    const waiting = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === `waiting for Redis at ${shown}`);
    expect(waiting, r.stdout).toMatchObject({ redis: shown });
    expect(r.stderr).toContain(`xcron: failed to start: gave up waiting for Redis at ${shown} after 1500 ms`);
    expect(r.stderr).toContain('XCRON_CLUSTER_REDIS_URL');
    expect(r.stderr).toContain('XCRON_CLUSTER_CONNECT_TIMEOUT_MS');
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stdout + r.stderr).not.toContain('not-shown-pw');
  });
});

describe('a body sent without Content-Type: application/json', () => {
  it('gets 415 whose message names the header to add', async () => {
    const srv = await XcronServer.start();
    const body = JSON.stringify(every2s(fx.receiver.url('/tick')));
    const r = await call(srv.baseUrl, 'POST', '/xcron/createTask', { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(415);
    expect(r.body.code).toBe(1000);
    expect(r.body.message).toContain(`send the header Content-Type: application/json (curl: add -H 'Content-Type: application/json'`);
  });

  it('curl -d without -H (when curl is installed) gets the same answer', async (ctx) => {
    const curl = await promisify(execFile)('curl', ['--version']).catch(() => null);
    if (curl === null) ctx.skip();
    const srv = await XcronServer.start();
    const { stdout } = await promisify(execFile)('curl', ['-s', '-w', '\n%{http_code}', `${srv.baseUrl}/xcron/createTask`, '-d', JSON.stringify(every2s(fx.receiver.url('/tick')))]);
    const [text, status] = stdout.split('\n');
    expect(status).toBe('415');
    const env = JSON.parse(text!) as { code: number; message: string };
    expect(env.code).toBe(1000);
    expect(env.message).toContain('"application/x-www-form-urlencoded"');
    expect(env.message).toContain(`-H 'Content-Type: application/json'`);
  });
});
