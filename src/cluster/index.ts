export { slotOf, hash32, rendezvous, LocalOwnership, type Ownership, type SlotInfo, type OwnershipEvents } from './ownership.js';
