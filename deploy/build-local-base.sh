#!/usr/bin/env bash
# Builds two local base images for the Dockerfile when no container registry is reachable (so
# node:20-slim cannot be pulled): a minimal Debian (mmdebstrap) plus this machine's Node.js 20 and npm.
#
#   deploy/build-local-base.sh RUNTIME_TAG BUILD_TAG
#   buildah bud --build-arg BASE_IMAGE=RUNTIME_TAG --build-arg BUILD_IMAGE=BUILD_TAG -t xcron .
#
# RUNTIME_TAG: Debian minbase + ca-certificates + node + npm + the user "node" (uid 1000), like
#              node:20-slim. The final image is built on it.
# BUILD_TAG:   the same plus python3, make, g++ and Node's C headers (better-sqlite3 compiles from
#              source), and this machine's npm settings and CA bundle, so that `npm ci` inside the
#              build reaches the same npm registry as this machine. Only the build stage uses it.
# Needs root, mmdebstrap, buildah, and an apt mirror (the one this machine uses).
# BUILDAH (default "buildah") may carry global options, e.g. "buildah --root DIR --storage-driver vfs".
# SUITE defaults to this machine's Debian codename.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 RUNTIME_TAG BUILD_TAG" >&2
  exit 2
fi
runtime_tag=$1
build_tag=$2
read -r -a buildah <<<"${BUILDAH:-buildah}"
suite=${SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}

node_bin=$(readlink -f "$(command -v node)")
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "$0: Node.js 20 or newer is required on this machine (found $("$node_bin" --version))" >&2
  exit 1
fi
npm_dir=$(readlink -f "$(dirname "$node_bin")/../lib/node_modules/npm")
[ -f "$npm_dir/bin/npm-cli.js" ] || npm_dir=$(npm root -g)/npm
if [ ! -f "$npm_dir/bin/npm-cli.js" ]; then
  echo "$0: npm not found next to $node_bin" >&2
  exit 1
fi
node_include=$(readlink -f "$(dirname "$node_bin")/../include/node")

work=$(mktemp -d /var/tmp/xcron-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Shell hook run by mmdebstrap with the finished root filesystem as $1 (before it is packed).
cat >"$work/hook.sh" <<HOOK
#!/usr/bin/env bash
set -euo pipefail
root=\$1
install -m 0755 "$node_bin" "\$root/usr/bin/node"
mkdir -p "\$root/usr/lib/node_modules"
cp -a "$npm_dir" "\$root/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "\$root/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "\$root/usr/bin/npx"
chroot "\$root" groupadd --gid 1000 node
chroot "\$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
if [ "\${XCRON_BASE_KIND}" = build ]; then
  if [ -d "$node_include" ]; then
    mkdir -p "\$root/usr/include"
    cp -a "$node_include" "\$root/usr/include/node"
  fi
  # npm's global config for a node in /usr/bin is /usr/etc/npmrc: compile against the copied
  # headers, and trust the same CAs as this machine (its npm registry may use a local CA).
  mkdir -p "\$root/usr/etc"
  { echo "nodedir=/usr"; echo "cafile=/etc/ssl/certs/ca-certificates.crt"; } >"\$root/usr/etc/npmrc"
  registry=\$(npm config get registry 2>/dev/null || true)
  [ -n "\$registry" ] && echo "registry=\$registry" >>"\$root/usr/etc/npmrc"
  cp /etc/ssl/certs/ca-certificates.crt "\$root/etc/ssl/certs/ca-certificates.crt"
fi
# The node binary must run in the new root (its shared libraries come from Debian).
chroot "\$root" /usr/bin/node -e 'process.exit(0)'
chroot "\$root" /usr/bin/npm --version >/dev/null
HOOK
chmod +x "$work/hook.sh"

make_base() { # kind tag packages
  local kind=$1 tag=$2 packages=$3
  echo "build-local-base: $kind base ($packages) with mmdebstrap"
  XCRON_BASE_KIND=$kind mmdebstrap --quiet --variant=minbase --include="$packages" \
    --dpkgopt=force-unsafe-io \
    --customize-hook="$work/hook.sh \"\$1\"" \
    "$suite" "$work/$kind.tar"
  local ctr
  ctr=$("${buildah[@]}" from scratch)
  "${buildah[@]}" add "$ctr" "$work/$kind.tar" / >/dev/null
  "${buildah[@]}" config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$("$node_bin" -p 'process.versions.node')" \
    --workingdir / --cmd node \
    --label org.opencontainers.image.description="local xcron $kind base: Debian $suite minbase + Node.js $node_major" \
    "$ctr"
  "${buildah[@]}" commit --rm --quiet "$ctr" "$tag" >/dev/null
  rm -f "$work/$kind.tar"
  echo "build-local-base: $tag done"
}

make_base runtime "$runtime_tag" ca-certificates
make_base build "$build_tag" ca-certificates,python3,make,g++
