/**
 * The BullMQ side of `npm run bench:peer`, run as its own process (forked with IPC) so it does not
 * share the bench's event loop: a BullMQ Worker whose processor POSTs the callback to the receiver
 * over undici (a Pool with as many connections as the worker's concurrency), the way xcron delivers:
 * headers X-Xcron-Fire-Id, X-Xcron-Scheduled-Time and X-Xcron-Attempt, the job's body as JSON, a
 * non-2xx answer or a network error fails the attempt (BullMQ then retries with its backoff).
 *
 * Fire id and scheduled time: a delayed job carries them in its data ({fid, sched}); a job made by a
 * job scheduler has the id `repeat:<scheduler id>:<scheduled ms>`, so its fire id is
 * `<scheduler id>:<scheduled ms>` (like xcron's `<task id>:<scheduled ms>`).
 *
 * Env: BENCH_REDIS_URL, BENCH_BULLMQ_QUEUE, BENCH_BULLMQ_CONCURRENCY, BENCH_RECEIVER_URL.
 * IPC: sends {type:'ready'} once the worker runs; {cmd:'stop'} (or a disconnect) closes it and exits.
 */
import { Worker, type Job } from 'bullmq';
import { Pool } from 'undici';

interface JobData {
  fid?: string;
  sched?: number;
  body?: unknown;
}

const redisUrl = new URL(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
const queueName = process.env.BENCH_BULLMQ_QUEUE ?? 'callbacks';
const concurrency = Number(process.env.BENCH_BULLMQ_CONCURRENCY ?? 256);
const target = new URL(process.env.BENCH_RECEIVER_URL ?? 'http://127.0.0.1:9/hook');
const pool = new Pool(target.origin, { connections: concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
const path = target.pathname + target.search;
const REPEAT_ID = /^repeat:(.+):(\d+)$/;

async function deliver(job: Job<JobData>): Promise<void> {
  let fid: string;
  let sched: number;
  const m = job.id ? REPEAT_ID.exec(job.id) : null;
  if (m) {
    fid = `${m[1]!}:${m[2]!}`;
    sched = Number(m[2]);
  } else {
    fid = job.data.fid ?? String(job.id);
    sched = job.data.sched ?? job.timestamp + (job.delay ?? 0);
  }
  const res = await pool.request({
    path,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-xcron-fire-id': fid,
      'x-xcron-scheduled-time': String(sched),
      'x-xcron-attempt': String(job.attemptsMade + 1),
    },
    body: JSON.stringify(job.data.body ?? {}),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  await res.body.dump();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}`);
}

const worker = new Worker<JobData>(queueName, deliver, {
  connection: { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), maxRetriesPerRequest: null },
  concurrency,
  autorun: true,
});
worker.on('error', (e) => console.error(`bullmq worker: ${e.message}`));

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const t = setTimeout(() => process.exit(0), 5000);
  t.unref();
  await worker.close(true).catch(() => undefined);
  await pool.close().catch(() => undefined);
  process.exit(0);
}

process.on('message', (m: { cmd?: string }) => {
  if (m.cmd === 'stop') void stop();
});
process.on('disconnect', () => void stop());

worker
  .waitUntilReady()
  .then(() => process.send?.({ type: 'ready' }))
  .catch((e: unknown) => {
    console.error(`bullmq worker did not start: ${(e as Error).message}`);
    process.exit(1);
  });
