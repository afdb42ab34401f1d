/**
 * The `execArgv` of a worker thread (the store and delivery threads).
 *
 * Node refuses to start a Worker whose `execArgv` holds per-process options, such as V8's heap
 * flags: passing `process.execArgv` through made `node --max-old-space-size=4096 dist/src/main.js`
 * fail at startup (ERR_WORKER_INVALID_EXEC_ARGV). A worker inherits the process's options when no
 * `execArgv` is given, so one is given only under `--cpu-prof`, with the profiling options alone and
 * the profile's name marked with the thread (`<name>.<thread>.cpuprofile`), so that each thread
 * writes its own profile next to the main thread's.
 */
export function workerExecArgv(thread: string, argv: readonly string[] = process.execArgv): string[] | undefined {
  const prof = argv.filter((a) => a === '--cpu-prof' || a.startsWith('--cpu-prof-'));
  if (!prof.includes('--cpu-prof')) return undefined;
  return prof.map((a) => (a.startsWith('--cpu-prof-name=') ? a.replace(/(\.cpuprofile)?$/, `.${thread}.cpuprofile`) : a));
}
