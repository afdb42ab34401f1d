/**
 * clients/typescript is publishable on its own: its package.json names @xcron/client with no
 * runtime dependencies, every export of its map exists after `bash build.sh`, the compiled code
 * imports nothing but Node built-ins and its own files (the hono entry does not import hono), and
 * the three entry points resolve by package name from a project that installs it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, cleanupTempDirs, ensureBuilt, tempDir } from '../helpers/server.js';

const PKG_DIR = join(REPO_ROOT, 'clients', 'typescript');
const DIST = join(PKG_DIR, 'dist');

interface Manifest {
  name: string;
  type: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
  files: string[];
}

afterAll(() => cleanupTempDirs());

describe('the @xcron/client package', () => {
  ensureBuilt();
  const manifest = JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8')) as Manifest;

  it('is an ESM package named @xcron/client without runtime dependencies', () => {
    expect(manifest.name).toBe('@xcron/client');
    expect(manifest.type).toBe('module');
    expect(manifest.private).not.toBe(true);
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest.peerDependencies ?? {}).toEqual({});
    expect(manifest.files).toContain('dist');
  });

  it('every export target exists in dist after the build', () => {
    expect(existsSync(DIST), 'clients/typescript/dist is missing: run bash build.sh').toBe(true);
    expect(Object.keys(manifest.exports).sort()).toEqual(['.', './hono', './package.json', './receiver']);
    for (const [k, v] of Object.entries(manifest.exports)) {
      const targets = typeof v === 'string' ? [v] : [v.types, v.default];
      for (const t of targets) expect(existsSync(join(PKG_DIR, t)), `${k} -> ${t}`).toBe(true);
    }
  });

  it('the compiled code imports only node: built-ins and its own files', () => {
    const files = readdirSync(DIST).filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'));
    expect(files.length).toBeGreaterThanOrEqual(12);
    const all = new Set<string>();
    for (const f of files) {
      const src = readFileSync(join(DIST, f), 'utf8');
      const specs = [...src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]/g), ...src.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
      for (const s of specs) all.add(s);
      for (const s of specs) expect(s.startsWith('node:') || /^\.\/[\w-]+\.js$/.test(s), `${f} imports ${s}`).toBe(true);
    }
    for (const s of ['node:crypto', './receiver.js', './errors.js']) expect(all).toContain(s); // the scan sees imports at all
  });

  it('resolves by package name: ".", "./receiver" and "./hono" from a project that installs it', () => {
    const app = tempDir('xcron-client-consumer-');
    mkdirSync(join(app, 'node_modules', '@xcron'), { recursive: true });
    symlinkSync(PKG_DIR, join(app, 'node_modules', '@xcron', 'client'), 'dir');
    const script = `
      const main = await import('@xcron/client');
      const receiver = await import('@xcron/client/receiver');
      const hono = await import('@xcron/client/hono');
      const c = new main.XcronClient({ baseUrl: 'http://127.0.0.1:1' });
      const sig = receiver.signPayload(['s3cret-0123456789abcdef'], '{"a":1}');
      const ok = hono.verifySignature({ header: sig, body: '{"a":1}', secrets: ['s3cret-0123456789abcdef'] }).ok;
      console.log(JSON.stringify({ client: typeof c.createTask, code: main.ErrorCodes.TASK_NOT_FOUND, ok, mw: typeof hono.xcronHono({ secrets: ['x'] }), node: typeof main.xcronNodeHandler }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app }).toString().trim();
    expect(JSON.parse(out)).toEqual({ client: 'function', code: 1007, ok: true, mw: 'function', node: 'function' });
  });
});
