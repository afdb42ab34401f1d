/**
 * Callback receiver, run as its own process (`node dist/bench/receiver.js`, forked with IPC).
 * Records, for every callback, the fire id, X-Xcron-Scheduled-Time, X-Xcron-Attempt and the arrival
 * time (Date.now() when the request headers arrive), and answers 200 once the body is read.
 *
 * IPC protocol (parent -> receiver): {cmd:'stats'} | {cmd:'collect'} | {cmd:'reset'} | {cmd:'stop'}.
 * Receiver -> parent: {type:'listening', port} | {type:'stats', count, first, last}
 *   | {type:'records', ids, sched, arrival, attempt} | {type:'reset'}.
 * It exits when the parent disconnects, so it never outlives the bench.
 */
import { createServer } from 'node:http';

let ids: string[] = [];
let sched: number[] = [];
let arrival: number[] = [];
let attempt: number[] = [];

/** `--parse-json`: every body is read and parsed as JSON before the answer (a 400 if it is not JSON). */
const parseJson = process.argv.includes('--parse-json');
let badBodies = 0;

const server = createServer((req, res) => {
  const now = Date.now();
  ids.push(String(req.headers['x-xcron-fire-id'] ?? ''));
  sched.push(Number(req.headers['x-xcron-scheduled-time'] ?? NaN));
  attempt.push(Number(req.headers['x-xcron-attempt'] ?? NaN));
  arrival.push(now);
  const chunks: Buffer[] | null = parseJson ? [] : null;
  req.on('end', () => {
    let status = 200;
    if (chunks) {
      try {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        badBodies++;
        status = 400;
      }
    }
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': '2' });
    res.end('{}');
  });
  if (chunks) req.on('data', (c: Buffer) => chunks.push(c));
  else req.resume();
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;

const send = (m: unknown): void => {
  if (process.send) process.send(m);
};

process.on('message', (m: { cmd?: string }) => {
  switch (m.cmd) {
    case 'stats':
      send({ type: 'stats', count: ids.length, first: arrival[0] ?? null, last: arrival[arrival.length - 1] ?? null, bad_bodies: badBodies });
      break;
    case 'collect':
      send({ type: 'records', ids, sched, arrival, attempt });
      break;
    case 'reset':
      ids = [];
      sched = [];
      arrival = [];
      attempt = [];
      send({ type: 'reset' });
      break;
    case 'stop':
      server.closeAllConnections();
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
      break;
    default:
      break;
  }
});
process.on('disconnect', () => process.exit(0));

const port = Number(process.env.BENCH_RECEIVER_PORT ?? 0);
server.listen(port, '127.0.0.1', 4096, () => {
  const a = server.address();
  send({ type: 'listening', port: typeof a === 'object' && a ? a.port : port });
});
