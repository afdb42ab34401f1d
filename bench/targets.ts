/**
 * targets: N one-shot tasks (default 20,000) due in the same second, sent to a queue target
 * instead of HTTP: once to a Redis Stream (a redis-server the bench starts) and once to RabbitMQ
 * (the machine's broker at BENCH_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672, a queue of
 * the bench's own on the default exchange). Prints messages/s, lateness p50/p99, missing and
 * duplicate counts; compare with bench:burst (HTTP callbacks) on the same machine.
 *
 * Lateness: Redis, the entry id's millisecond (Redis's clock, same machine) minus the fire's
 * scheduled time; RabbitMQ, the time the bench's consumer received the message minus the
 * scheduled time (it includes the consumer's own lag).
 *
 * Env: BENCH_TARGETS_TASKS (20000), BENCH_TARGETS_LEAD_MS (default: from a createTask
 * calibration, as in bench:burst), BENCH_TARGETS_KINDS (redis_stream,amqp), BENCH_AMQP_URL.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ChannelModel } from 'amqplib';
import { Redis } from 'ioredis';
import {
  atLeast,
  cpuSecondsOf,
  createMany,
  distOf,
  envInt,
  fmt,
  header,
  isMain,
  line,
  machine,
  makeTempDir,
  round1,
  runStandalone,
  serverLogSummary,
  serverPool,
  sleep,
  startServer,
  writeResult,
  type BenchResult,
  type ServerHandle,
  teardown,
} from './lib/common.js';
import { BenchRedis } from './lib/redis.js';
import { TARGET_CPS } from './burst.js';

type Kind = 'redis_stream' | 'amqp';

interface Arrivals {
  /** fire id → arrival times (ms epoch), one per message. */
  seen: Map<string, number[]>;
}

/** The consumer side of one kind: collects arrivals until every fire arrived or the deadline. */
interface Sink {
  toml: string;
  collect(expected: ReadonlySet<string>, deadline: number): Promise<Arrivals>;
  close(): Promise<void>;
}

async function redisSink(): Promise<Sink> {
  const redis = await BenchRedis.start();
  const stream = 'bench-targets';
  const client = new Redis(redis.port, '127.0.0.1');
  return {
    toml: `[targets.t]\nkind = "redis_stream"\nurl = "redis://127.0.0.1:${redis.port}"\nstream = "${stream}"\n`,
    async collect(expected, deadline) {
      while (Date.now() < deadline && (await client.xlen(stream)) < expected.size) await sleep(250);
      await sleep(1000); // late duplicates (a retry after a timed-out XADD) still count
      const seen = new Map<string, number[]>();
      let from = '-';
      for (;;) {
        const page = (await client.xrange(stream, from, '+', 'COUNT', 5000)) as [string, string[]][];
        for (const [id, f] of page) {
          if (id === from) continue;
          const i = f.indexOf('fire_id');
          const fire = f[i + 1]!;
          const at = Number(id.split('-')[0]);
          const list = seen.get(fire);
          if (list) list.push(at);
          else seen.set(fire, [at]);
        }
        if (page.length < 5000) break;
        from = page[page.length - 1]![0];
      }
      return { seen };
    },
    async close() {
      client.disconnect();
      await redis.stop();
    },
  };
}

