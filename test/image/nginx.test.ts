/**
 * config/nginx.conf does what its comments say, run by a real nginx in front of two real HTTP
 * backends (one answering 503 as an xcron node without its store does, one answering 200): a 503
 * on GET, HEAD, PUT or DELETE is passed once to the other node, a POST is not, two 503s reach the
 * client, and /readyz is never retried. Only the upstream addresses and the listen port are
 * rewritten to local ones. nginx is this machine's, or the Debian package unpacked into a cache
 * directory (never installed as a service); skipped, with the reason printed, when neither works.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { STORE } from './buildah.js';

function findNginx(): { bin: string } | { reason: string } {
  for (const bin of ['/usr/sbin/nginx', join(STORE, 'nginx/usr/sbin/nginx')]) {
    if (existsSync(bin) && spawnSync(bin, ['-v']).status === 0) return { bin };
  }
  // Unpack the Debian package (no service is installed or started).
  const dir = join(STORE, 'nginx');
  mkdirSync(dir, { recursive: true });
  const dl = spawnSync('bash', ['-c', `cd ${JSON.stringify(dir)} && { apt-get download nginx || { apt-get update -qq && apt-get download nginx; }; } && dpkg-deb -x nginx_*.deb .`], { encoding: 'utf8', timeout: 300_000 });
  const bin = join(dir, 'usr/sbin/nginx');
  if (dl.status === 0 && existsSync(bin) && spawnSync(bin, ['-v']).status === 0) return { bin };
  return { reason: `no nginx here and the Debian package could not be unpacked: ${(dl.stderr || '').trim().split('\n').slice(-2).join(' / ')}` };
}

const found = findNginx();
if ('reason' in found) console.warn(`\ntest/image/nginx.test.ts SKIPPED: ${found.reason}\n`);

interface Backend {
  port: number;
  /** X-Test-Id of every request seen, with its method and path. */
  seen: { id: string; method: string; path: string }[];
  status: number;
  server: Server;
}

