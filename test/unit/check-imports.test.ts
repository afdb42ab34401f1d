/**
 * scripts/check-imports.mjs, the import rules `npm test` checks before the linter: no import
 * cycles, no import from a higher layer, every file of src/ in a layer. Run as in CI (node, the
 * script, a root) on this repository and on small synthetic trees that break one rule each.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = join(ROOT, 'scripts/check-imports.mjs');

function check(root: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A tree with these files (path under the root -> text). */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'xcron-imports-'));
  dirs.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** A small tree that follows the rules: each layer imports only downward. */
const GOOD: Record<string, string> = {
  'src/errors.ts': 'export class XError extends Error {}\n',
  'src/task/index.ts': "import { XError } from '../errors.js';\nexport const t = XError;\n",
  'src/store/types.ts': "import type { t } from '../task/index.js';\nexport type S = typeof t;\n",
  'src/store/sqlite.ts': "import type { S } from './types.js';\nimport Database from 'better-sqlite3';\nexport const s: S | null = null; void Database;\n",
  'src/service/index.ts': "import {\n  s,\n} from '../store/sqlite.js';\nexport { s };\n",
  'src/api/app.ts': "export { s } from '../service/index.js';\n// import { main } from '../main.js'; (a comment is not an import)\n",
  'src/main.ts': "import './api/app.js';\nconst lazy = () => import('./service/index.js');\nvoid lazy;\n",
};

describe('check-imports', () => {
  it('passes on this repository', () => {
    const r = check(ROOT);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toContain('no import cycles, no upward imports');
  });

  it('passes on a small tree that follows the rules (multi-line, type-only, re-export, side-effect and dynamic imports)', () => {
    expect(check(tree(GOOD))).toMatchObject({ code: 0 });
  });

  it('fails on an import cycle, naming the files around it', () => {
    const r = check(
      tree({
        ...GOOD,
        'src/store/a.ts': "import { b } from './b.js';\nexport const a = 1 + b;\n",
        'src/store/b.ts': "import type { c } from './c.js';\nexport const b = 2;\nexport type B = c;\n",
        'src/store/c.ts': "import { a } from './a.js';\nexport type c = typeof a;\n",
      }),
    );
    expect(r.code).toBe(1);
    expect(r.out).toContain('import cycle: src/store/a.ts -> src/store/b.ts -> src/store/c.ts -> src/store/a.ts');
  });

  it('fails on an upward import, naming the file, the line and both layers', () => {
    const r = check(tree({ ...GOOD, 'src/store/sqlite.ts': `${GOOD['src/store/sqlite.ts']}import { s as svc } from '../service/index.js';\nvoid svc;\n` }));
    expect(r.code).toBe(1);
    expect(r.out).toContain("src/store/sqlite.ts:4: upward import of src/service/index.ts: layer 'store' must not import from layer 'service'");
    expect(r.out).not.toContain('import cycle: src/store/sqlite.ts');
    // an upward arrow that closes a loop is reported as both
    const loop = check(tree({ ...GOOD, 'src/task/index.ts': `${GOOD['src/task/index.ts']}export { s } from '../store/sqlite.js';\n` }));
    expect(loop.code).toBe(1);
    expect(loop.out).toContain("src/task/index.ts:3: upward import of src/store/sqlite.ts: layer 'task' must not import from layer 'store'");
    expect(loop.out).toContain('import cycle:');
  });

  it('fails on a file that belongs to no layer, and on an import of a file that does not exist', () => {
    const r = check(tree({ ...GOOD, 'src/extra.ts': "import { s } from './service/index.js';\nimport { gone } from './task/gone.js';\nexport const x = [s, gone];\n" }));
    expect(r.code).toBe(1);
    expect(r.out).toContain('src/extra.ts: belongs to no layer');
    expect(r.out).toContain('src/extra.ts:2: imports ./task/gone.js, which is no file under src/');
  });
});
