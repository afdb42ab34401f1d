#!/usr/bin/env node
// The import rules of src/, checked without dependencies (part of `npm test`, before the linter):
//
//   1. No import cycles between files (type-only imports count too).
//   2. No upward arrows: a file imports only from its own layer or the layers below it.
//
// Usage: node scripts/check-imports.mjs [root]   (root: the directory holding src/; default: cwd)
// Exits 1 and prints every violation when a rule is broken, 0 otherwise.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

// The layers, lowest first. A file belongs to the first entry whose path matches (a folder ends in
// '/'). Files of one layer may import each other; a file of a layer may import any lower layer.
// A file under src/ that matches no entry fails the check: give it a layer here.
export const LAYERS = [
  { name: 'leaf utilities', paths: ['src/clock/', 'src/config/', 'src/errors.ts', 'src/log.ts', 'src/worker-args.ts', 'src/fast-metrics.ts', 'src/shutdown.ts'] },
  { name: 'task', paths: ['src/task/'] },
  { name: 'redis', paths: ['src/redis/'] },
  { name: 'store', paths: ['src/store/'] },
  { name: 'cluster', paths: ['src/cluster/'] },
  { name: 'delivery', paths: ['src/delivery/'] },
  { name: 'scheduler', paths: ['src/scheduler/'] },
  { name: 'service', paths: ['src/service/'] },
  { name: 'api, ui', paths: ['src/api/', 'src/ui/', 'src/transfer.ts', 'src/metrics.ts'] },
  { name: 'main', paths: ['src/main.ts', 'src/xcron.ts', 'src/xcron-node.ts', 'src/startup-errors.ts'] },
];

// Upward arrows tolerated for now, each as 'from -> to' with the reason next to it. Empty: keep
// it that way (an entry is a debt to pay back, not a way around the rule).
export const TEMPORARY_ALLOWED_UPWARD = new Set([]);

const SOURCE = /\.(ts|tsx|mts)$/;

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Comments out (block comments, and line comments at the start of a line), keeping line numbers. */
function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/^\s*\/\/.*$/gm, '');
}

/** The module specifiers a file imports or re-exports, with their line numbers. */
export function specifiersOf(text) {
  const src = stripComments(text);
  const out = [];
  const patterns = [
    /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?)\s+from\s+['"]([^'"]+)['"]/g, // import x from '…', export { x } from '…'
    /(?:^|[\n;])\s*import\s+['"]([^'"]+)['"]/g, // import '…' (side effects)
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // import('…')
  ];
  for (const re of patterns) {
    for (const m of src.matchAll(re)) {
      const line = src.slice(0, m.index + m[0].length).split('\n').length;
      out.push({ spec: m[1], line });
    }
  }
  return out;
}

function layerOf(file) {
  for (let i = 0; i < LAYERS.length; i++) {
    if (LAYERS[i].paths.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p))) return i;
  }
  return -1;
}

/** Resolves a relative specifier of `from` ('src/a/b.ts') to a file of `files`, or null. */
function resolveSpec(from, spec, files) {
  if (!spec.startsWith('./') && !spec.startsWith('../')) return null; // a package or node: builtin
  const base = posix.normalize(posix.join(posix.dirname(from), spec));
  const stem = base.replace(/\.(m?js|jsx)$/, '');
  for (const cand of [`${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, base, `${base}/index.ts`]) if (files.has(cand)) return cand;
  return null;
}

/** Every cycle's files (strongly connected components of more than one file, or a self-import). */
function cyclesOf(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? new Set()).has(v)) out.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** One path around a cycle, for the message: from the first file back to it. */
function pathAround(graph, comp) {
  const inComp = new Set(comp);
  const start = comp[0];
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!inComp.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== null && u !== start; u = prev.get(u)) path.splice(1, 0, u);
        path.push(start);
        return path;
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...comp, start];
}

/** Checks the tree under `root`; returns the violations as messages (empty: all good). */
export function checkImports(root) {
  const srcDir = join(root, 'src');
  const files = new Set(walk(srcDir, []).map((p) => relative(root, p).split(sep).join('/')));
  const errors = [];
  const graph = new Map();
  for (const file of [...files].sort()) {
    const from = layerOf(file);
    if (from < 0) errors.push(`${file}: belongs to no layer; add it to LAYERS in scripts/check-imports.mjs`);
    const edges = new Set();
    graph.set(file, edges);
    for (const { spec, line } of specifiersOf(readFileSync(join(root, file), 'utf8'))) {
      const target = resolveSpec(file, spec, files);
      if (target === null) {
        if (spec.startsWith('.')) errors.push(`${file}:${line}: imports ${spec}, which is no file under src/`);
        continue;
      }
      edges.add(target);
      const to = layerOf(target);
      if (from >= 0 && to > from && !TEMPORARY_ALLOWED_UPWARD.has(`${file} -> ${target}`)) {
        errors.push(`${file}:${line}: upward import of ${target}: layer '${LAYERS[from].name}' must not import from layer '${LAYERS[to].name}' (layers, lowest first: ${LAYERS.map((l) => l.name).join(' -> ')})`);
      }
    }
  }
  for (const comp of cyclesOf(graph)) errors.push(`import cycle: ${pathAround(graph, comp).join(' -> ')}${comp.length > 2 ? ` (files in the cycle: ${comp.join(', ')})` : ''}`);
  return errors;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = process.argv[2] ?? process.cwd();
  const errors = checkImports(root);
  if (errors.length > 0) {
    process.stderr.write(`check-imports: ${errors.length} problem(s) in ${join(root, 'src')}:\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write('check-imports: no import cycles, no upward imports\n');
}
