/**
 * A real HTTP callback receiver on a free port. It records every request (method, url, headers, raw
 * body, arrival time) and answers per path: a status code, a delay, a hold until the test opens a
 * gate, or a hang (no answer at all). Tests wait on arrivals with `waitFor`, never on sleeps.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  /** 1-based arrival order over the whole receiver. */
  seq: number;
  method: string;
  /** Path and query, as sent. */
  url: string;
  /** Path without the query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body as UTF-8 text. */
  body: string;
  /** Date.now() when the whole body had arrived. */
  arrivedAt: number;
}

export interface Reply {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** Default `{"ok":true}`. */
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Answer only when this promise settles. */
  hold?: Promise<unknown>;
  /** Never answer (the connection stays open until the client gives up or the receiver closes). */
  hang?: boolean;
}

/** A fixed reply, or a function of the request and how many requests this path has seen (1-based). */
export type Responder = Reply | ((req: ReceivedRequest, nthOnPath: number) => Reply);

/** A gate a held reply waits on. */
export interface Gate {
  promise: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export const header = (r: ReceivedRequest, name: string): string | undefined => {
  const v = r.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
};

export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly events = new EventEmitter();
  private readonly responders = new Map<string, Responder>();
  private readonly perPath = new Map<string, number>();
  private fallback: Responder = { status: 200 };
  /** TCP connections accepted so far (a request-less connection opened ahead counts too). */
  connectionsAccepted = 0;
  private readonly pending = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    this.events.setMaxListeners(1000);
  }

  /** Starts a receiver on 127.0.0.1 and a port the OS picks. */
  static async start(): Promise<Receiver> {
    const server = createServer();
    // Longer than the client's keep-alive so a pooled connection is never closed under a request.
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const r = new Receiver(server, port);
    server.on('connection', () => r.connectionsAccepted++);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = req.url ?? '/';
        const rec: ReceivedRequest = {
          seq: r.requests.length + 1,
          method: req.method ?? '',
          url,
          path: url.split('?')[0] ?? url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          arrivedAt: Date.now(),
        };
        r.requests.push(rec);
        const nth = (r.perPath.get(rec.path) ?? 0) + 1;
        r.perPath.set(rec.path, nth);
        const responder = r.responders.get(rec.path) ?? r.fallback;
        const reply = typeof responder === 'function' ? responder(rec, nth) : responder;
        r.events.emit('request', rec);
        r.answer(res, reply);
      });
    });
    return r;
  }

  /** Absolute URL of a path on this receiver. */
  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path.startsWith('/') ? path : `/${path}`}`;
  }

  /** Sets how a path is answered (replaces any earlier responder of that path). */
  on(path: string, responder: Responder): void {
    this.responders.set(path, responder);
  }

  /** How paths without a responder are answered (default 200). */
  otherwise(responder: Responder): void {
    this.fallback = responder;
  }

  /** Requests to a path, in arrival order. */
  to(path: string): ReceivedRequest[] {
    return this.requests.filter((q) => q.path === path);
  }

  /** Requests carrying a task id (X-Xcron-Task-Id), in arrival order. */
  forTask(taskId: string): ReceivedRequest[] {
    return this.requests.filter((q) => header(q, 'x-xcron-task-id') === taskId);
  }

  /**
   * Resolves with the recorded requests as soon as `pred` holds over them (checked now and after every
   * arrival); rejects after `timeoutMs` with `what` and what had arrived.
   */
  waitFor(pred: (reqs: readonly ReceivedRequest[]) => boolean, timeoutMs: number, what = 'a condition on received requests'): Promise<ReceivedRequest[]> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): boolean => {
        let ok: boolean;
        try {
          ok = pred(this.requests);
        } catch (e) {
          cleanup();
          reject(e as Error);
          return true;
        }
        if (!ok) return false;
        cleanup();
        resolve([...this.requests]);
        return true;
      };
      const onRequest = (): void => {
        check();
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.events.off('request', onRequest);
      };
      if (check()) return;
      this.events.on('request', onRequest);
      timer = setTimeout(() => {
        cleanup();
        const seen = this.requests.slice(-10).map((q) => `${q.method} ${q.url} fire=${header(q, 'x-xcron-fire-id') ?? '-'} attempt=${header(q, 'x-xcron-attempt') ?? '-'}`);
        reject(new Error(`receiver: timed out after ${timeoutMs} ms waiting for ${what}; ${this.requests.length} requests received, last: ${JSON.stringify(seen)}`));
      }, timeoutMs);
    });
  }

  /** Resolves with the first request (already received or still to come) matching `pred`. */
  async waitForRequest(pred: (req: ReceivedRequest) => boolean, timeoutMs: number, what = 'a matching request'): Promise<ReceivedRequest> {
    const reqs = await this.waitFor((all) => all.some(pred), timeoutMs, what);
    return reqs.find(pred)!;
  }

  /** Closes the server and every open connection (hanging and held replies included). */
  async close(): Promise<void> {
    this.events.removeAllListeners();
    for (const res of this.pending) res.destroy();
    this.pending.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private answer(res: ServerResponse, reply: Reply): void {
    if (reply.hang) {
      this.pending.add(res);
      res.on('close', () => this.pending.delete(res));
      return;
    }
    const send = (): void => {
      this.pending.delete(res);
      if (res.destroyed || res.writableEnded) return;
      const body = reply.body ?? '{"ok":true}';
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...reply.headers });
      res.end(body);
    };
    if (reply.hold === undefined && (reply.delayMs ?? 0) <= 0) {
      send();
      return;
    }
    this.pending.add(res);
    res.on('close', () => this.pending.delete(res));
    const afterHold = reply.hold ?? Promise.resolve();
    afterHold.then(
      () => {
        if ((reply.delayMs ?? 0) > 0) setTimeout(send, reply.delayMs);
        else send();
      },
      () => res.destroy(),
    );
  }
}
