/**
 * The `xcron_server` binary: a thin shell around createXcron (src/xcron.ts). Parses the arguments,
 * loads the config, builds the node, starts it, listens, and on SIGTERM/SIGINT runs its ordered
 * shutdown; a second signal forces the exit.
 *
 * Exit codes: 0 after a clean stop; 1 when the start failed or a shutdown step failed or ran out
 * of time; 2 for a configuration error; 130 when a second signal forced the exit.
 */
import { VERSION, loadConfig, type Config } from './config/index.js';
import { ConfigError } from './errors.js';
import { createLogger } from './log.js';
import { startupFailureText } from './startup-errors.js';
import { runTransfer } from './transfer.js';
import { createXcron, type Xcron } from './xcron.js';

interface Args {
  configPath: string;
  explicit: boolean;
  /** --dev: callbacks may reach loopback and private addresses (local development only). */
  dev: boolean;
  /** A command instead of serving: export or import tasks. */
  command: { name: 'export' | 'import'; file: string | undefined } | null;
}

const USAGE = `usage: xcron_server [--config PATH] [--dev]         serve
       xcron_server export [--out FILE] [--config PATH]  write every task as JSON lines
       xcron_server import FILE [--config PATH]         create the tasks of an export
  --dev: callbacks may reach loopback and private addresses (local development, never production)
  default config: ./xcron.toml; every key can be overridden with XCRON_<KEY> or XCRON_<SECTION>_<KEY>
`;

function parseArgs(argv: string[]): Args {
  let configPath: string | undefined;
  let command: Args['command'] = null;
  let dev = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (i === 0 && (a === 'export' || a === 'import')) {
      command = { name: a, file: undefined };
    } else if (command && (a === '--out' || a === '-o') && command.name === 'export') {
      command.file = argv[++i];
      if (!command.file) throw new ConfigError('--out needs a file path');
    } else if (command?.name === 'import' && command.file === undefined && !a.startsWith('-')) {
      command.file = a;
    } else if (a === '--config' || a === '-c') {
      configPath = argv[++i];
      if (!configPath) throw new ConfigError('--config needs a file path');
    } else if (a.startsWith('--config=')) {
      configPath = a.slice('--config='.length);
    } else if (a === '--dev') {
      dev = true;
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '--version') {
      process.stdout.write(`${VERSION}\n`);
      process.exit(0);
    } else {
      throw new ConfigError(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  const fromEnv = process.env.XCRON_CONFIG;
  if (configPath) return { configPath, explicit: true, dev, command };
  if (fromEnv) return { configPath: fromEnv, explicit: true, dev, command };
  return { configPath: 'xcron.toml', explicit: false, dev, command };
}

export async function main(): Promise<void> {
  let cfg: Config;
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
    cfg = loadConfig({ path: args.configPath, explicit: args.explicit, env: process.env, dev: args.dev });
  } catch (e) {
    if (e instanceof ConfigError) configError(e);
    throw e;
  }
  const log = createLogger(cfg.log_level, cfg.node_id, { buffered: true });
  if (args.dev) log.warn('development mode (--dev): callbacks may reach loopback and private addresses; never use --dev in production');
  if (args.command) {
    try {
      process.exit(await runTransfer(args.command.name, args.command.file, cfg, log));
    } catch (e) {
      process.stderr.write(`xcron: ${args.command.name} failed: ${(e as Error).message}\n`);
      process.exit(e instanceof ConfigError ? 2 : 1);
    }
  }

  let x: Xcron;
  try {
    x = await createXcron(cfg, { log });
  } catch (e) {
    if (e instanceof ConfigError) {
      log.flush();
      configError(e);
    }
    throw e;
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: forcing exit');
      log.flush();
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    void x.stop().then(() => {
      log.flush();
      process.exit(x.stopped?.every((s) => s.outcome === 'ok') === false ? 1 : 0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));

  // ready_ms: from here (the store is open) until the port listens, as the benchmarks read it.
  const t0 = performance.now();
  let port: number;
  let host: string;
  try {
    await x.start();
    if (stopping) return; // a signal came during the start: the shutdown is under way
    ({ port, host } = await x.listen());
  } catch (e) {
    // Give the slots back and close the store before reporting (a cluster node would otherwise
    // hold its leases until they expire).
    if (!stopping) await x.stop();
    throw e;
  }
  log.info({ port, host, ...x.where, loaded: x.scheduler.loadedCount(), ready_ms: Math.round(performance.now() - t0), version: VERSION }, `xcron listening on ${host}:${port}`);
}

function configError(e: ConfigError): never {
  process.stderr.write(`xcron: configuration error: ${e.message}\n`);
  process.exit(2);
}

main().catch((e: unknown) => {
  // An explained failure (src/startup-errors.ts, src/store/startup-errors.ts) prints without its stack.
  const verbose = ['debug', 'trace'].includes(process.env.XCRON_LOG_LEVEL ?? '');
  process.stderr.write(`xcron: failed to start: ${startupFailureText(e, verbose)}\n`);
  process.exit(1);
});
