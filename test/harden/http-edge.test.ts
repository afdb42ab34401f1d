/**
 * Issue 23 items 4 and 11, against the real built server over real sockets:
 *  - a client that sends half a body and then closes the connection is not a server error: no
 *    error-level log line, no 500 in the metrics (its request is logged and counted as a 400);
 *  - a request line or header block over Node's parser limit (a 100 KB query string) gets the
 *    JSON envelope with a specific code and a message, not a bare 431.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XcronServer, cleanupTempDirs } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

let server: XcronServer;

beforeAll(async () => {
  server = await XcronServer.start({ env: { XCRON_LOG_LEVEL: 'debug' } });
});
afterAll(async () => {
  await server?.stop();
  cleanupTempDirs();
});

interface Line {
  level: number;
  msg: string;
  path?: string;
  status?: number;
}
const lines = (): Line[] => server.lines.flatMap((l) => {
  try {
    return [JSON.parse(l) as Line];
  } catch {
    return [];
  }
});

/** Writes `head` and `partial` on a raw socket, then destroys it once the bytes are out. */
function sendPartial(head: string, partial: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(server.opts.port, '127.0.0.1', () => {
      s.write(head + partial, () => {
        // let the server read the partial body before the connection goes away
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 100);
      });
    });
    s.on('error', reject);
  });
}

/** A raw request; the whole answer (status line, headers, body) as text. */
function rawRequest(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(server.opts.port, '127.0.0.1', () => s.end(text));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('close', () => resolve(got));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? resolve(got) : reject(e)));
  });
}

const status500 = async (): Promise<number> => {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('xcron_http_requests_total{') && l.includes('status="500"')).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
};

describe('a request body cut off by the client', () => {
  it('is logged below error level and not counted as a 500 (Content-Length and chunked bodies)', async () => {
    const before500 = await status500();
    const seen = (): number => lines().filter((l) => l.msg === 'request' && l.path === '/xcron/createTask').length;
    const n0 = seen();
    await sendPartial('POST /xcron/createTask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n', '{"type":1,"format":"*/5 * * * *","cal');
    await sendPartial('POST /xcron/createTask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n', '10\r\n{"type":1,"forma\r\n');
    await sendPartial('POST /xcron/updateTask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n', '{"task_id":');
    // the server notices each abort and finishes the request (its access-log line appears)
    await waitUntil(seen, (n) => n >= n0 + 2, 20_000, 'access-log lines of the two aborted createTask requests');
    await waitUntil(() => lines().some((l) => l.msg === 'request' && l.path === '/xcron/updateTask'), (v) => v, 20_000, 'access-log line of the aborted updateTask');
    const errors = lines().filter((l) => l.level >= 50);
    expect(errors, JSON.stringify(errors)).toEqual([]);
    expect(lines().some((l) => /unhandled error/.test(l.msg))).toBe(false);
    const logged = lines().filter((l) => l.msg === 'request' && (l.path === '/xcron/createTask' || l.path === '/xcron/updateTask'));
    expect(logged.map((l) => l.status)).toEqual(logged.map(() => 400));
    expect(await status500()).toBe(before500);
    // and the server is fine
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
  });
});

describe('requests Node`s HTTP parser refuses', () => {
  it('a 100 KB query string gets 431 with the JSON envelope (code 1008) and a message', async () => {
    const res = await fetch(`${server.baseUrl}/xcron/queryTask?task_id=${'a'.repeat(100_000)}`);
    expect(res.status).toBe(431);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { uuid: string; code: number; message: string; data: null };
    expect(body).toMatchObject({ code: 1008, data: null, message: expect.stringMatching(/request line and headers are over the limit of \d+ bytes/) });
    expect(body.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('x-request-id')).toBe(body.uuid);
  });

  it('a 20 KB header gets the same answer; malformed HTTP gets 400 with code 1000', async () => {
    const big = await fetch(`${server.baseUrl}/healthz`, { headers: { 'x-big': 'b'.repeat(20_000) } });
    expect(big.status).toBe(431);
    expect(await big.json()).toMatchObject({ code: 1008 });
    const junk = await rawRequest('GARBAGE\r\n\r\n');
    expect(junk).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    const json = JSON.parse(junk.slice(junk.indexOf('\r\n\r\n') + 4)) as { code: number; message: string };
    expect(json).toMatchObject({ code: 1000, message: expect.stringMatching(/^malformed HTTP request/) });
  });
});
