#!/usr/bin/env bash
# Builds xcron on a fresh machine: installs the pinned dependencies from the lockfile, compiles
# TypeScript, and writes the ./xcron_server launcher. Then: ./xcron_server [--config PATH]
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1; then
  echo "build.sh: Node.js 20 or newer is required (node not found)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "build.sh: Node.js 20 or newer is required (found $(node --version))" >&2
  exit 1
fi

# Dependencies: exactly the lockfile, installed with npm ci and nothing else. build.sh never runs
# npm install, which would rewrite package-lock.json: a lockfile npm ci refuses is a clear failure.
# Skipped when node_modules already holds what the lockfile lists (npm's own record of the install,
# node_modules/.package-lock.json, is compared entry by entry with package-lock.json).
deps_match() {
  [ -e node_modules/better-sqlite3/build/Release/better_sqlite3.node ] || return 1
  node - <<'CHECK'
const fs = require('fs');
const read = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));
let lock, installed, pkg;
try {
  lock = read('package-lock.json');
  installed = read('node_modules/.package-lock.json').packages;
  pkg = read('package.json');
} catch {
  process.exit(1);
}
const root = lock.packages[''] ?? {};
for (const f of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) {
  if (JSON.stringify(pkg[f] ?? {}) !== JSON.stringify(root[f] ?? {})) process.exit(1); // package.json and lockfile differ: npm ci says so
}
for (const [k, v] of Object.entries(installed)) {
  const want = lock.packages[k];
  if (!want || want.version !== v.version || want.integrity !== v.integrity) process.exit(1);
}
for (const [k, v] of Object.entries(lock.packages)) if (k !== '' && !v.optional && !installed[k]) process.exit(1);
CHECK
}

if ! deps_match; then
  if [ -L node_modules ]; then
    echo "build.sh: node_modules is a link to $(readlink node_modules), which does not hold what package-lock.json lists." >&2
    echo "build.sh: npm ci would empty the linked directory (shared with other checkouts) and replace the link, so build.sh stops here." >&2
    echo "build.sh: install in the directory it links to, or remove the link (rm node_modules) and run build.sh again." >&2
    exit 1
  fi
  echo "build.sh: installing dependencies (npm ci; better-sqlite3 compiles from source, about a minute)"
  npm_log=$(mktemp)
  if ! npm ci --no-audit --no-fund --loglevel=error 2>"$npm_log"; then
    cat "$npm_log" >&2
    rm -f "$npm_log"
    echo "build.sh: npm ci failed, and build.sh does not fall back to npm install (it would rewrite package-lock.json)." >&2
    echo "build.sh: if npm ci says package.json and package-lock.json are not in sync, the lockfile in this checkout is out of date:" >&2
    echo "build.sh: update it deliberately (npm install --package-lock-only) and commit it, then run build.sh again." >&2
    exit 1
  fi
  rm -f "$npm_log"
  # better-sqlite3's native addon must exist; build it if the install scripts did not.
  if [ ! -e node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
    npm rebuild better-sqlite3 --loglevel=error
  fi
fi

echo "build.sh: compiling"
rm -rf dist
npx tsc -p tsconfig.json
# The dashboard's browser code: its own tsconfig (DOM lib), into dist/src/ui/client/.
npx tsc -p src/ui/client/tsconfig.json
# The client package (@xcron/client, publishable on its own): into clients/typescript/dist/.
rm -rf clients/typescript/dist
npx tsc -p clients/typescript/tsconfig.json
# The Lua scripts (src/redis/lua) are read at run time from next to the compiled loader.
mkdir -p dist/src/redis/lua
cp src/redis/lua/*.lua dist/src/redis/lua/

cat > xcron_server <<'LAUNCH'
#!/usr/bin/env bash
# xcron launcher (written by build.sh). Usage: ./xcron_server [--config PATH]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec node --enable-source-maps "$here/dist/src/main.js" "$@"
LAUNCH
chmod +x xcron_server
# The CLI (clients/typescript/src/cli.ts, the `xcron` bin of @xcron/client), runnable from the repo as
# ./xcron (npm marks the bin executable when the package is installed).
cat > xcron <<'LAUNCH'
#!/usr/bin/env bash
# xcron CLI launcher (written by build.sh). Usage: ./xcron --help
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec node "$here/clients/typescript/dist/cli.js" "$@"
LAUNCH
chmod +x xcron
echo "build.sh: done. Run ./xcron_server (config: ./xcron.toml)"
