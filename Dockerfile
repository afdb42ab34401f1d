# syntax=docker/dockerfile:1
# xcron: multi-stage build on node:20-slim, runs as the non-root "node" user (uid 1000).
#   docker build -t xcron .
#   docker run -p 8000:8000 -v xcron-data:/data xcron
# Without a registry, build on local base images instead (see docs/cluster.md#docker):
#   deploy/build-local-base.sh localhost/xcron-base localhost/xcron-build-base
#   buildah bud --build-arg BASE_IMAGE=localhost/xcron-base \
#     --build-arg BUILD_IMAGE=localhost/xcron-build-base -t xcron .

# BASE_IMAGE: Node.js 20 on Debian, with a "node" user; the final image is built on it.
# BUILD_IMAGE: the build stage's image (default: the same); python3, make and g++ are installed
# with apt-get unless it already has them.
ARG BASE_IMAGE=node:20-slim
ARG BUILD_IMAGE=${BASE_IMAGE}

# ---- build: compile native better-sqlite3 and TypeScript ----
FROM ${BUILD_IMAGE} AS build
RUN if command -v python3 >/dev/null && command -v make >/dev/null && command -v g++ >/dev/null; then exit 0; fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Exactly the lockfile (dev dependencies included: TypeScript compiles here); pruned below.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json vitest.config.ts ./
COPY src ./src
COPY scripts ./scripts
RUN npx tsc -p tsconfig.json \
 && npx tsc -p src/ui/client/tsconfig.json \
 && mkdir -p dist/src/redis/lua && cp src/redis/lua/*.lua dist/src/redis/lua/ \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: only production dependencies and the compiled code ----
FROM ${BASE_IMAGE} AS runtime
# http_host is set explicitly: inside a container the service must listen on every interface.
# That is an address other machines can reach, which without API tokens needs allow_open: the port
# is reachable only where it is published. Set XCRON_AUTH_TOKENS before publishing it beyond this
# host (docs/production.md).
ENV NODE_ENV=production \
    XCRON_DATA_DIR=/data \
    XCRON_HTTP_HOST=0.0.0.0 \
    XCRON_ALLOW_OPEN=true \
    XCRON_HTTP_PORT=8000
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist/src ./dist/src
COPY --chown=node:node package.json xcron.toml ./
COPY --chown=node:node config ./config
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8000
# /healthz is unauthenticated and cheap; node is present in the image (no curl needed).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.XCRON_HTTP_PORT||8000)+'/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
# The process handles SIGTERM itself (drains deliveries); exec form keeps it PID 1's direct child.
STOPSIGNAL SIGTERM
# The same node flags as ./xcron_server (build.sh).
CMD ["node", "--enable-source-maps", "dist/src/main.js"]
