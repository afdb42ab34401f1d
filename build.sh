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

# Dependencies: exactly the lockfile. Skip when node_modules already matches it.
stamp=node_modules/.xcron-lock-stamp
want=$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -e node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  echo "build.sh: installing dependencies (npm ci; better-sqlite3 compiles from source, about a minute)"
  # npm ci refuses a lockfile that lacks the optional platform packages of other systems (the
  # registry reachable here does not serve msgpackr-extract's darwin/win builds, pulled in by the
  # bench-only bullmq); npm install then installs the same locked versions.
  if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/xcron-npm-ci.log; then
    if grep -q "in sync" /tmp/xcron-npm-ci.log; then
      echo "build.sh: npm ci refused the lockfile (optional packages of other platforms); installing with npm install"
      npm install --no-audit --no-fund --loglevel=error
    else
      cat /tmp/xcron-npm-ci.log >&2
      exit 1
    fi
  fi
  # better-sqlite3's native addon must exist; build it if the install scripts did not.
  if [ ! -e node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
    npm rebuild better-sqlite3 --loglevel=error
  fi
  echo "$want" > "$stamp"
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
echo "build.sh: done. Run ./xcron_server (config: ./xcron.toml)"
