# syntax=docker/dockerfile:1
# xcron: multi-stage build on node:20-slim, runs as the non-root "node" user.
#   docker build -t xcron .
#   docker run -p 8000:8000 -v xcron-data:/data xcron

# ---- build: compile native better-sqlite3 and TypeScript ----
FROM node:20-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Like build.sh: npm ci can refuse the lockfile over other platforms' optional packages (pulled in
# by the bench-only bullmq); npm install then installs the same locked versions.
RUN npm ci --no-audit --no-fund || npm install --no-audit --no-fund
COPY tsconfig.json vitest.config.ts ./
COPY src ./src
COPY test ./test
COPY bench ./bench
COPY scripts ./scripts
RUN npx tsc -p tsconfig.json \
 && npx tsc -p src/ui/client/tsconfig.json \
 && if [ -d src/redis/lua ]; then mkdir -p dist/src/redis && cp -r src/redis/lua dist/src/redis/; fi \
 && npm prune --omit=dev

# ---- runtime: only production dependencies and the compiled code ----
FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    XCRON_DATA_DIR=/data \
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
