/**
 * The container image, built from the Dockerfile and run, with no registry and no Docker daemon:
 * deploy/build-local-base.sh makes local base images (Debian by mmdebstrap + this machine's Node.js
 * and npm; kept between runs in a fixed buildah storage), `buildah bud` builds the Dockerfile on
 * them (its npm ci from the lockfile included), and the image's own command runs as its own user
 * with `buildah run` (chroot isolation: the host's network, so the receiver on 127.0.0.1 is reached).
 * Skipped, with the reason printed, only when buildah or mmdebstrap cannot be installed or run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XcronClient } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { Receiver } from '../helpers/receiver.js';
import { REPO_ROOT } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { BUILDAH_GLOBAL, STORE, baseTagSuffix, buildah, imageConfig, imageExists, toolsUnavailable, type ImageConfig } from './buildah.js';

const unavailable = toolsUnavailable();
if (unavailable !== null) console.warn(`\ntest/image/image.test.ts SKIPPED: ${unavailable}\n`);

const IMAGE = 'localhost/xcron:test';
const suffix = unavailable === null ? baseTagSuffix(REPO_ROOT) : 'none';
const RUNTIME_BASE = `localhost/xcron-test-base:${suffix}`;
const BUILD_BASE = `localhost/xcron-test-build-base:${suffix}`;

const secs = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

/** Bytes of regular files and symlinks under a directory (hard links counted once). */
function treeBytes(dir: string): number {
  let total = 0;
  const seen = new Set<string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (!seen.has(`${st.dev}:${st.ino}`)) {
        seen.add(`${st.dev}:${st.ino}`);
        total += st.size;
      }
    }
  };
  walk(dir);
  return total;
}

/** Every path under a directory, relative to it. */
function listTree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    out.push(r);
    if (lstatSync(join(dir, r)).isDirectory()) out.push(...listTree(dir, r));
  }
  return out;
}

/** Mounts a new container of an image; returns its root directory and a cleanup. */
async function mountImage(image: string): Promise<{ root: string; done: () => Promise<void> }> {
  const ctr = (await buildah(['from', '--pull=never', image])).trim();
  const root = (await buildah(['mount', ctr])).trim();
  return {
    root,
    done: async () => {
      await buildah(['umount', ctr]).catch(() => undefined);
      await buildah(['rm', ctr]).catch(() => undefined);
    },
  };
}

/** Direct and indirect children of a process, from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      // the process exited meanwhile
    }
  }
  const out: number[] = [];
  for (const p of parent.keys()) {
    let q: number | undefined = p;
    for (let hops = 0; q !== undefined && q > 1 && hops < 50; hops++) {
      q = parent.get(q);
      if (q === pid) {
        out.push(p);
        break;
      }
    }
  }
  return out;
}

interface Running {
  child: ChildProcess;
  ctr: string;
  output: () => string;
  exited: Promise<number | null>;
  /** The pid of the image's command (node), found among the descendants of `buildah run`. */
  serverPid: () => number | undefined;
}

/**
 * Runs the image's own entrypoint + command as its own user and working directory, with a host
 * directory as the /data volume, in a new container. Only the port and the callback policy for
 * the loopback receiver are set on top.
 */
async function runImage(cfg: ImageConfig, dataDir: string, port: number): Promise<Running> {
  const ctr = (await buildah(['from', '--pull=never', IMAGE])).trim();
  // buildah run mounts an anonymous volume of its own over a path the image declares as VOLUME,
  // hiding a --volume bind there; drop the declaration on this working container (not the image,
  // checked above) so the host directory is what the container sees at /data.
  await buildah(['config', '--volume', '/data-', ctr]);
  const command = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
  const child = spawn(
    'buildah',
    [...BUILDAH_GLOBAL, 'run', '--isolation', 'chroot', '--user', cfg.User ?? '', '--workingdir', cfg.WorkingDir ?? '/', '--volume', `${dataDir}:/data`, '--env', `XCRON_HTTP_PORT=${port}`, '--env', 'XCRON_CALLBACK_ALLOW_LOOPBACK=true', ctr, '--', ...command],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // buildah's own helper (buildah-chroot-exec) carries the same arguments: match argv[0] = node.
  const pidOf = (): number | undefined =>
    descendants(child.pid ?? -1).find((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return /(^|\/)node$/.test(argv[0] ?? '') && argv.includes('dist/src/main.js');
      } catch {
        return false;
      }
    });
  return { child, ctr, output: () => out, exited, serverPid: pidOf };
}

