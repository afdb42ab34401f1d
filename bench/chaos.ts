/**
 * Stress run of issue 27's scenario (test/cluster/pause-scenario.ts): 3 real nodes on one real
 * redis-server with a 3 s lease, one-shots due every 100 ms and periodic every-second tasks; one
 * node killed with SIGKILL, another frozen with SIGSTOP 3 s later for 8 s. Repeated
 * BENCH_CHAOS_RUNS times (default 20) on fresh nodes.
 *
 * Prints, per run and in total: fire ids delivered twice, and of those the ones not explained by a
 * send whose bytes had left before the kill or the freeze (see the classification in
 * pause-scenario.ts; the target is 0), attempt numbers repeated within one fire id (target 0), lost
 * fires and ticks committed twice (target 0), and the failover times (target <= lease + 1 s each).
 *
 * Env: BENCH_CHAOS_RUNS (20), BENCH_CHAOS_ONE_SHOTS (150), BENCH_CHAOS_PERIODIC (12).
 */
import { RedisServer, stopAllRedis } from '../test/helpers/redis.js';
import { LEASE, runKillThenFreeze, type PauseReport } from '../test/cluster/pause-scenario.js';
import { CallbackReceiver, ensureBuilt, stopAllNodes } from '../test/cluster/procs.js';
import { envInt, header, isMain, line, machine, runStandalone, writeResult, type BenchResult } from './lib/common.js';

export async function runChaos(): Promise<BenchResult> {
  const runs = envInt('BENCH_CHAOS_RUNS', 20);
  const started = Date.now();
  header('chaos', `kill -9, then SIGSTOP 3 s later for 8 s, ${runs} runs (3 nodes, lease ${LEASE} ms)`);
  ensureBuilt();
  const redis = await RedisServer.start({ appendonly: true, appendfsync: 'always' });
  const rec = await CallbackReceiver.start();
  const reports: PauseReport[] = [];
  const notes: string[] = [];
  try {
    for (let i = 1; i <= runs; i++) {
      let r: PauseReport;
      try {
        r = await runKillThenFreeze({ redisUrl: redis.url, rec, oneShots: envInt('BENCH_CHAOS_ONE_SHOTS', 150), periodic: envInt('BENCH_CHAOS_PERIODIC', 12), log: (l) => line(`  run ${i}`, l) });
      } catch (e) {
        notes.push(`run ${i} did not complete: ${(e as Error).message.slice(0, 300)}`);
        line(`run ${i}`, `DID NOT COMPLETE: ${(e as Error).message.slice(0, 300)}`);
        await stopAllNodes();
        continue;
      }
      reports.push(r);
      line(
        `run ${i}`,
        `${r.fires} fire ids; delivered twice ${r.duplicates.length} (unexplained ${r.unexcused.length}); attempt repeated ${r.attemptRepeated.length}; lost ${r.lost.length}; double commit ${r.doubleCommit ? 'YES' : 'no'}; failover ${r.failoverKillMs} / ${r.failoverFreezeMs} ms`,
      );
      for (const u of r.unexcused) line('    unexplained duplicate', u);
      for (const u of r.attemptRepeated) line('    attempt repeated', u);
      for (const u of r.lost.slice(0, 5)) line('    lost', u);
      if (r.doubleCommit) line('    double commit', r.doubleCommit.slice(0, 300));
    }
  } finally {
    await stopAllNodes();
    await rec.close();
    await stopAllRedis();
  }
  const sum = (f: (r: PauseReport) => number): number => reports.reduce((s, r) => s + f(r), 0);
  const failovers = reports.flatMap((r) => [r.failoverKillMs, r.failoverFreezeMs]);
  const maxFailover = failovers.length > 0 ? Math.max(...failovers) : NaN;
  const unexplained = sum((r) => r.unexcused.length);
  line('runs completed', `${reports.length} of ${runs}`);
  line('fire ids delivered twice', `${sum((r) => r.duplicates.length)} in total, all after a send that left before the kill or the freeze except ${unexplained}`);
  line('unexplained duplicates', `${unexplained}   target 0  ${unexplained === 0 ? 'ok' : 'MISS'}`);
  line('attempt numbers repeated', `${sum((r) => r.attemptRepeated.length)}   target 0`);
  line('lost fires / double commits', `${sum((r) => r.lost.length)} / ${reports.filter((r) => r.doubleCommit !== null).length}   target 0 / 0`);
  line('failover max (kill, freeze)', `${maxFailover} ms   target <= ${LEASE + 1000} ms  ${maxFailover <= LEASE + 1000 ? 'ok' : 'MISS'}`);
  const targets = [
    { metric: 'unexplained duplicates', value: unexplained, target: '0', pass: unexplained === 0 },
    { metric: 'attempt numbers repeated', value: sum((r) => r.attemptRepeated.length), target: '0', pass: sum((r) => r.attemptRepeated.length) === 0 },
    { metric: 'lost fires', value: sum((r) => r.lost.length), target: '0', pass: sum((r) => r.lost.length) === 0 },
    { metric: 'runs with a tick committed twice', value: reports.filter((r) => r.doubleCommit !== null).length, target: '0', pass: reports.every((r) => r.doubleCommit === null) },
    { metric: 'failover max ms', value: maxFailover, target: `<= ${LEASE + 1000}`, pass: maxFailover <= LEASE + 1000 },
  ];
  const result: BenchResult = {
    name: 'chaos',
    started_at: new Date(started).toISOString(),
    duration_s: Math.round((Date.now() - started) / 1000),
    machine: machine(),
    config: { runs, lease_ms: LEASE, one_shots: envInt('BENCH_CHAOS_ONE_SHOTS', 150), periodic: envInt('BENCH_CHAOS_PERIODIC', 12) },
    figures: {
      runs_completed: reports.length,
      delivered_twice: sum((r) => r.duplicates.length),
      delivered_twice_per_run: reports.map((r) => r.duplicates.length),
      unexplained_duplicates: unexplained,
      attempt_repeated: sum((r) => r.attemptRepeated.length),
      lost: sum((r) => r.lost.length),
      failover_ms: failovers,
    },
    targets,
    notes,
  };
  writeResult(result);
  return result;
}

if (isMain(import.meta.url)) runStandalone(runChaos);
