/** One report read from the results queue (./results.ts): applied like POST /xcron/reportRun, with the crash test hook. */
import type { Logger } from 'pino';
import { XcronError } from '../errors.js';
import { applyReport, parseReport, type ReportDeps } from './report.js';

export interface ResultsConsumer {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What to do with a message once it was handled. */
export type Disposition = 'ack' | 'retry';

/**
 * A test hook (the crash tests): `XCRONTEST_RESULTS_CRASH=before_record` or `before_ack` kills the
 * process with SIGKILL right before a report is recorded, or after it was recorded and before it is
 * acknowledged. Not a configuration key: unset in any real deployment.
 */
export type CrashPoint = 'before_record' | 'before_ack' | null;

export interface ReportHandlerOptions {
  report: ReportDeps;
  log: Logger;
  crash?: CrashPoint;
}

/** Applies one report read from the queue; never throws. */
export class ReportHandler {
  constructor(private readonly o: ReportHandlerOptions) {}

  crashAt(point: Exclude<CrashPoint, null>): void {
    if (this.o.crash === point) {
      this.o.log.warn({ point }, 'test hook: killing the process');
      process.kill(process.pid, 'SIGKILL');
    }
  }

  async handle(raw: string, where: string): Promise<Disposition> {
    let body: unknown;
    try {
      body = JSON.parse(raw) as unknown;
    } catch {
      this.o.log.warn({ message_id: where }, 'report from the results queue is not JSON; dropped');
      return 'ack';
    }
    this.crashAt('before_record');
    try {
      const report = parseReport(body, this.o.report.reportSecret);
      const res = await applyReport(this.o.report, report);
      this.o.log.debug({ run_id: res.run_id, status: res.status, already: res.already, message_id: where }, 'report applied from the results queue');
      return 'ack';
    } catch (err) {
      if (err instanceof XcronError && err.status < 500) {
        const runId = typeof (body as { run_id?: unknown }).run_id === 'string' ? (body as { run_id: string }).run_id.slice(0, 100) : undefined;
        this.o.log.warn({ run_id: runId, code: err.code, error: err.message, message_id: where }, 'report from the results queue refused; dropped');
        return 'ack';
      }
      this.o.log.error({ err, message_id: where }, 'report from the results queue could not be recorded; it will be read again');
      return 'retry';
    }
  }
}

