/**
 * The dashboard's browser code, served as /ui/app.js. Its source is the typed modules in
 * src/ui/client/ (DOM lib, own tsconfig, linted like the rest); the build compiles them to CommonJS
 * in dist/src/ui/client/, and this module wraps them into one classic script: each module becomes a
 * function in a table, and a small `require` links them by name. No inline script, no external
 * asset, nothing fetched but same-origin JSON (the dashboard's CSP allows only that).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ClientModule {
  /** The file name without `.js` (a require of './<name>.js' loads it). */
  name: string;
  /** tsc's CommonJS output. */
  code: string;
}

const NAME = /^[a-z][a-z0-9-]*$/;
const REQUIRE = /\brequire\(("[^"]*"|'[^']*')\)/g;

/**
 * One classic script that runs `entry` and, through it, the modules it requires. Throws when a
 * module requires anything but a sibling module (the browser has no packages), so a bad import
 * fails at start, not in the browser.
 */
export function bundleClient(modules: readonly ClientModule[], entry: string): string {
  const names = new Set(modules.map((m) => m.name));
  if (!names.has(entry)) throw new Error(`dashboard client: no entry module '${entry}' among ${[...names].join(', ') || 'none'}`);
  const defs: string[] = [];
  for (const m of modules) {
    if (!NAME.test(m.name)) throw new Error(`dashboard client: bad module name '${m.name}'`);
    for (const [, quoted] of m.code.matchAll(REQUIRE)) {
      const spec = quoted!.slice(1, -1);
      const target = /^\.\/([a-z][a-z0-9-]*)\.js$/.exec(spec)?.[1];
      if (target === undefined || !names.has(target)) throw new Error(`dashboard client: module '${m.name}' requires '${spec}', which is not a module of the client`);
    }
    const code = m.code.replace(/^\/\/# sourceMappingURL=.*$/m, '').trimEnd();
    defs.push(`${JSON.stringify(m.name)}: function (require, exports) {\n${code}\n}`);
  }
  return `(function () {
'use strict';
var defs = {
${defs.join(',\n')}
};
var cache = {};
function load(name) {
  var hit = cache[name];
  if (hit) return hit.exports;
  var m = (cache[name] = { exports: {} });
  defs[name](function (spec) { return load(spec.slice(2, -3)); }, m.exports);
  return m.exports;
}
load(${JSON.stringify(entry)});
})();
`;
}

/** The compiled modules of a directory, in name order. */
export function readClientModules(dir: string): ClientModule[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .sort()
    .map((f) => ({ name: f.slice(0, -3), code: readFileSync(`${dir}/${f}`, 'utf8') }));
}

/**
 * Next to this file once compiled (dist/src/ui/client/); when this file runs from source (tests),
 * the build's output in the repository's dist/.
 */
export function compiledClientDir(): string {
  const candidates = [new URL('./client/', import.meta.url), new URL('../../dist/src/ui/client/', import.meta.url)].map((u) => fileURLToPath(u));
  const found = candidates.find((d) => existsSync(`${d}/main.js`));
  if (found === undefined) throw new Error(`the dashboard client is not compiled (no main.js in ${candidates.join(' or ')}): run bash build.sh`);
  return found;
}

export const CLIENT_JS = bundleClient(readClientModules(compiledClientDir()), 'main');
