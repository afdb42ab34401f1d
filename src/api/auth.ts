/**
 * API authentication: bearer tokens with a role.
 *
 *   admin — every endpoint.
 *   executor — only POST /xcron/registerExecutor and /xcron/unregisterExecutor (an executor
 *           registering itself and its heartbeat); admin tokens may call those too.
 *   read  — GET /xcron/queryTask, /xcron/listTasks, /xcron/taskRuns, /xcron/runs, /xcron/report,
 *           /xcron/runLog, /xcron/stats, /xcron/executors,
 *           /xcron/cluster, GET /metrics and the dashboard's schedule preview /ui/api/next-fires.
 *           Everything else (and any endpoint added later) needs admin. The dashboard's page and
 *           static assets (/ui, /ui/app.js, /ui/app.css) need no token: the login screen must load.
 *   none  — /healthz, /readyz, and the async-run worker endpoints /xcron/reportRun and
 *           /xcron/appendRunLog (they carry the run's own X-Xcron-Report-Token).
 *
 * Tokens are compared in constant time: the presented token and every configured token are hashed
 * (SHA-256) and the equal-length digests compared with crypto.timingSafeEqual, always against every
 * configured token (no early exit). With no tokens configured the API is open (main logs a warning).
 * /metrics needs a token unless `[auth] public_metrics`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { MiddlewareHandler } from 'hono';
import { Codes, ConfigError, XcronError } from '../errors.js';
import { fail } from './envelope.js';

export type Role = 'admin' | 'read' | 'executor';
export const ROLES: readonly Role[] = ['admin', 'read', 'executor'];

export interface TokenEntry {
  token: string;
  role: Role;
  /** Shown in access logs instead of the token (default "token-<n>"). */
  name?: string | undefined;
}

/** Who made a request. `id` is safe to log and to key rate limits on. */
export interface Principal {
  id: string;
  role: Role;
}

/** Paths a `read` token may call. Unlisted paths need `admin` (deny by default). */
export const READ_PATHS: ReadonlySet<string> = new Set([
  '/xcron/queryTask',
  '/xcron/listTasks',
  '/xcron/taskRuns',
  '/xcron/runs',
  '/xcron/report',
  '/xcron/runLog',
  '/xcron/stats',
  '/xcron/cluster',
  '/xcron/executors',
  '/metrics',
  '/ui/api/next-fires',
]);
/**
 * Paths no API token is needed for: the probes, and the worker endpoints of async runs, which
 * authenticate with the per-run report token the worker received with its callback.
 */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/xcron/reportRun', '/xcron/appendRunLog']);

/** Paths an `executor` token may call (and admin). */
export const EXECUTOR_PATHS: ReadonlySet<string> = new Set(['/xcron/registerExecutor', '/xcron/unregisterExecutor']);

export function requiredRole(path: string): Role {
  return EXECUTOR_PATHS.has(path) ? 'executor' : READ_PATHS.has(path) ? 'read' : 'admin';
}

