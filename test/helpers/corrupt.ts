/**
 * Damages a COPY of a SQLite database the way a bad disk or a stray write would: the root pages of
 * named tables are overwritten with zeros. Never used on a file a process still has open.
 */
import { closeSync, copyFileSync, existsSync, openSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';

/** Checkpoints the WAL into the main file (so the page layout read below is the file's). */
export function checkpoint(file: string): void {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** The root page numbers of the named tables or indexes, and the page size. */
export function rootPages(file: string, names: readonly string[]): { pages: Record<string, number>; pageSize: number } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare(`SELECT name, rootpage FROM sqlite_schema WHERE name IN (${names.map(() => '?').join(',')})`).all(...names) as { name: string; rootpage: number }[];
    const pages = Object.fromEntries(rows.map((r) => [r.name, r.rootpage]));
    for (const n of names) if (!(n in pages)) throw new Error(`no table or index ${n} in ${file}`);
    return { pages, pageSize: db.pragma('page_size', { simple: true }) as number };
  } finally {
    db.close();
  }
}

/** Copies `from` (checkpointed first; the copy has no -wal/-shm) to `to`. */
export function copyDatabase(from: string, to: string): void {
  checkpoint(from);
  for (const s of ['-wal', '-shm']) if (existsSync(to + s)) throw new Error(`${to}${s} exists`);
  copyFileSync(from, to);
}

/** Overwrites the root pages of `names` in `file` with zeros. Returns the pages written. */
export function zeroRootPages(file: string, names: readonly string[]): number[] {
  const { pages, pageSize } = rootPages(file, names);
  const fd = openSync(file, 'r+');
  try {
    for (const p of Object.values(pages)) writeSync(fd, Buffer.alloc(pageSize), 0, pageSize, (p - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
  return Object.values(pages);
}