async function stop(run: Running): Promise<number | null> {
  const pid = run.serverPid();
  if (pid !== undefined) process.kill(pid, 'SIGTERM');
  else run.child.kill('SIGTERM');
  const code = await Promise.race([run.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
  if (code === 'timeout') {
    run.child.kill('SIGKILL');
    throw new Error(`the container did not stop within 60 s of SIGTERM:\n${run.output().slice(-3000)}`);
  }
  await buildah(['rm', run.ctr]).catch(() => undefined);
  if (code !== 0) throw new Error(`the container exited with ${code} after SIGTERM:\n${run.output().slice(-3000)}`);
  return code;
}

describe.skipIf(unavailable !== null)('the container image (buildah, local base images)', () => {
  let cfg: ImageConfig;
  const running: Running[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    const t0 = Date.now();
    let baseNote = 'cached';
    if (!(await imageExists(RUNTIME_BASE)) || !(await imageExists(BUILD_BASE))) {
      baseNote = 'built';
      await new Promise<void>((resolve, reject) => {
        const p = spawn('bash', [join(REPO_ROOT, 'deploy/build-local-base.sh'), RUNTIME_BASE, BUILD_BASE], {
          env: { ...process.env, BUILDAH: ['buildah', ...BUILDAH_GLOBAL].join(' ') },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let log = '';
        p.stdout.on('data', (d: Buffer) => (log += d.toString()));
        p.stderr.on('data', (d: Buffer) => (log += d.toString()));
        p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`build-local-base.sh failed (${code}):\n${log.slice(-6000)}`))));
      });
    }
    const t1 = Date.now();
    // Leftovers of an interrupted earlier run in this storage, and bases of an older script or Node.
    await buildah(['rm', '--all']).catch(() => undefined);
    const names = (await buildah(['images', '--format', '{{.Name}}:{{.Tag}}'])).split('\n');
    for (const n of names.filter((x) => /^localhost\/xcron-test-(build-)?base:/.test(x) && !x.endsWith(`:${suffix}`))) {
      await buildah(['rmi', n]).catch(() => undefined);
    }
    // XCRON_IMAGE_REUSE=1 (only while working on this test) runs the checks on the image already
    // built; the suite always builds it afresh.
    const reuse = process.env.XCRON_IMAGE_REUSE === '1' && (await imageExists(IMAGE));
    if (!reuse) await buildah(['rmi', '--force', IMAGE]).catch(() => undefined);
    if (!reuse) await buildah(
      ['bud', '--isolation', 'chroot', '--format', 'docker', '--pull=never', '--build-arg', `BASE_IMAGE=${RUNTIME_BASE}`, '--build-arg', `BUILD_IMAGE=${BUILD_BASE}`, '-f', join(REPO_ROOT, 'Dockerfile'), '-t', IMAGE, REPO_ROOT],
      60 * 60_000,
    );
    await buildah(['rmi', '--prune']).catch(() => undefined);
    const t2 = Date.now();
    console.log(`image test: local base images ${baseNote} in ${secs(t1 - t0)}, Dockerfile ${reuse ? 'reused (XCRON_IMAGE_REUSE=1)' : `built in ${secs(t2 - t1)}`} (storage ${STORE})`);
    cfg = await imageConfig(IMAGE);
  }, 85 * 60_000);

  afterAll(async () => {
    for (const r of running) {
      // The node process outlives a killed `buildah run`: kill it first.
      const pid = r.serverPid();
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
      await buildah(['rm', r.ctr]).catch(() => undefined);
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it('declares a non-root user, the /data volume, port 8000, a health check and the node command', () => {
    expect(cfg.User).toBe('node');
    expect(Object.keys(cfg.Volumes ?? {})).toEqual(['/data']);
    expect(Object.keys(cfg.ExposedPorts ?? {})).toEqual(['8000/tcp']);
    expect(cfg.WorkingDir).toBe('/app');
    expect([...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])]).toEqual(['node', '--enable-source-maps', 'dist/src/main.js']);
    expect(cfg.Healthcheck?.Test?.join(' ')).toContain('/healthz');
    // Every interface, open on purpose (allow_open): the port is reachable only where it is published.
    expect(cfg.Env).toEqual(expect.arrayContaining(['XCRON_DATA_DIR=/data', 'XCRON_HTTP_HOST=0.0.0.0', 'XCRON_ALLOW_OPEN=true', 'NODE_ENV=production']));
  });

  it('holds the compiled service and production dependencies only: no tests, benches, sources or dev dependencies', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const img = await mountImage(IMAGE);
    const base = await mountImage(RUNTIME_BASE);
    try {
      const app = join(img.root, 'app');
      const top = readdirSync(app).sort();
      expect(top).toEqual(['config', 'dist', 'node_modules', 'package.json', 'xcron.toml']);
      expect(readdirSync(join(app, 'dist'))).toEqual(['src']);
      const files = listTree(app);
      expect(files.filter((f) => /(^|\/)(test|tests|bench)\//.test(f) && !f.startsWith('node_modules/'))).toEqual([]);
      expect(files.filter((f) => /\.test\.(js|ts)$/.test(f) && !f.startsWith('node_modules/'))).toEqual([]);
      expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('node_modules/'))).toEqual([]);
      for (const dep of Object.keys(pkg.devDependencies)) expect(existsSync(join(app, 'node_modules', dep)), `dev dependency ${dep} in the image`).toBe(false);
      for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', dep, 'package.json')), `dependency ${dep} missing`).toBe(true);
      expect(existsSync(join(app, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(true);
      expect(existsSync(join(app, 'dist/src/main.js'))).toBe(true);
      expect(existsSync(join(app, 'dist/src/ui/client'))).toBe(true);
      expect(readdirSync(join(app, 'dist/src/redis/lua')).length).toBeGreaterThan(0);
      // No build toolchain in the final image (the build stage had one).
      expect(existsSync(join(img.root, 'usr/bin/g++'))).toBe(false);
      const total = treeBytes(img.root);
      const baseBytes = treeBytes(base.root);
      console.log(
        `image size: ${mb(total)} uncompressed (base ${mb(baseBytes)}: Debian minbase + Node.js; /app ${mb(treeBytes(app))}, of which node_modules ${mb(treeBytes(join(app, 'node_modules')))})`,
      );
      expect(total).toBeGreaterThan(baseBytes);
    } finally {
      await img.done();
      await base.done();
    }
  }, 300_000);

  it('runs: /healthz, a task whose callback reaches the host, the process is not root, and the volume keeps the data over a restart', async () => {
    const receiver = await Receiver.start();
    try {
      const dataDir = mkdtempSync(join(tmpdir(), 'xcron-image-data-'));
      dirs.push(dataDir);
      // A bind-mounted host directory keeps its own owner: give it to the image's user (uid 1000
      // in the image's /etc/passwd), as a named volume would be.
      const img = await mountImage(IMAGE);
      const passwd = readFileSync(join(img.root, 'etc/passwd'), 'utf8');
      await img.done();
      const entry = passwd.split('\n').find((l) => l.startsWith(`${cfg.User}:`));
      expect(entry, `user ${cfg.User} in the image's /etc/passwd`).toBeDefined();
      const uid = Number(entry?.split(':')[2]);
      const gid = Number(entry?.split(':')[3]);
      expect(uid).toBeGreaterThan(0);
      chownSync(dataDir, uid, gid);

      const port = await freePort();
      const client = new XcronClient(`http://127.0.0.1:${port}`);
      const first = await runImage(cfg, dataDir, port);
      running.push(first);
      const health = await waitUntil(() => client.healthz(), (r) => r.status === 200, 120_000, `/healthz of the container\n${first.output()}`, 250);
      expect(health.body.data.status).toBe('ok');

      // The server process runs as the image's user, not root.
      const pid = first.serverPid();
      expect(pid, 'the node process under buildah run').toBeDefined();
      const uidLine = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'));
      expect(uidLine?.split(/\s+/).slice(1, 5).map(Number)).toEqual([uid, uid, uid, uid]);

      const created = await client.mustCreate({
        type: 1,
        format: '*/1 * * * * *',
        name: 'image-test',
        callback: { url: receiver.url('/image-tick'), body: { from: 'container' } },
      });
      const firstTick = await receiver.waitForRequest((r) => r.path === '/image-tick', 60_000, 'a callback from the container');
      expect(JSON.parse(firstTick.body)).toEqual({ from: 'container' });

      // The data lives in the volume, written by the image's user.
      const dbFiles = readdirSync(dataDir).filter((f) => !f.startsWith('.'));
      expect(dbFiles.length).toBeGreaterThan(0);
      for (const f of dbFiles) expect(statSync(join(dataDir, f)).uid, `owner of ${f}`).toBe(uid);

      expect(await stop(first)).toBe(0);
      const before = receiver.to('/image-tick').length;

      // A new container of the same image on the same volume: the task is still there and fires.
      const second = await runImage(cfg, dataDir, port);
      running.push(second);
      await waitUntil(() => client.healthz(), (r) => r.status === 200, 120_000, `/healthz after the restart\n${second.output()}`, 250);
      const task = await client.mustQuery(created.task_id);
      expect(task.task_id).toBe(created.task_id);
      expect(task.run_count).toBeGreaterThan(0);
      await receiver.waitFor((reqs) => reqs.filter((r) => r.path === '/image-tick').length > before, 60_000, 'a callback after the restart');
      expect(await stop(second)).toBe(0);
    } finally {
      await receiver.close();
    }
  }, 600_000);
});
