/**
 * build.sh installs exactly the lockfile: `npm ci` or a clear failure, never `npm install` (which
 * rewrites package-lock.json), and never an install through a node_modules link (npm ci would
 * empty the linked directory). Runs the real build.sh in a temp copy of the repo's manifest files
 * with `npm` and `npx` replaced by recorders on PATH (no registry, no compile).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/server.js';

interface LockEntry {
  version?: string;
  integrity?: string;
  optional?: boolean;
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

/** A temp checkout: build.sh, package.json, package-lock.json, the Lua files it copies, and fake npm/npx. */
interface Sandbox {
  dir: string;
  /** Every npm and npx call, in order. */
  calls: () => string[];
  npmCalls: () => string[];
  /** Whether the server's TypeScript was compiled (npx tsc -p tsconfig.json). */
  compiled: () => boolean;
  run: () => { status: number | null; stdout: string; stderr: string };
}

function sandbox(npmCi: 'fails-out-of-sync' | 'installs'): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'xcron-build-'));
  dirs.push(dir);
  for (const f of ['build.sh', 'package.json', 'package-lock.json']) copyFileSync(join(REPO_ROOT, f), join(dir, f));
  // The Lua directories build.sh copies from (one dummy script each).
  for (const m of readFileSync(join(dir, 'build.sh'), 'utf8').matchAll(/cp (\S+)\/\*\.lua /g)) {
    mkdirSync(join(dir, m[1]!), { recursive: true });
    writeFileSync(join(dir, m[1]!, 'x.lua'), 'return 1\n');
  }
  const bin = join(dir, '.fakebin');
  mkdirSync(bin);
  const log = join(dir, '.calls');
  writeFileSync(log, '');
  // npm: records its arguments; `npm ci` either refuses the lockfile as npm does, or "installs"
  // by writing npm's record of the lockfile's packages (as a real npm ci would).
  const installScript = `node -e '
const fs = require("fs");
const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
const packages = {};
for (const [k, v] of Object.entries(lock.packages)) if (k !== "" && !v.optional) packages[k] = v;
fs.mkdirSync("node_modules/better-sqlite3/build/Release", { recursive: true });
fs.writeFileSync("node_modules/better-sqlite3/build/Release/better_sqlite3.node", "");
fs.writeFileSync("node_modules/.package-lock.json", JSON.stringify({ packages }));
'`;
  writeFileSync(
    join(bin, 'npm'),
    `#!/usr/bin/env bash
echo "npm $*" >> "${log}"
if [ "$1" = ci ]; then
  ${npmCi === 'installs' ? installScript : `echo "npm error \\\`npm ci\\\` can only install packages when your package.json and package-lock.json or npm-shrinkwrap.json are in sync." >&2; exit 1`}
fi
exit 0
`,
  );
  writeFileSync(join(bin, 'npx'), `#!/usr/bin/env bash\necho "npx $*" >> "${log}"\nmkdir -p dist/src/store\nexit 0\n`);
  chmodSync(join(bin, 'npm'), 0o755);
  chmodSync(join(bin, 'npx'), 0o755);
  const calls = (): string[] => readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
  return {
    dir,
    calls,
    npmCalls: () => calls().filter((c) => c.startsWith('npm ')),
    compiled: () => calls().includes('npx tsc -p tsconfig.json'),
    run: () => {
      const r = spawnSync('bash', ['build.sh'], { cwd: dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` }, encoding: 'utf8', timeout: 60_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

/** Writes node_modules as a matching install of the lockfile (npm's own record + the native addon). */
function installMatching(nm: string, lockFile: string): void {
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages: Record<string, LockEntry> };
  const packages = Object.fromEntries(Object.entries(lock.packages).filter(([k, v]) => k !== '' && v.optional !== true));
  mkdirSync(join(nm, 'better-sqlite3/build/Release'), { recursive: true });
  writeFileSync(join(nm, 'better-sqlite3/build/Release/better_sqlite3.node'), '');
  writeFileSync(join(nm, '.package-lock.json'), JSON.stringify({ packages }));
}

describe('build.sh installs exactly the lockfile', () => {
  it('a lockfile npm ci refuses is a clear failure: no npm install, package-lock.json unchanged', () => {
    const s = sandbox('fails-out-of-sync');
    const before = sha(join(s.dir, 'package-lock.json'));
    const r = s.run();
    expect(r.status).not.toBe(0);
    expect(s.npmCalls()).toEqual(['npm ci --no-audit --no-fund --loglevel=error']);
    expect(s.calls().some((c) => /^npm (install|i|add|update)\b/.test(c))).toBe(false);
    expect(r.stderr).toMatch(/npm ci failed/);
    expect(r.stderr).toMatch(/does not fall back to npm install/);
    expect(r.stderr).toMatch(/in sync/); // npm's own reason is shown
    expect(sha(join(s.dir, 'package-lock.json'))).toBe(before);
    expect(s.compiled()).toBe(false); // it stopped before compiling
    expect(existsSync(join(s.dir, 'xcron_server'))).toBe(false);
  });

  it('installs with npm ci when node_modules is missing, then compiles', () => {
    const s = sandbox('installs');
    const before = sha(join(s.dir, 'package-lock.json'));
    const r = s.run();
    expect(r.status, r.stderr).toBe(0);
    expect(s.npmCalls()).toEqual(['npm ci --no-audit --no-fund --loglevel=error']);
    expect(s.calls()[0]).toBe('npm ci --no-audit --no-fund --loglevel=error'); // installed before compiling
    expect(s.compiled()).toBe(true);
    expect(sha(join(s.dir, 'package-lock.json'))).toBe(before);
    expect(existsSync(join(s.dir, 'xcron_server'))).toBe(true);
  });

  it('skips the install when node_modules already holds what the lockfile lists', () => {
    const s = sandbox('fails-out-of-sync');
    installMatching(join(s.dir, 'node_modules'), join(s.dir, 'package-lock.json'));
    const r = s.run();
    expect(r.status, r.stderr).toBe(0);
    expect(s.npmCalls()).toEqual([]);
    expect(s.compiled()).toBe(true);
  });

  it('reinstalls when one installed package differs from the lockfile', () => {
    const s = sandbox('installs');
    const nm = join(s.dir, 'node_modules');
    installMatching(nm, join(s.dir, 'package-lock.json'));
    const rec = JSON.parse(readFileSync(join(nm, '.package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
    rec.packages['node_modules/hono'] = { ...rec.packages['node_modules/hono'], version: '0.0.1' };
    writeFileSync(join(nm, '.package-lock.json'), JSON.stringify(rec));
    const r = s.run();
    expect(r.status, r.stderr).toBe(0);
    expect(s.npmCalls()).toEqual(['npm ci --no-audit --no-fund --loglevel=error']);
  });

  it('never installs through a node_modules link: it stops and leaves the linked directory alone', () => {
    const s = sandbox('installs');
    const shared = join(s.dir, 'shared-node_modules');
    mkdirSync(shared);
    writeFileSync(join(shared, 'keep-me'), 'x');
    symlinkSync(shared, join(s.dir, 'node_modules'));
    const r = s.run();
    expect(r.status).not.toBe(0);
    expect(s.calls()).toEqual([]);
    expect(r.stderr).toMatch(/node_modules is a link to .*shared-node_modules/);
    expect(lstatSync(join(s.dir, 'node_modules')).isSymbolicLink()).toBe(true);
    expect(readdirSync(shared)).toEqual(['keep-me']);
  });
});
