/** The slot of a task: which node fires it (cluster ownership) and which Redis hash tag holds it. */

/** FNV-1a 32-bit hash of a task id, mod the slot count. Stable across nodes and versions. */
export function slotOf(taskId: string, slots: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < taskId.length; i++) {
    h ^= taskId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % slots;
}