async function backend(status: number): Promise<Backend> {
  const b: Backend = { port: 0, seen: [], status, server: createServer() };
  b.server.on('request', (req, res) => {
    req.resume();
    req.on('end', () => {
      b.seen.push({ id: String(req.headers['x-test-id'] ?? ''), method: req.method ?? '', path: req.url ?? '' });
      const body = b.status === 503 ? { code: 1016, message: 'store unavailable, retry later' } : { code: 0, message: 'ok' };
      res.writeHead(b.status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  b.port = (b.server.address() as AddressInfo).port;
  return b;
}

const children: ChildProcess[] = [];
const backends: Backend[] = [];
const dirs: string[] = [];

/** nginx with config/nginx.conf, its upstream pointed at the backends (in this order). */
async function startNginx(bin: string, ups: Backend[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'xcron-nginx-'));
  dirs.push(dir);
  const port = await freePort();
  const site = readFileSync(join(REPO_ROOT, 'config/nginx.conf'), 'utf8');
  // xcron-a, xcron-b, xcron-c become the backends in order; a line without a backend is dropped.
  const names = ['xcron-a', 'xcron-b', 'xcron-c'];
  const rewritten = site
    .replace(/^(\s*server )(xcron-[abc]):8000([^\n]*\n)/gm, (_m, lead: string, name: string, rest: string) => {
      const b = ups[names.indexOf(name)];
      return b ? `${lead}127.0.0.1:${b.port}${rest}` : '';
    })
    .replace(/^(\s*listen )80;/m, `$1127.0.0.1:${port};`);
  expect(rewritten).not.toMatch(/xcron-[abc]|listen 80;/);
  writeFileSync(join(dir, 'site.conf'), rewritten);
  for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, t));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process off; pid ${dir}/nginx.pid; error_log stderr warn;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`,
  );
  const child = spawn(bin, ['-p', dir, '-e', 'stderr', '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
      return (await fetch(`${base}/healthz`, { headers: { 'x-test-id': 'probe' } })).status;
    },
    (s) => s > 0,
    20_000,
    'nginx to answer',
  );
  for (const b of ups) b.seen.length = 0;
  return base;
}

async function send(base: string, method: string, path: string, id: string): Promise<number> {
  const r = await fetch(`${base}${path}`, { method, headers: { 'x-test-id': id, 'content-type': 'application/json' }, body: method === 'POST' || method === 'PUT' ? '{}' : undefined });
  await r.arrayBuffer();
  return r.status;
}

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
  }
  for (const b of backends.splice(0)) await new Promise((r) => b.server.close(r));
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf('reason' in found)('config/nginx.conf under a real nginx', () => {
  const bin = 'bin' in found ? found.bin : '';

  it('the config is valid as written (nginx -t, upstream names aside)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xcron-nginx-t-'));
    dirs.push(dir);
    // The compose service names do not resolve here; nginx -t resolves upstream hosts.
    const site = readFileSync(join(REPO_ROOT, 'config/nginx.conf'), 'utf8').replace(/xcron-[abc]:8000/g, '127.0.0.1:8000');
    writeFileSync(join(dir, 'site.conf'), site);
    writeFileSync(join(dir, 'nginx.conf'), `pid ${dir}/nginx.pid; error_log stderr; events {} http { include ${dir}/site.conf; }\n`);
    const r = spawnSync(bin, ['-t', '-p', dir, '-e', 'stderr', '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
    expect(r.stderr).toContain('syntax is ok');
  });

  it('a 503 on GET, HEAD, PUT or DELETE is passed to another node; the client gets that node\'s 200', async () => {
    const bad = await backend(503);
    const good = await backend(200);
    backends.push(bad, good);
    const base = await startNginx(bin, [bad, good]);
    const statuses: number[] = [];
    const methods = ['GET', 'HEAD', 'PUT', 'DELETE', 'GET', 'DELETE'];
    for (const [n, m] of methods.entries()) statuses.push(await send(base, m, '/xcron/queryTask?task_id=x', `r${n}`));
    expect(statuses).toEqual(methods.map(() => 200));
    const retried = bad.seen.map((s) => s.id);
    expect(retried.length, 'some request met the 503 node first').toBeGreaterThan(0);
    for (const id of retried) expect(good.seen.map((s) => s.id)).toContain(id);
  });

  it('a 503 on POST is not passed on: the client gets the 503 and its code', async () => {
    const bad = await backend(503);
    const good = await backend(200);
    backends.push(bad, good);
    const base = await startNginx(bin, [bad, good]);
    const got: Record<string, number> = {};
    for (let n = 0; n < 2; n++) got[`p${n}`] = await send(base, 'POST', '/xcron/createTask', `p${n}`);
    const toBad = bad.seen.map((s) => s.id);
    expect(toBad.length, 'one POST met the 503 node (round robin)').toBe(1);
    for (const id of toBad) {
      expect(got[id]).toBe(503);
      expect(good.seen.map((s) => s.id)).not.toContain(id);
    }
    for (const s of good.seen) expect(got[s.id]).toBe(200);
  });

  it('when the second node answers 503 too, the client gets 503 after two tries', async () => {
    const a = await backend(503);
    const b = await backend(503);
    backends.push(a, b);
    const base = await startNginx(bin, [a, b]);
    expect(await send(base, 'GET', '/xcron/queryTask?task_id=x', 'both')).toBe(503);
    expect([...a.seen, ...b.seen].filter((s) => s.id === 'both')).toHaveLength(2);
  });

  it('/readyz is not retried: a not-ready node\'s 503 reaches the prober', async () => {
    const bad = await backend(503);
    const good = await backend(200);
    backends.push(bad, good);
    const base = await startNginx(bin, [bad, good]);
    const got: Record<string, number> = {};
    for (let n = 0; n < 2; n++) got[`z${n}`] = await send(base, 'GET', '/readyz', `z${n}`);
    expect(bad.seen).toHaveLength(1);
    expect(got[bad.seen[0]!.id]).toBe(503);
    expect(good.seen.map((s) => s.id)).not.toContain(bad.seen[0]!.id);
  });
});
