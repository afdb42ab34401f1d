export { slotOf, LocalOwnership, type Ownership, type SlotInfo, type OwnershipEvents } from './ownership.js';
