/**
 * The receiving side of xcron callbacks: signature verification (HMAC-SHA256 over "<t>.<raw body>",
 * constant-time compare, timestamp tolerance, several secrets), dedupe on the fire id (an in-memory
 * TTL set by default, or any {@link DedupeStore}), and a request handler for node:http.
 * The hono middleware is in `@xcron/client/hono`; both share {@link checkDelivery}.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The callback headers, lower-case. */
export const CallbackHeaders = {
  signature: 'x-xcron-signature',
  taskId: 'x-xcron-task-id',
  fireId: 'x-xcron-fire-id',
  runId: 'x-xcron-run-id',
  scheduledTime: 'x-xcron-scheduled-time',
  attempt: 'x-xcron-attempt',
  reportToken: 'x-xcron-report-token',
  shardIndex: 'x-xcron-shard-index',
  shardTotal: 'x-xcron-shard-total',
} as const;

// ---- signatures ------------------------------------------------------------------------------

export interface VerifyOptions {
  /** The `X-Xcron-Signature` header: `t=<unix s>,v1=<hex>[,v1=<hex>…]`. */
  header: string | null | undefined;
  /** The exact body bytes received (verify before any JSON parsing). */
  body: string | Uint8Array;
  /** Accepted secrets (any one matching a `v1` is enough): during a rotation, the old and the new. */
  secrets: readonly string[];
  /** Largest accepted distance between `t` and now, in seconds (default 300). */
  toleranceSec?: number;
  /** The current time in ms (default Date.now()). */
  now?: number;
}

export type VerifyFailure = 'missing' | 'malformed' | 'stale' | 'mismatch' | 'no_secrets';

export type VerifyResult = { ok: true; timestamp: number; secretIndex: number } | { ok: false; reason: VerifyFailure };

const HEX64 = /^[0-9a-f]{64}$/;

/** Checks an xcron signature. Returns an outcome, never throws on bad input. */
export function verifySignature(o: VerifyOptions): VerifyResult {
  if (o.secrets.length === 0) return { ok: false, reason: 'no_secrets' };
  const header = o.header;
  if (header === null || header === undefined || header.trim() === '') return { ok: false, reason: 'missing' };
  let t: number | null = null;
  const sigs: Buffer[] = [];
  for (const raw of header.split(',')) {
    const part = raw.trim();
    if (part.startsWith('t=')) {
      if (t !== null || !/^\d{1,12}$/.test(part.slice(2))) return { ok: false, reason: 'malformed' };
      t = Number(part.slice(2));
    } else if (part.startsWith('v1=')) {
      const hex = part.slice(3).toLowerCase();
      if (HEX64.test(hex)) sigs.push(Buffer.from(hex, 'hex'));
    }
    // other schemes (a future v2) are ignored
  }
  if (t === null || sigs.length === 0) return { ok: false, reason: 'malformed' };
  const now = o.now ?? Date.now();
  if (Math.abs(now / 1000 - t) > (o.toleranceSec ?? 300)) return { ok: false, reason: 'stale' };
  const body = typeof o.body === 'string' ? Buffer.from(o.body, 'utf8') : o.body;
  for (let i = 0; i < o.secrets.length; i++) {
    const want = createHmac('sha256', o.secrets[i]!).update(`${t}.`).update(body).digest();
    let hit = false;
    // every candidate is compared (no early exit on the first match), in constant time each
    for (const got of sigs) if (timingSafeEqual(got, want)) hit = true;
    if (hit) return { ok: true, timestamp: t, secretIndex: i };
  }
  return { ok: false, reason: 'mismatch' };
}

/** The header xcron sends for `body` at `unixSeconds` with these secrets (for tests and tools). */
export function signPayload(secrets: readonly string[], body: string | Uint8Array, unixSeconds = Math.floor(Date.now() / 1000)): string {
  const parts = [`t=${unixSeconds}`];
  for (const s of secrets) parts.push(`v1=${createHmac('sha256', s).update(`${unixSeconds}.`).update(body).digest('hex')}`);
  return parts.join(',');
}

// ---- dedupe ----------------------------------------------------------------------------------

/** What a claim found: go ahead, another request is processing the fire, or it was processed. */
export type ClaimResult = 'new' | 'processing' | 'done';

/**
 * Where processed fire ids are remembered. Implementations must make `claim` atomic (a Redis
 * `SET key processing NX PX ttl`, a unique insert, …) so two copies of one fire never both run.
 */
export interface DedupeStore {
  /** Claims a fire id for processing, for at most `ttlMs` (a crashed handler's claim lapses). */
  claim(fireId: string, ttlMs: number): ClaimResult | Promise<ClaimResult>;
  /** The handler answered 2xx: remember the fire as processed for `ttlMs`. */
  complete(fireId: string, ttlMs: number): void | Promise<void>;
  /** The handler failed: forget the claim, so xcron's retry of the fire is processed. */
  release(fireId: string): void | Promise<void>;
}

