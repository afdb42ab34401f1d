/** The service layer: every task operation the API, the dashboard, export/import and the scheduler's follow-ups share. */
export type { Notifier } from '../cluster/index.js';
export { TaskService, taskNotFound, type ManualRun, type PauseBy, type TaskServiceOptions } from './tasks.js';
export { RunReplay, runNotFound, type ReplayFilter, type RetriedRun } from './replay.js';
export { bulkTasks, BULK_IDS_SHOWN, type BulkAction, type BulkSelector } from './bulk.js';
export { ExecutorService, parseRegistration, checkExecutorAddress, MIN_TTL_MS, MAX_TTL_MS, MAX_META_BYTES, type ExecutorInput, type ExecutorGroupView } from './executors.js';
