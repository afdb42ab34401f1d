/**
 * The hono middleware of the receiving side: `app.post('/hook', xcronHono({ secrets }), handler)`.
 * It verifies the signature, drops duplicate fire ids, and hands the verified delivery to the
 * handlers after it (`xcronDelivery(c)`). It types the context structurally, so this package does
 * not depend on hono.
 */
import { checkDelivery, resolveReceiver, settle, type ReceiverOptions, type XcronDelivery } from './receiver.js';

export type { ReceiverOptions, XcronDelivery, DedupeStore, ClaimResult } from './receiver.js';
export { MemoryDedupeStore, verifySignature } from './receiver.js';

/** The part of hono's Context the middleware uses. */
export interface HonoLikeContext {
  req: {
    raw: Request;
    /** hono caches the body, so handlers can still call `c.req.json()` afterwards. */
    arrayBuffer(): Promise<ArrayBuffer>;
  };
  res: Response;
}

const deliveries = new WeakMap<Request, XcronDelivery>();

/** The verified delivery of this request (set by {@link xcronHono}). */
export function xcronDelivery(c: { req: { raw: Request } }): XcronDelivery {
  const d = deliveries.get(c.req.raw);
  if (!d) throw new Error('xcronDelivery(c): the xcronHono middleware did not run for this request');
  return d;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/**
 * Middleware: 401 on a bad signature, 200 `{"ok":true,"duplicate":true}` for a fire already
 * processed, 503 + Retry-After while another copy of the fire is processed. A handler that answers
 * 2xx marks the fire processed; any other answer (or a thrown error) lets xcron's retry through.
 */
export function xcronHono(options: ReceiverOptions): (c: HonoLikeContext, next: () => Promise<void>) => Promise<Response | void> {
  const r = resolveReceiver(options);
  return async (c, next) => {
    const declared = c.req.raw.headers.get('content-length');
    if (declared !== null && Number(declared) > r.maxBodyBytes) return json(413, { ok: false, error: `body over ${r.maxBodyBytes} bytes` });
    const raw = Buffer.from(await c.req.arrayBuffer());
    if (raw.length > r.maxBodyBytes) return json(413, { ok: false, error: `body over ${r.maxBodyBytes} bytes` });
    const checked = await checkDelivery(r, (n) => c.req.raw.headers.get(n), raw);
    if (!checked.ok) return json(checked.reject.status, checked.reject.body, checked.reject.headers);
    deliveries.set(c.req.raw, checked.delivery);
    let status = 500;
    try {
      await next();
      status = c.res.status;
    } finally {
      await settle(r, checked.delivery.fireId, status);
    }
  };
}