/** The default store: a Map with expiry times, swept as it is used. One process only. */
export class MemoryDedupeStore implements DedupeStore {
  private readonly entries = new Map<string, { state: 'processing' | 'done'; until: number }>();
  private lastSweep = 0;

  constructor(private readonly now: () => number = Date.now) {}

  claim(fireId: string, ttlMs: number): ClaimResult {
    const now = this.now();
    this.sweep(now);
    const e = this.entries.get(fireId);
    if (e && e.until > now) return e.state;
    this.entries.set(fireId, { state: 'processing', until: now + ttlMs });
    return 'new';
  }

  complete(fireId: string, ttlMs: number): void {
    this.entries.delete(fireId); // re-inserted last: the Map stays ordered by insertion
    this.entries.set(fireId, { state: 'done', until: this.now() + ttlMs });
  }

  release(fireId: string): void {
    this.entries.delete(fireId);
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k);
  }
}

// ---- one delivery, checked -------------------------------------------------------------------

/** A verified callback, as handlers see it. */
export interface XcronDelivery {
  taskId: string;
  /** `<task_id>:<scheduled ms>`: the same on every retry and redelivery of one fire. */
  fireId: string;
  runId: string;
  scheduledTime: number;
  attempt: number;
  /** For async jobs: the credential of reportRun / appendRunLog. */
  reportToken: string | null;
  shardIndex: number | null;
  shardTotal: number | null;
  /** The signature's timestamp (unix seconds). */
  signedAt: number;
  /** The raw body bytes. */
  rawBody: Buffer;
  /** The body parsed as JSON (undefined when empty). */
  body: unknown;
}

export interface ReceiverOptions {
  /** Accepted signing secrets (the `[callback] signing_secrets` of the server, or the one in use). */
  secrets: readonly string[];
  toleranceSec?: number;
  /** Dedupe on the fire id: true (default, in memory), false, or a store. */
  dedupe?: boolean | DedupeStore;
  /** How long a processed fire id is remembered (default 24 h). */
  dedupeTtlMs?: number;
  /** How long a claim lasts while the handler runs (default 10 min). */
  processingTtlMs?: number;
  /** Bodies larger than this are refused with 413 (default 1 MiB). */
  maxBodyBytes?: number;
  /** The current time in ms (default Date.now). */
  now?: () => number;
}

