export { hash32, rendezvous, LocalOwnership, type Ownership, type SlotInfo, type OwnershipEvents } from './ownership.js';
export type { Notifier } from './notify.js';
/** The slot hash lives in task (below the store); re-exported here for the callers that import it with Ownership. */
export { slotOf } from '../task/index.js';
