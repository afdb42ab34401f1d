/**
 * Start-up errors about the SQLite store, explained: each message names the file (full path),
 * says what is wrong and what to do. main prints the message alone, without a stack trace.
 *
 * The cause is read from the error's code (SQLite's result code, or the errno of the directory
 * creation), never from its message text; permissions and missing directories are then told apart
 * by looking at the file system.
 */
import { accessSync, constants, statSync, statfsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import type { CheckResult } from './sqlite-check.js';

/** The store could not be opened at start; the message says why and what to do. */
export class StoreStartupError extends Error {
  override readonly name: string = 'StoreStartupError';
}

/** What the explanations look at on the file system (tests replace it). */
export interface FsView {
  kind(path: string): 'file' | 'dir' | 'other' | 'missing';
  /** Whether this process may read (r) or write (w) the path; null when that cannot be told. */
  access(path: string, mode: 'r' | 'w'): boolean | null;
  freeBytes(path: string): number | null;
  user(): string;
}

export const realFs: FsView = {
  kind(path) {
    try {
      const st = statSync(path);
      return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
    } catch {
      return 'missing';
    }
  },
  access(path, mode) {
    try {
      accessSync(path, mode === 'r' ? constants.R_OK : constants.W_OK);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? false : null;
    }
  },
  freeBytes(path) {
    try {
      const s = statfsSync(path);
      return s.bavail * s.bsize;
    } catch {
      return null;
    }
  },
  user() {
    try {
      const u = userInfo();
      return `${u.username} (uid ${u.uid})`;
    } catch {
      return `uid ${process.getuid?.() ?? '?'}`;
    }
  },
};

const codeOf = (e: unknown): string => {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : '';
};
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const MIB = 1024 * 1024;

/** The database file failed the start-up check. */
export function corruptFileError(file: string, check: CheckResult): StoreStartupError {
  const pragma = check.mode === 'quick' ? 'quick_check' : 'integrity_check';
  const found = check.problems.slice(0, 3).join('; ');
  return new StoreStartupError(
    `the database file ${file} is corrupt (PRAGMA ${pragma}: ${found}). xcron does not start on a damaged file. ` +
      `Stop every process using it, then restore ${file} from a backup (with its -wal and -shm files removed), ` +
      `or recover what is readable with: sqlite3 ${file} .recover | sqlite3 ${file}.recovered and point [store] sqlite_file at the result. ` +
      `Moving the damaged file (and its -wal and -shm files) aside starts xcron with an empty store.`,
  );
}

/** What is wrong with the directory that should hold the file, or null when it is a directory. */
function directoryProblem(dir: string, fs: FsView): string | null {
  let d = dir;
  for (;;) {
    const k = fs.kind(d);
    if (k === 'dir') return d === dir ? null : `the directory ${dir} does not exist and could not be created`;
    if (k !== 'missing') return `${d} is not a directory, so the data directory ${dir} cannot be created`;
    const up = dirname(d);
    if (up === d) return `the directory ${dir} does not exist`;
    d = up;
  }
}

/** Permission trouble on the file or its directory, or null when none can be seen. */
function permissionProblem(file: string, fs: FsView): string | null {
  const dir = dirname(file);
  const who = fs.user();
  if (fs.kind(file) === 'file') {
    if (fs.access(file, 'r') === false) return `xcron runs as ${who} and may not read ${file}`;
    if (fs.access(file, 'w') === false) return `xcron runs as ${who} and may not write ${file}`;
  }
  if (fs.kind(dir) === 'dir' && fs.access(dir, 'w') === false) {
    return `xcron runs as ${who} and may not write the directory ${dir} (SQLite creates its -wal and -shm files next to the database)`;
  }
  return null;
}

const PERMISSION_FIX = 'Give that user read and write access to the file and its directory (chown or chmod), or set data_dir (XCRON_DATA_DIR) to a directory it owns.';

/** Explains an error met while preparing, checking or opening the database file. */
export function explainStoreError(file: string, err: unknown, fs: FsView = realFs): StoreStartupError {
  if (err instanceof StoreStartupError) return err;
  const code = codeOf(err);
  const msg = messageOf(err);
  const dir = dirname(file);
  const say = (what: string, todo: string): StoreStartupError => new StoreStartupError(`cannot open the database file ${file}: ${what}. ${todo}`);

  // A directory in place of the file fails as CANTOPEN or as an I/O error, depending on the open.
  if (fs.kind(file) === 'dir') return say(`${file} is a directory, not a file`, 'Set [store] sqlite_file to a file name, or remove that directory.');
  if (code === 'ENOSPC' || code.startsWith('SQLITE_FULL')) {
    const free = fs.freeBytes(fs.kind(dir) === 'dir' ? dir : '/');
    const left = free === null ? '' : ` (${(free / MIB).toFixed(1)} MiB free)`;
    return say(`the disk is full${left}`, `Free space on the file system holding ${dir}, or set data_dir (XCRON_DATA_DIR) to a file system with room.`);
  }
  if (code === 'EROFS') return say(`${dir} is on a read-only file system`, 'Set data_dir (XCRON_DATA_DIR) to a writable directory, or mount that file system read-write.');
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EEXIST') {
    return say(directoryProblem(dir, fs) ?? `the directory ${dir} cannot be created (${code})`, 'Create the directory, or set data_dir (XCRON_DATA_DIR) to an existing writable directory.');
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return say(`xcron runs as ${fs.user()} and may not create the directory ${dir} (${code})`, 'Create it and give that user write access, or set data_dir (XCRON_DATA_DIR) to a directory it owns.');
  }
  if (code.startsWith('SQLITE_NOTADB')) {
    return say('the file is not an SQLite database, or its header is damaged', `Check that data_dir and [store] sqlite_file name xcron's database. If they do, restore ${file} from a backup, or move it aside to start with an empty store.`);
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return corruptFileError(file, { mode: 'quick', ok: false, problems: [msg], ms: 0 });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return say(
      `the file is locked by another process (SQLite: ${msg})`,
      `Another process (another xcron with locking, or a tool such as the sqlite3 shell) holds a lock on it for longer than 5 s. Find it with "fuser ${file}" or "lsof ${file}", stop it, and start xcron again.`,
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_AUTH')) {
    const where = directoryProblem(dir, fs);
    if (where) return say(where, 'Create the directory, or set data_dir (XCRON_DATA_DIR) to an existing writable directory.');
    const perm = permissionProblem(file, fs);
    if (perm) return say(perm, PERMISSION_FIX);
    if (code.startsWith('SQLITE_READONLY')) return say(`SQLite can only read it (${msg})`, `Check that the file system holding ${dir} is mounted read-write and that the file, its -wal and -shm files are writable. ${PERMISSION_FIX}`);
    return say(`SQLite cannot open it (${msg})`, `Check that ${dir} is a local, writable directory (network file systems are not supported) and that the file is readable and writable.`);
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return say(`an I/O error (SQLite: ${msg})`, `Check the disk holding ${dir} and the kernel log (dmesg). Network file systems are not supported.`);
  }
  const unknown = say(msg === '' ? 'unknown error' : `${msg}${code ? ` (${code})` : ''}`, `Check that ${dir} is a local, writable directory with free space; XCRON_LOG_LEVEL=debug prints the underlying error's stack.`);
  unknown.cause = err;
  return unknown;
}

/** The text main prints for a failed start: an explained error without a stack (unless `verbose`). */
export function startupFailureText(e: unknown, verbose = false): string {
  if (e instanceof StoreStartupError) {
    const cause = e.cause instanceof Error && verbose ? `\n${e.cause.stack ?? e.cause.message}` : '';
    return e.message + cause;
  }
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
