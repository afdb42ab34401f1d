/**
 * API auth: token matching, the role matrix over every route, token sources (config, env, file),
 * and the open mode. Through app.request against the real app over SQLite.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/api/app.js';
import { EXECUTOR_PATHS, PUBLIC_PATHS, READ_PATHS, TokenAuth, bearerToken, readTokensFile, requiredRole, resolveTokens } from '../../src/api/auth.js';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { send } from '../helpers/app.js';
import { ADMIN, READER, bearer, createOpsApp, type OpsApp } from './helpers.js';

describe('TokenAuth', () => {
  const auth = new TokenAuth([ADMIN, READER]);

  it('identifies configured tokens and nothing else', () => {
    expect(auth.identify(`Bearer ${ADMIN.token}`)).toEqual({ id: 'ops-admin', role: 'admin' });
    expect(auth.identify(`bearer   ${READER.token}  `)).toEqual({ id: 'dashboard', role: 'read' });
    expect(auth.identify(undefined)).toBeNull();
    expect(auth.identify('')).toBeNull();
    expect(auth.identify(ADMIN.token)).toBeNull(); // no scheme
    expect(auth.identify(`Basic ${ADMIN.token}`)).toBeNull();
    expect(auth.identify(`Bearer ${ADMIN.token}x`)).toBeNull();
    expect(auth.identify(`Bearer ${ADMIN.token.slice(0, -1)}`)).toBeNull();
    expect(auth.identify(`Bearer ${ADMIN.token.toUpperCase()}`)).toBeNull();
    expect(auth.identify(`Bearer ${'x'.repeat(100_000)}`)).toBeNull();
  });

  it('parses only well-formed bearer headers', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken('Bearer')).toBeNull();
  });

  it('names unnamed tokens by position, never by value', () => {
    const a = new TokenAuth([{ token: 'abcdefghijklmnop-1', role: 'read' }]);
    expect(a.identify('Bearer abcdefghijklmnop-1')).toEqual({ id: 'token-1', role: 'read' });
  });

  it('refuses the same token with two roles', () => {
    expect(() => new TokenAuth([ADMIN, { ...ADMIN, role: 'read' }])).toThrow(ConfigError);
  });

  it('the role table: read paths are exactly the read-only endpoints', () => {
    expect([...READ_PATHS].sort()).toEqual(['/metrics', '/ui/api/next-fires', '/xcron/cluster', '/xcron/executors', '/xcron/listTasks', '/xcron/queryTask', '/xcron/report', '/xcron/runLog', '/xcron/runs', '/xcron/stats', '/xcron/taskRuns']);
    expect([...PUBLIC_PATHS].sort()).toEqual(['/healthz', '/readyz', '/xcron/appendRunLog', '/xcron/reportRun']);
    expect(requiredRole('/xcron/createTask')).toBe('admin');
    expect(requiredRole('/xcron/someFutureEndpoint')).toBe('admin'); // deny by default
    expect([...EXECUTOR_PATHS].sort()).toEqual(['/xcron/registerExecutor', '/xcron/unregisterExecutor']);
    expect(requiredRole('/xcron/registerExecutor')).toBe('executor');
  });
});

describe('the role matrix over every route', () => {
  let api: OpsApp;
  let taskId: string;
  beforeAll(async () => {
    api = await createOpsApp({ tokens: [ADMIN, READER] });
    const r = await send<{ task_id: string }>(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: 'http://127.0.0.1:9/hook' } }, headers: bearer(ADMIN) });
    expect(r.body.code).toBe(0);
    taskId = r.body.data.task_id;
  });
  afterAll(async () => {
    await api.close();
  });

  it('no token / wrong token: 401, code 1010, WWW-Authenticate; health stays open', async () => {
    for (const [path, methods] of Object.entries(ROUTES)) {
      for (const method of methods) {
        const variants: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-0123456789abcdef' }, { authorization: 'Token abc' }];
        for (const headers of variants) {
          const res = await api.app.request(path, { method, headers, ...(method === 'POST' ? { body: '{}' } : {}) });
          const body = (await res.json()) as { code: number; message: string };
          if (PUBLIC_PATHS.has(path)) {
            expect(body.message, `${method} ${path}`).not.toMatch(/^unauthorized: /); // the API-token check does not apply
            if (path === '/healthz' || path === '/readyz') expect(res.status).toBe(200);
            continue;
          }
          expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
          expect(body.code).toBe(1010);
          expect(body.message).toMatch(/^unauthorized: (missing|malformed|invalid)/);
          expect(res.headers.get('www-authenticate')).toBe('Bearer realm="xcron"');
        }
      }
    }
  });

  it('read token: read endpoints answer, every other endpoint is 403 code 1010', async () => {
    for (const [path, methods] of Object.entries(ROUTES)) {
      for (const method of methods) {
        const res = await api.app.request(method === 'GET' && path.startsWith('/xcron/') ? `${path}?task_id=${taskId}` : path, {
          method,
          headers: { ...bearer(READER), 'content-type': 'application/json' },
          ...(method === 'POST' ? { body: JSON.stringify({ task_id: taskId }) } : {}),
        });
        if (PUBLIC_PATHS.has(path)) continue; // no API token involved
        if (READ_PATHS.has(path)) {
          expect([401, 403], `${method} ${path}`).not.toContain(res.status);
          expect(res.status, `${method} ${path}`).toBeLessThan(500);
        } else {
          expect(res.status, `${method} ${path}`).toBe(403);
          const body = (await res.json()) as { code: number; message: string };
          expect(body.code).toBe(1010);
          const needs = EXECUTOR_PATHS.has(path) ? "role 'executor' or 'admin'" : "role 'admin'";
          expect(body.message).toBe(`forbidden: token 'dashboard' has role 'read'; ${method} ${path} needs ${needs}`);
        }
      }
    }
    // nothing changed: the task is still active and was not triggered
    const t = await api.store.get(taskId);
    expect(t?.state).toBe('active');
    expect(t?.run_count).toBe(0);
  });

  it('admin token: every endpoint answers (no 401/403)', async () => {
    for (const [path, methods] of Object.entries(ROUTES)) {
      for (const method of methods) {
        const res = await api.app.request(method === 'GET' && path.startsWith('/xcron/') ? `${path}?task_id=${taskId}` : path, {
          method,
          headers: { ...bearer(ADMIN), 'content-type': 'application/json' },
          ...(method === 'POST' ? { body: JSON.stringify({ task_id: taskId }) } : {}),
        });
        expect([401, 403], `${method} ${path}`).not.toContain(res.status);
        expect(res.status, `${method} ${path}`).toBeLessThan(500);
      }
    }
    expect(await api.store.get(taskId)).toBeNull(); // deleteTask went through
  });

  it('unknown paths: 401 without a token, 404 with an admin token, 403 with a read token', async () => {
    expect((await send(api.app, '/xcron/nope')).status).toBe(401);
    expect((await send(api.app, '/xcron/nope', { headers: bearer(ADMIN) })).status).toBe(404);
    expect((await send(api.app, '/xcron/nope', { headers: bearer(READER) })).status).toBe(403);
  });

  it('the access log names the principal, never the token', async () => {
    await send(api.app, `/xcron/queryTask?task_id=${taskId}`, { headers: bearer(READER) });
    const line = api.logs.parsed().reverse().find((l) => l.msg === 'request' && l.path === '/xcron/queryTask');
    expect(line?.principal).toBe('dashboard');
    expect(api.logs.lines.join('\n')).not.toContain(READER.token);
    expect(api.logs.lines.join('\n')).not.toContain(ADMIN.token);
  });

  it('/metrics needs read or admin when auth is on', async () => {
    expect((await api.app.request('/metrics')).status).toBe(401);
    const r = await api.app.request('/metrics', { headers: bearer(READER) });
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('xcron_fires_total');
  });
});

describe('open mode and public metrics', () => {
  let api: OpsApp;
  afterEach(async () => {
    await api.close();
  });

  it('no tokens configured: every endpoint is open', async () => {
    api = await createOpsApp({ tokens: [] });
    expect((await send(api.app, '/xcron/stats')).status).toBe(200);
    const r = await send(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: 'http://127.0.0.1:9/' } } });
    expect(r.body.code).toBe(0);
    expect((await api.app.request('/metrics')).status).toBe(200);
  });

  it('public_metrics serves /metrics without a token, the API still needs one', async () => {
    api = await createOpsApp({ tokens: [ADMIN], publicMetrics: true });
    expect((await api.app.request('/metrics')).status).toBe(200);
    expect((await send(api.app, '/xcron/stats')).status).toBe(401);
  });
});

describe('token sources', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'xcron-auth-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('XCRON_AUTH_TOKENS (JSON) configures tokens without the TOML file', () => {
    const cfg = loadConfig({ explicit: false, env: { XCRON_AUTH_TOKENS: JSON.stringify([ADMIN, { token: READER.token, role: 'read' }]), XCRON_AUTH_RATE_LIMIT_PER_SEC: '5' } });
    expect(cfg.auth.tokens).toEqual([ADMIN, { token: READER.token, role: 'read' }]);
    expect(cfg.auth.rate_limit_per_sec).toBe(5);
  });

  it('bad tokens are refused at start with a message that names the key but not the value', () => {
    const secret = 'short-secret';
    for (const env of [
      { XCRON_AUTH_TOKENS: JSON.stringify([{ token: secret, role: 'admin' }]) },
      { XCRON_AUTH_TOKENS: JSON.stringify([{ token: `${secret}-long-enough but spaced`, role: 'admin' }]) },
      { XCRON_AUTH_TOKENS: JSON.stringify([{ token: `${secret}-long-enough`, role: 'root' }]) },
      { XCRON_AUTH_TOKENS: `${secret}-long-enough` },
    ]) {
      let err: unknown;
      try {
        loadConfig({ explicit: false, env });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/auth\.tokens/);
      expect((err as Error).message).not.toContain(secret);
    }
  });

  it('a tokens file: lines "<token> <role> [name]" with comments, or JSON', () => {
    const lines = join(dir, 'tokens.txt');
    writeFileSync(lines, `# xcron tokens\n${ADMIN.token} admin deploy\n\n   ${READER.token}   read   # grafana\n`);
    expect(readTokensFile(lines)).toEqual([
      { token: ADMIN.token, role: 'admin', name: 'deploy' },
      { token: READER.token, role: 'read' },
    ]);
    const json = join(dir, 'tokens.json');
    writeFileSync(json, JSON.stringify([READER]));
    expect(readTokensFile(json)).toEqual([READER]);
    // merged with [auth] tokens
    const merged = resolveTokens({ tokens: [ADMIN], tokens_file: json });
    const auth = new TokenAuth(merged);
    expect(auth.identify(`Bearer ${READER.token}`)?.role).toBe('read');
    expect(auth.identify(`Bearer ${ADMIN.token}`)?.role).toBe('admin');
  });

  it('tokens file errors name the line, not the token', () => {
    const bad = join(dir, 'bad.txt');
    const secret = 'this-is-a-secret-token-value';
    writeFileSync(bad, `${ADMIN.token} admin\n${secret} superuser\n`);
    expect(() => readTokensFile(bad)).toThrow(/line 2: role must be "admin", "read" or "executor"/);
    try {
      readTokensFile(bad);
    } catch (e) {
      expect((e as Error).message).not.toContain(secret);
    }
    writeFileSync(bad, `${secret}\n`);
    expect(() => readTokensFile(bad)).toThrow(/line 1: expected "<token> <role> \[name\]"/);
    expect(() => readTokensFile(join(dir, 'missing'))).toThrow(/cannot read .*ENOENT/);
  });
});
