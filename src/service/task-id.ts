/**
 * Task ids: 21 characters of [0-9A-Za-z_-], as before, but time-ordered: 8 characters of the
 * creation millisecond (base 62, so a digit or letter first), then 13 random ones (78 bits). The
 * SQLite store keys its tasks table by id, so ids that grow with time put new rows at the end of
 * the table: a batch of creates touches a few pages instead of one random page per task (random ids
 * cost a 4 KiB page write to the WAL per task). The slot (an FNV hash of the whole id) stays spread
 * evenly.
 */
import { randomFillSync } from 'node:crypto';

/** The time characters in ASCII order, so that ids compare like their timestamps (base 62). */
const TIME_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** The random characters (64: one per 6 random bits). */
const RANDOM_ALPHABET = 'useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict';
const RANDOM_CHARS = 13;
const POOL_IDS = 256;

let pool = Buffer.alloc(0);
let at = 0;

/** A new task id from the clock's `now` (ms since the epoch). */
export function timeOrderedId(now: number): string {
  let t = Math.max(0, Math.floor(now));
  let head = '';
  for (let i = 0; i < 8; i++) {
    head = TIME_CHARS[t % 62]! + head;
    t = Math.floor(t / 62);
  }
  if (at + RANDOM_CHARS > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(RANDOM_CHARS * POOL_IDS));
    at = 0;
  }
  let tail = '';
  for (let i = 0; i < RANDOM_CHARS; i++) tail += RANDOM_ALPHABET[pool[at++]! & 63]!;
  return head + tail;
}