async function amqpSink(url: string): Promise<Sink> {
  const queue = `bench-targets-${process.pid}-${Date.now()}`;
  const conn: ChannelModel = await connect(url);
  const ch = await conn.createChannel();
  await ch.assertQueue(queue, { durable: false, autoDelete: false });
  const seen = new Map<string, number[]>();
  let count = 0;
  await ch.prefetch(2000);
  await ch.consume(queue, (m) => {
    if (!m) return;
    const at = Date.now();
    const fire = String(m.properties.messageId);
    const list = seen.get(fire);
    if (list) list.push(at);
    else seen.set(fire, [at]);
    count++;
    ch.ack(m);
  });
  return {
    toml: `[targets.t]\nkind = "amqp"\nurl = "${url}"\nexchange = ""\nrouting_key = "${queue}"\n`,
    async collect(expected, deadline) {
      while (Date.now() < deadline && count < expected.size) await sleep(250);
      await sleep(1000);
      return { seen };
    },
    async close() {
      await ch.deleteQueue(queue).catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}

async function runKind(kind: Kind, N: number, notes: string[]): Promise<Record<string, unknown>> {
  header(`targets: ${kind}`, `${fmt(N)} one-shot tasks due in the same second`);
  const dir = makeTempDir(`targets-${kind}`);
  let server: ServerHandle | null = null;
  let p: ReturnType<typeof serverPool> | null = null;
  const sink = kind === 'redis_stream' ? await redisSink() : await amqpSink(process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  try {
    // The server runs in dataDir (bench/lib/common.ts): its xcron.toml there names the target.
    writeFileSync(join(dir, 'xcron.toml'), sink.toml);
    server = await startServer({ name: `targets-${kind}`, dataDir: dir });
    p = serverPool(server.baseUrl, 64);
    // Calibrate on tasks due in a year (to the same target: nothing is sent).
    const at = Math.floor(Date.now() / 1000) + 365 * 86_400;
    const cal = await createMany(p, Array.from({ length: 1000 }, (_, i) => JSON.stringify({ type: 2, format: String(at + i), callback: { target: 't', body: {} } })), 64);
    const rate = (1000 / cal.ms) * 1000;
    const leadMs = envInt('BENCH_TARGETS_LEAD_MS', Math.min(300_000, Math.max(6000, Math.ceil((N / rate) * 1500) + 3000)));
    line('createTask calibration', `${fmt(rate)} req/s -> due time ${fmt(leadMs / 1000, 1)} s ahead`);
    const dueSec = Math.ceil((Date.now() + leadMs) / 1000);
    const dueMs = dueSec * 1000;
    const bodies: string[] = [];
    for (let i = 0; i < N; i++) bodies.push(JSON.stringify({ type: 2, format: String(dueSec), callback: { target: 't', body: { i } } }));
    const { results, ms: createMs } = await createMany(p, bodies, 64);
    const createdAt = Date.now();
    const expected = new Set<string>();
    for (const r of results) if (r.ok && r.task_id) expected.add(`${r.task_id}:${dueMs}`);
    const errors = results.length - expected.size;
    line('created', `${fmt(expected.size)} tasks in ${fmt(createMs)} ms, ${errors} errors; due ${dueMs - createdAt} ms after creation finished`);
    const valid = createdAt <= dueMs - 500 && errors === 0;
    if (!valid) notes.push(`${kind}: INVALID RUN (creation finished late or failed)`);
    while (Date.now() < dueMs - 500) await sleep(Math.min(500, dueMs - 500 - Date.now()));
    const cpu0 = cpuSecondsOf(server.pid) ?? NaN;
    const { seen } = await sink.collect(expected, dueMs + 120_000);
    const cpu1 = cpuSecondsOf(server.pid) ?? NaN;
    let duplicates = 0;
    let unexpected = 0;
    let first = Infinity;
    let last = -Infinity;
    const lateness: number[] = [];
    for (const [fire, times] of seen) {
      if (!expected.has(fire)) {
        unexpected += times.length;
        continue;
      }
      duplicates += times.length - 1;
      const t = Math.min(...times);
      lateness.push(t - dueMs);
      first = Math.min(first, t);
      last = Math.max(last, t);
    }
    let missing = 0;
    for (const f of expected) if (!seen.has(f)) missing++;
    const unique = lateness.length;
    const late = distOf(lateness);
    const mpsFirstLast = unique > 1 ? ((unique - 1) / Math.max(1, last - first)) * 1000 : NaN;
    const mpsDueLast = unique > 0 ? (unique / Math.max(1, last - dueMs)) * 1000 : NaN;
    line('received (unique fires)', `${fmt(unique)} of ${fmt(expected.size)}`);
    line('missing / duplicates / unexpected', `${fmt(missing)} / ${fmt(duplicates)} / ${fmt(unexpected)}`);
    const check = atLeast(`${kind} messages/s due->last`, Math.round(mpsDueLast), TARGET_CPS, 'messages/s');
    line('messages/s, first -> last', `${fmt(mpsFirstLast)} (${fmt(last - first)} ms)`);
    line('messages/s, due time -> last', `${fmt(mpsDueLast)} (${fmt(last - dueMs)} ms)`, check);
    line('lateness p50 / p99 / max', `${fmt(late.p50)} / ${fmt(late.p99)} / ${fmt(late.max)} ms`);
    line('server CPU from due-0.5 s to the last message + 1 s', `${fmt(cpu1 - cpu0, 2)} s`);
    if (missing > 0) notes.push(`${kind}: ${missing} fires never arrived`);
    if (duplicates > 0) notes.push(`${kind}: ${duplicates} duplicate messages`);
    const logFile = server.logFile;
    await server.stop();
    server = null;
    const log = serverLogSummary(logFile);
    if (log.lines > 0) line('server warn/error log lines', `${log.lines}: ${log.top.map((t) => `${t.count}x ${t.msg}`).join('; ')}`);
    return {
      kind,
      valid,
      created: expected.size,
      create_ms: Math.round(createMs),
      lead_ms: leadMs,
      received_unique: unique,
      missing,
      duplicates,
      unexpected,
      mps_first_to_last: Math.round(mpsFirstLast),
      mps_due_to_last: Math.round(mpsDueLast),
      first_after_due_ms: first - dueMs,
      due_to_last_ms: last - dueMs,
      lateness_ms: late,
      server_cpu_s: round1(cpu1 - cpu0),
      server_log_lines: log.lines,
      target: check,
    };
  } finally {
    await sink.close();
    await teardown({ pool: p, server, dir });
  }
}

export async function runTargets(): Promise<BenchResult> {
  const N = envInt('BENCH_TARGETS_TASKS', 20_000);
  const kinds = (process.env.BENCH_TARGETS_KINDS ?? 'redis_stream,amqp').split(',').map((s) => s.trim()).filter((s): s is Kind => s === 'redis_stream' || s === 'amqp');
  const started = Date.now();
  const notes: string[] = [];
  const figures: Record<string, unknown> = {};
  for (const k of kinds) figures[k] = await runKind(k, N, notes);
  const r: BenchResult = {
    name: 'targets',
    started_at: new Date(started).toISOString(),
    duration_s: round1((Date.now() - started) / 1000),
    machine: machine(),
    config: { tasks: N, kinds, format: '10-digit s', create_concurrency: 64 },
    figures,
    targets: kinds.map((k) => (figures[k] as { target: ReturnType<typeof atLeast> }).target),
    notes,
  };
  writeResult(r);
  return r;
}

if (isMain(import.meta.url)) runStandalone(runTargets);