/** Whether a token of role `have` may call an endpoint that needs `need`. */
export function roleAllows(have: Role, need: Role): boolean {
  return have === 'admin' || have === need;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const TOKEN_RE = /^[\x21-\x7e]{16,4096}$/;

export class TokenAuth {
  private readonly entries: { digest: Buffer; principal: Principal }[];

  constructor(tokens: readonly TokenEntry[]) {
    const seen = new Map<string, Role>();
    this.entries = tokens.map((t, i) => {
      const prev = seen.get(t.token);
      if (prev !== undefined && prev !== t.role) throw new ConfigError(`auth token #${i + 1} (${t.name ?? `token-${i + 1}`}) is configured twice with different roles`);
      seen.set(t.token, t.role);
      return { digest: digest(t.token), principal: { id: t.name ?? `token-${i + 1}`, role: t.role } };
    });
  }

  /** True when at least one token is configured (otherwise the API is open). */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  get count(): number {
    return this.entries.length;
  }

  /** The principal of an `Authorization: Bearer <token>` header value, or null. Constant time over the configured tokens. */
  identify(authorization: string | undefined): Principal | null {
    const token = bearerToken(authorization);
    if (token === null) return null;
    const d = digest(token);
    let found: Principal | null = null;
    for (const e of this.entries) {
      // No early exit: every configured token is compared.
      if (timingSafeEqual(d, e.digest) && found === null) found = e.principal;
    }
    return found;
  }
}

/** The token of a `Bearer` authorization header, or null when absent or malformed. */
export function bearerToken(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return m ? m[1]! : null;
}

export interface AuthOptions {
  auth: TokenAuth;
  /** Serve /metrics without a token even when auth is on. */
  publicMetrics?: boolean;
}

/**
 * The auth middleware (mounted on the API paths). Missing or unknown token: 401, code 1010, with
 * `WWW-Authenticate: Bearer`. A valid token without the needed role: 403, code 1010. Sets the
 * request's principal (`c.get('principal')`) for the access log and the rate limiter.
 */
export function authMiddleware({ auth, publicMetrics = false }: AuthOptions): MiddlewareHandler {
  return async (c, next) => {
    const path = c.req.path;
    if (!auth.enabled || PUBLIC_PATHS.has(path) || (publicMetrics && path === '/metrics')) {
      await next();
      return;
    }
    const header = c.req.header('authorization');
    const who = auth.identify(header);
    if (!who) {
      const why = header === undefined ? 'missing Authorization header: send "Authorization: Bearer <token>"' : bearerToken(header) === null ? 'malformed Authorization header: expected "Bearer <token>"' : 'invalid token';
      return fail(c, new XcronError(Codes.UNAUTHORIZED, 401, `unauthorized: ${why}`), { 'WWW-Authenticate': 'Bearer realm="xcron"' });
    }
    c.set('principal' as never, who as never);
    const need = requiredRole(path);
    if (!roleAllows(who.role, need)) {
      const needs = need === 'admin' ? "role 'admin'" : `role '${need}' or 'admin'`;
      return fail(c, new XcronError(Codes.UNAUTHORIZED, 403, `forbidden: token '${who.id}' has role '${who.role}'; ${c.req.method} ${path} needs ${needs}`));
    }
    await next();
  };
}

/** The principal set by authMiddleware, if any. */
export function principalOf(c: { get(key: never): unknown }): Principal | undefined {
  return c.get('principal' as never) as Principal | undefined;
}

/**
 * Reads a tokens file: either JSON (an array of {token, role, name?}) or lines `token role [name]`
 * with `#` comments. Errors name the line, never the token.
 */
export function readTokensFile(path: string): TokenEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`'auth.tokens_file': cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch {
      throw new ConfigError(`'auth.tokens_file' ${path}: not valid JSON`);
    }
    const list = Array.isArray(v) ? v : (v as { tokens?: unknown }).tokens;
    if (!Array.isArray(list)) throw new ConfigError(`'auth.tokens_file' ${path}: expected a JSON array of {"token", "role"} objects (or {"tokens": [...]})`);
    return list.map((x, i) => checkEntry(x, `${path} entry #${i + 1}`));
  }
  const out: TokenEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') return;
    const [token, role, name, ...extra] = line.split(/\s+/);
    if (extra.length > 0 || role === undefined) throw new ConfigError(`'auth.tokens_file' ${path} line ${i + 1}: expected "<token> <role> [name]"`);
    out.push(checkEntry({ token, role, ...(name !== undefined ? { name } : {}) }, `${path} line ${i + 1}`));
  });
  return out;
}

function checkEntry(x: unknown, where: string): TokenEntry {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new ConfigError(`'auth.tokens_file' ${where}: expected an object {"token", "role"}`);
  const o = x as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['token', 'role', 'name'].includes(k)) throw new ConfigError(`'auth.tokens_file' ${where}: unknown key '${k}'`);
  if (typeof o.token !== 'string' || !TOKEN_RE.test(o.token)) throw new ConfigError(`'auth.tokens_file' ${where}: a token is 16 to 4096 printable ASCII characters without spaces`);
  if (typeof o.role !== 'string' || !(ROLES as readonly string[]).includes(o.role)) throw new ConfigError(`'auth.tokens_file' ${where}: role must be "admin", "read" or "executor"`);
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 100)) throw new ConfigError(`'auth.tokens_file' ${where}: name must be a string of 1 to 100 characters`);
  return { token: o.token, role: o.role as Role, ...(typeof o.name === 'string' ? { name: o.name } : {}) };
}

/** Every configured token: `[auth] tokens` (file or XCRON_AUTH_TOKENS) plus the tokens file. */
export function resolveTokens(cfg: { tokens: readonly TokenEntry[]; tokens_file: string }): TokenEntry[] {
  return [...cfg.tokens, ...(cfg.tokens_file !== '' ? readTokensFile(cfg.tokens_file) : [])];
}
