/**
 * Bulk task operations (pauseTasks, resumeTasks, deleteTasks): every task selected by a tag or a
 * name prefix, each changed through TaskService (so a cluster's notifications and the optimistic
 * checks work as for one task). A task that changed state or vanished in between is skipped.
 */
import type { TaskStore } from '../store/types.js';
import type { Task } from '../task/index.js';
import type { TaskService } from './tasks.js';

export type BulkAction = 'pause' | 'resume' | 'delete';

export interface BulkSelector {
  tag: string | null;
  namePrefix: string | null;
}

/** Task ids listed in an answer at most (`count` is the total). */
export const BULK_IDS_SHOWN = 1000;
const PAGE = 500;

/** The state a task must be in for the action to change it (null: any). */
const FROM: Record<BulkAction, Task['state'] | null> = { pause: 'active', resume: 'paused', delete: null };

export async function bulkTasks(service: TaskService, store: TaskStore, action: BulkAction, sel: BulkSelector, dryRun: boolean): Promise<{ count: number; task_ids: string[] }> {
  const ids: string[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await store.listTasks({ state: FROM[action], namePrefix: sel.namePrefix, tag: sel.tag, after, limit: PAGE });
    for (const t of page) ids.push(t.id);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.id;
  }
  if (dryRun) return { count: ids.length, task_ids: ids.slice(0, BULK_IDS_SHOWN) };
  const done: string[] = [];
  for (const id of ids) {
    const changed = await apply(service, action, id);
    if (changed) done.push(id);
  }
  return { count: done.length, task_ids: done.slice(0, BULK_IDS_SHOWN) };
}

async function apply(service: TaskService, action: BulkAction, id: string): Promise<boolean> {
  try {
    if (action === 'delete') return (await service.delete(id)) !== null;
    const t = action === 'pause' ? await service.pause(id) : await service.resume(id);
    return action === 'pause' ? t.state === 'paused' : t.state !== 'paused';
  } catch (e) {
    if (e instanceof Error && 'code' in e && (e as { code: unknown }).code === 1007) return false; // deleted in between
    throw e;
  }
}
