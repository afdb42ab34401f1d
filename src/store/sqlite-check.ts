/**
 * The SQLite file's health: a structural check before the store opens (`[store] startup_check`),
 * and, while it runs, a cheap probe plus a sticky "corrupt" mark. A store that has seen
 * corruption refuses every call from then on (answered as unavailable: 503), and its ping fails,
 * so /readyz answers 503 and nothing is written into a damaged file.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../errors.js';

/** `quick`: PRAGMA quick_check (the b-trees and their pages); `full`: PRAGMA integrity_check (also every index against its table); `off`. */
export type StartupCheck = 'quick' | 'full' | 'off';

export interface CheckResult {
  mode: 'quick' | 'full';
  ok: boolean;
  /** SQLite's findings (at most `maxProblems`), empty when ok. */
  problems: string[];
  ms: number;
}

const codeOf = (e: unknown): string => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
};

/** SQLite result codes (extended ones start with these) that mean the file itself is damaged. */
export function isCorruption(e: unknown): boolean {
  const code = codeOf(e);
  return code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB');
}

/** Runs quick_check or integrity_check on an open connection. Corruption that stops the check itself is a finding too. */
export function checkDatabase(db: Database.Database, mode: 'quick' | 'full', maxProblems = 10): CheckResult {
  const t0 = performance.now();
  const pragma = mode === 'quick' ? 'quick_check' : 'integrity_check';
  let problems: string[];
  try {
    const rows = db.pragma(`${pragma}(${maxProblems})`) as Record<string, unknown>[];
    problems = rows.map((r) => String(Object.values(r)[0])).filter((s) => s !== 'ok');
  } catch (e) {
    // Damage that stops the check is a finding; anything else (not a database at all, a lock) is
    // explained by startup-errors.ts.
    if (codeOf(e).startsWith('SQLITE_CORRUPT')) problems = [(e as Error).message];
    else throw e;
  }
  return { mode, ok: problems.length === 0, problems, ms: Math.round(performance.now() - t0) };
}

/**
 * Checks an existing database file on its own connection, before the store opens it (so nothing
 * is written into a damaged file). A file that does not exist yet, or mode `off`: null.
 * Errors other than corruption (permissions, locks) are thrown for startup-errors.ts to explain.
 */
export function checkDatabaseFile(file: string, mode: StartupCheck): CheckResult | null {
  if (mode === 'off' || file === ':memory:' || !existsSync(file)) return null;
  let db: Database.Database;
  try {
    // Read-only: closing it does not checkpoint a WAL left by a crash into the file being judged.
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (e) {
    if (codeOf(e).startsWith('SQLITE_CORRUPT')) return { mode, ok: false, problems: [(e as Error).message], ms: 0 };
    throw e;
  }
  try {
    db.pragma('busy_timeout = 5000');
    return checkDatabase(db, mode);
  } finally {
    db.close();
  }
}

/**
 * The running store's health mark: `note` every error a call hit; once one says the file is
 * damaged, `refusal` answers every later call with an unavailable error naming the damage.
 */
export class StoreHealth {
  private corrupt: string | null = null;

  /** Records an error a store call hit. */
  note(e: unknown): void {
    if (this.corrupt === null && isCorruption(e)) this.corrupt = (e as Error).message;
  }

  /** The error every call gets once the file is known to be damaged, or null. */
  refusal(): StoreUnavailableError | null {
    if (this.corrupt === null) return null;
    return new StoreUnavailableError(
      `the database file is corrupt (${this.corrupt}); the store accepts no reads or writes until it is restored from a backup or repaired and xcron is restarted`,
    );
  }

  /**
   * The readiness probe: reads the first entry of the tasks and runs b-trees (a few pages), so a
   * damaged root page fails readiness even while no request touches it. False when damaged.
   */
  probe(db: Database.Database): boolean {
    if (this.corrupt !== null) return false;
    try {
      db.prepare('SELECT id FROM tasks ORDER BY id LIMIT 1').get();
      db.prepare('SELECT status FROM runs ORDER BY rowid LIMIT 1').get();
      return true;
    } catch (e) {
      this.note(e);
      return false;
    }
  }
}
