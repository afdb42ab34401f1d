/**
 * The results queue: executors report a run's outcome (the body of POST /xcron/reportRun) by
 * writing it to a Redis stream, an AMQP queue or a NATS JetStream subject, and this node consumes it ([results] in the
 * configuration). Each report is applied through the same code as the HTTP endpoint
 * (./report.ts), then acknowledged: at least once. A crash between reading a report and
 * acknowledging it leaves it pending (Redis) or unacknowledged (AMQP), so it is read again after
 * the restart; a report already applied is then answered "already reported" and changes nothing.
 *
 * A report that can never apply (not JSON, a wrong token, an unknown run, a run closed with
 * another outcome) is logged and acknowledged, so it cannot block the queue. One that failed
 * because the store was unavailable is not acknowledged and is tried again.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { ReportDeps } from './report.js';
import { ReportHandler, type CrashPoint, type ResultsConsumer } from './report-handler.js';
import { AmqpResults } from './results-amqp.js';
import { NatsResults } from './results-nats.js';
import { RedisResults } from './results-redis.js';

export type { ResultsConsumer } from './report-handler.js';

export interface ResultsOptions {
  cfg: Config['results'];
  nodeId: string;
  report: ReportDeps;
  log: Logger;
}

/** The consumer [results] configures, or null when `kind` is empty. */
export function createResultsConsumer(o: ResultsOptions): ResultsConsumer | null {
  if (o.cfg.kind === '') return null;
  const crashEnv = process.env.XCRONTEST_RESULTS_CRASH;
  const crash: CrashPoint = crashEnv === 'before_record' || crashEnv === 'before_ack' ? crashEnv : null;
  const log = o.log.child({ module: 'results' });
  const handler = new ReportHandler({ report: o.report, log, crash });
  const consumer: ResultsConsumer =
    o.cfg.kind === 'redis_stream' ? new RedisResults(o.cfg, o.nodeId, handler, log) : o.cfg.kind === 'amqp' ? new AmqpResults(o.cfg, handler, log) : new NatsResults(o.cfg, handler, log);
  return stopOnce(consumer);
}

/** The consumer with a `stop()` that can be called again and returns the first call's promise. */
function stopOnce(c: ResultsConsumer): ResultsConsumer {
  let stopping: Promise<void> | undefined;
  return { start: () => c.start(), stop: () => (stopping ??= c.stop()) };
}