/** What the receiver answers a callback that is not handed to the handler. */
export interface Rejection {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

export type CheckResult = { ok: true; delivery: XcronDelivery } | { ok: false; reject: Rejection };

/** Options with defaults applied, plus the dedupe store they name (shared by every request). */
export interface ResolvedReceiver {
  secrets: readonly string[];
  toleranceSec: number;
  store: DedupeStore | null;
  dedupeTtlMs: number;
  processingTtlMs: number;
  maxBodyBytes: number;
  now: () => number;
}

export function resolveReceiver(o: ReceiverOptions): ResolvedReceiver {
  if (o.secrets.length === 0) throw new TypeError('xcron receiver: at least one signing secret is required');
  const now = o.now ?? Date.now;
  const store = o.dedupe === false ? null : o.dedupe === true || o.dedupe === undefined ? new MemoryDedupeStore(now) : o.dedupe;
  return {
    secrets: [...o.secrets],
    toleranceSec: o.toleranceSec ?? 300,
    store,
    dedupeTtlMs: o.dedupeTtlMs ?? 86_400_000,
    processingTtlMs: o.processingTtlMs ?? 600_000,
    maxBodyBytes: o.maxBodyBytes ?? 1_048_576,
    now,
  };
}

const reject = (status: number, error: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): CheckResult => ({
  ok: false,
  reject: { status, body: { ok: false, error, ...extra }, headers },
});

const intOr = (v: string | null | undefined, dflt: number | null): number | null => (v !== null && v !== undefined && /^\d{1,16}$/.test(v) ? Number(v) : dflt);

/**
 * Verifies one callback and claims its fire id. On `ok`, the caller runs the handler and then
 * calls {@link settle} with the status it answered.
 */
export async function checkDelivery(r: ResolvedReceiver, header: (name: string) => string | null | undefined, rawBody: Buffer): Promise<CheckResult> {
  const v = verifySignature({ header: header(CallbackHeaders.signature), body: rawBody, secrets: r.secrets, toleranceSec: r.toleranceSec, now: r.now() });
  if (!v.ok) return reject(401, `signature ${v.reason}`);
  const fireId = header(CallbackHeaders.fireId);
  const taskId = header(CallbackHeaders.taskId);
  if (!fireId || !taskId) return reject(400, 'X-Xcron-Fire-Id and X-Xcron-Task-Id are required');
  let body: unknown = undefined;
  if (rawBody.length > 0) {
    try {
      body = JSON.parse(rawBody.toString('utf8')) as unknown;
    } catch {
      return reject(400, 'body is not JSON');
    }
  }
  if (r.store) {
    const claim = await r.store.claim(fireId, r.processingTtlMs);
    // Processed before: acknowledge, so xcron records success and stops retrying.
    if (claim === 'done') return reject(200, 'duplicate', { ok: true, duplicate: true, fire_id: fireId });
    // Another copy is being processed right now: ask xcron to come back (it retries 503, honouring Retry-After).
    if (claim === 'processing') return reject(503, 'this fire is being processed', { fire_id: fireId }, { 'retry-after': '5' });
  }
  const delivery: XcronDelivery = {
    taskId,
    fireId,
    runId: header(CallbackHeaders.runId) ?? fireId,
    scheduledTime: intOr(header(CallbackHeaders.scheduledTime), 0)!,
    attempt: intOr(header(CallbackHeaders.attempt), 1)!,
    reportToken: header(CallbackHeaders.reportToken) ?? null,
    shardIndex: intOr(header(CallbackHeaders.shardIndex), null),
    shardTotal: intOr(header(CallbackHeaders.shardTotal), null),
    signedAt: v.timestamp,
    rawBody,
    body,
  };
  return { ok: true, delivery };
}

/** After the handler answered: a 2xx marks the fire processed, anything else releases the claim. */
export async function settle(r: ResolvedReceiver, fireId: string, status: number): Promise<void> {
  if (!r.store) return;
  if (status >= 200 && status < 300) await r.store.complete(fireId, r.dedupeTtlMs);
  else await r.store.release(fireId);
}

// ---- node:http -------------------------------------------------------------------------------

export type NodeHandler = (delivery: XcronDelivery, req: IncomingMessage, res: ServerResponse) => unknown;

function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? 'too_large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/**
 * A node:http request listener: verifies the signature, drops duplicate fire ids, and calls
 * `handler` with the verified delivery. When the handler returns without answering, the receiver
 * answers 200 `{"ok":true}`; when it throws, 500 (and xcron retries the fire, which the dedupe
 * store lets through). Use as `http.createServer(xcronNodeHandler({secrets}, handler))`.
 */
export function xcronNodeHandler(options: ReceiverOptions, handler: NodeHandler): (req: IncomingMessage, res: ServerResponse) => void {
  const r = resolveReceiver(options);
  return (req, res) => {
    void (async () => {
      try {
        const raw = await readBody(req, r.maxBodyBytes);
        if (raw === 'too_large') return send(res, 413, { ok: false, error: `body over ${r.maxBodyBytes} bytes` });
        const checked = await checkDelivery(r, (n) => headerOf(req, n), raw);
        if (!checked.ok) return send(res, checked.reject.status, checked.reject.body, checked.reject.headers);
        const { delivery } = checked;
        let status: number;
        try {
          await handler(delivery, req, res);
          if (!res.headersSent) send(res, 200, { ok: true });
          status = res.statusCode;
        } catch (e) {
          status = 500;
          send(res, 500, { ok: false, error: (e as Error).message ?? String(e) });
        }
        await settle(r, delivery.fireId, status);
      } catch (e) {
        send(res, 500, { ok: false, error: (e as Error).message ?? String(e) });
      }
    })();
  };
}

/** The same, as connect/express-style middleware: `req.xcron` holds the delivery for later handlers. */
export function xcronNodeMiddleware(options: ReceiverOptions): (req: IncomingMessage & { xcron?: XcronDelivery }, res: ServerResponse, next: (err?: unknown) => void) => void {
  const r = resolveReceiver(options);
  return (req, res, next) => {
    void (async () => {
      const raw = await readBody(req, r.maxBodyBytes);
      if (raw === 'too_large') return send(res, 413, { ok: false, error: `body over ${r.maxBodyBytes} bytes` });
      const checked = await checkDelivery(r, (n) => headerOf(req, n), raw);
      if (!checked.ok) return send(res, checked.reject.status, checked.reject.body, checked.reject.headers);
      req.xcron = checked.delivery;
      // 'finish' comes before the client can see the answer, so a retry never meets a stale claim
      const fireId = checked.delivery.fireId;
      res.once('finish', () => void settle(r, fireId, res.statusCode));
      res.once('close', () => {
        if (!res.writableFinished) void settle(r, fireId, 500); // the connection died before the answer
      });
      next();
    })().catch(next);
  };
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
