/**
 * Warm connections: before a burst, a bounded number of connections to the origin of the fires
 * waiting for their due time (DeliveryJob.not_before) are opened ahead, through the same connector
 * as every other connection (so the destination policy checks them too), and handed to the
 * connection pool when it opens a new connection to that origin. The first callbacks at the due
 * time then do not wait for a TCP (or TLS) handshake.
 *
 * Bounded per origin by `max` (`[delivery] prewarm_connections`), by the fires due at the same
 * instant (within 10 ms) and by the per-origin cap, minus the pool's connections to that origin
 * already open: a receiver is never
 * asked to hold more than `max` idle connections it did not need before. A pre-opened connection
 * that is not used within `idleMs` is closed, and one the receiver closes is dropped.
 */
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import type { buildConnector } from 'undici';

type Connector = buildConnector.connector;

/** Fires due within the same this many ms count as due together (they need connections in parallel). */
const DUE_BUCKET_MS = 10;
/** How long the pool's count of open connections per origin is reused before it is read again. */
const CONNECTED_TTL_MS = 50;

export class WarmConnections {
  private readonly idle = new Map<string, Socket[]>();
  private readonly opening = new Map<string, number>();
  private readonly waiting = new Map<string, number>();
  private readonly connectedCache = new Map<string, { n: number; at: number }>();
  /** The listeners a parked connection is dropped by (removed when the pool takes it). */
  private readonly drops = new WeakMap<Socket, () => void>();
  private closed = false;

  constructor(
    private readonly o: {
      /** Pre-opened connections per origin at most (0: none). */
      max: number;
      /** The per-origin cap of the pool. */
      perOrigin: number;
      /** A pre-opened connection unused this long is closed (ms). */
      idleMs: number;
      /** Connections the pool has open to the origin right now. */
      connectedOf: (origin: string) => number;
    },
  ) {}

  /** Wraps the pool's connector: a new connection to an origin takes a pre-opened one first. */
  wrap(inner: Connector): Connector {
    this.inner = inner;
    return (opts, callback) => {
      const s = this.take(originOf(opts.protocol, opts.hostname, opts.port));
      // Answered on a later tick, as a real connect is: the pool's client resumes its queue in
      // the callback, which it does not do while still inside its own connect call.
      if (s) process.nextTick(() => callback(null, s));
      else inner(opts, callback);
    };
  }

  private inner: Connector | null = null;

  /**
   * A delivery to `origin` waits for its due time `at`: opens one more connection ahead if the
   * fires due with it (within DUE_BUCKET_MS) outnumber the connections open and being opened to
   * the origin (within the bounds). Fires spread over time need no more connections than they
   * have; a burst due at one instant needs them in parallel. Returns the call to make when the
   * wait ends.
   */
  expect(origin: string, at: number): () => void {
    const key = `${Math.floor(at / DUE_BUCKET_MS)} ${origin}`;
    const together = (this.waiting.get(key) ?? 0) + 1;
    this.waiting.set(key, together);
    if (this.o.max > 0 && !this.closed && this.inner) {
      const have = this.connected(origin) + (this.idle.get(origin)?.length ?? 0) + (this.opening.get(origin) ?? 0);
      if (have < Math.min(this.o.max, this.o.perOrigin, together)) this.open(origin);
    }
    return () => {
      const n = (this.waiting.get(key) ?? 1) - 1;
      if (n <= 0) this.waiting.delete(key);
      else this.waiting.set(key, n);
    };
  }

  /** Pre-opened connections not handed to the pool yet (all origins). */
  idleCount(): number {
    let n = 0;
    for (const l of this.idle.values()) n += l.length;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const l of this.idle.values()) for (const s of l) s.destroy();
    this.idle.clear();
  }

  private connected(origin: string): number {
    const now = Date.now();
    const c = this.connectedCache.get(origin);
    if (c && now - c.at < CONNECTED_TTL_MS) return c.n;
    const n = this.o.connectedOf(origin);
    this.connectedCache.set(origin, { n, at: now });
    return n;
  }

  private open(origin: string): void {
    let u: URL;
    try {
      u = new URL(origin);
    } catch {
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return;
    this.opening.set(origin, (this.opening.get(origin) ?? 0) + 1);
    const hostname = u.hostname;
    const servername = u.protocol === 'https:' && isIP(hostname.replace(/^\[|\]$/g, '')) === 0 ? hostname : null;
    this.inner!({ host: u.host, hostname, protocol: u.protocol, port: u.port, servername, localAddress: null, httpSocket: undefined } as buildConnector.Options, (err, socket) => {
      const n = (this.opening.get(origin) ?? 1) - 1;
      if (n <= 0) this.opening.delete(origin);
      else this.opening.set(origin, n);
      if (err || !socket) return; // a refused or failed connection: the pool connects (and fails) as usual
      if (this.closed) {
        socket.destroy();
        return;
      }
      this.park(origin, socket as Socket);
    });
  }

  private park(origin: string, s: Socket): void {
    const list = this.idle.get(origin) ?? [];
    list.push(s);
    this.idle.set(origin, list);
    const drop = (): void => {
      this.remove(origin, s);
      s.destroy();
    };
    s.on('error', drop);
    s.on('end', drop);
    s.on('close', drop);
    s.on('timeout', drop);
    s.setTimeout(this.o.idleMs);
    this.drops.set(s, drop);
  }

  private take(origin: string): Socket | null {
    const list = this.idle.get(origin);
    while (list && list.length > 0) {
      const s = list.shift()!;
      if (list.length === 0) this.idle.delete(origin);
      const drop = this.drops.get(s);
      this.drops.delete(s);
      if (drop) {
        s.off('error', drop);
        s.off('end', drop);
        s.off('close', drop);
        s.off('timeout', drop);
        s.setTimeout(0);
      }
      if (!s.destroyed && s.readyState === 'open') return s;
      s.destroy();
    }
    return null;
  }

  private remove(origin: string, s: Socket): void {
    const list = this.idle.get(origin);
    if (!list) return;
    const i = list.indexOf(s);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(origin);
  }
}

/** The origin (as `URL.origin` writes it) of a connection the pool asks for. */
function originOf(protocol: string, hostname: string, port: string): string {
  const defaultPort = protocol === 'https:' ? '443' : '80';
  return `${protocol}//${hostname}${port && port !== defaultPort ? `:${port}` : ''}`;
}
