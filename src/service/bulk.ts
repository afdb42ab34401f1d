/**
 * Bulk task operations (pauseTasks, resumeTasks, deleteTasks): every task selected by a tag or a
 * name prefix, each changed through TaskService (so a cluster's notifications and the optimistic
 * checks work as for one task). A task that changed state or vanished in between is skipped.
 *
 * There is no cap: the selection is read in pages of 500 tasks in id order, and each page is
 * acted on before the next is read, so memory stays bounded however many tasks match. The id
 * cursor is not moved by the changes themselves (a paused task leaves the 'active' listing behind
 * the cursor). Tasks created while the operation runs get later ids and may be included.
 */
import { Codes, XcronError } from '../errors.js';
import type { TaskStore } from '../store/types.js';
import type { Task } from '../task/index.js';
import type { PauseBy, TaskService } from './tasks.js';

export type BulkAction = 'pause' | 'resume' | 'delete';

export interface BulkSelector {
  tag: string | null;
  namePrefix: string | null;
}

/** Task ids listed in an answer at most (`count` is the total). */
export const BULK_IDS_SHOWN = 1000;
/** Tasks read (and acted on) per page. */
export const BULK_PAGE = 500;

/** The state a task must be in for the action to change it (null: any). */
const FROM: Record<BulkAction, Task['state'] | null> = { pause: 'active', resume: 'paused', delete: null };

/**
 * Acts on every selected task (dry run: only counts them). `count`: the tasks changed (or that
 * would change); `task_ids`: the first BULK_IDS_SHOWN of them. `by`: the pause note and its author.
 */
export async function bulkTasks(service: TaskService, store: TaskStore, action: BulkAction, sel: BulkSelector, dryRun: boolean, by: PauseBy = {}): Promise<{ count: number; task_ids: string[] }> {
  const shown: string[] = [];
  let count = 0;
  let after: string | null = null;
  for (;;) {
    const page = await store.listTasks({ state: FROM[action], namePrefix: sel.namePrefix, tag: sel.tag, after, limit: BULK_PAGE });
    for (const t of page) {
      if (!dryRun && !(await apply(service, action, t.id, by))) continue;
      count++;
      if (shown.length < BULK_IDS_SHOWN) shown.push(t.id);
    }
    if (page.length < BULK_PAGE) break;
    after = page[page.length - 1]!.id;
  }
  return { count, task_ids: shown };
}

async function apply(service: TaskService, action: BulkAction, id: string, by: PauseBy): Promise<boolean> {
  try {
    if (action === 'delete') return (await service.delete(id)) !== null;
    const t = action === 'pause' ? await service.pause(id, by) : await service.resume(id);
    return action === 'pause' ? t.state === 'paused' : t.state !== 'paused';
  } catch (e) {
    if (e instanceof XcronError && e.code === Codes.TASK_NOT_FOUND) return false; // deleted in between
    throw e;
  }
}
