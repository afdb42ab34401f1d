/**
 * Start-up errors about the store, explained (src/store/startup-errors.ts): every message names
 * the file by its full path, says what is wrong and what to do; main prints it without a stack.
 * The causes a root test process cannot produce for real (permissions, a full disk, a read-only
 * file system, I/O errors) are given as the errors SQLite and Node raise, with a fake file system
 * view; the others are produced for real in test/ops/store-faults.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { StoreStartupError, explainStoreError, startupFailureText, type FsView } from '../../src/store/startup-errors.js';

const FILE = '/srv/xcron/data/xcron.db';
const DIR = '/srv/xcron/data';

const sqliteError = (code: string, message: string): Error => Object.assign(new Error(message), { code });
const errnoError = (code: string): Error => Object.assign(new Error(`${code}: something, mkdir '${DIR}'`), { code });

/** A file system view: the paths listed exist with the given kind; access is denied where listed. */
function fakeFs(o: { kinds?: Record<string, 'file' | 'dir' | 'other'>; denied?: string[]; free?: number } = {}): FsView {
  const kinds: Record<string, 'file' | 'dir' | 'other'> = { '/': 'dir', '/srv': 'dir', '/srv/xcron': 'dir', [DIR]: 'dir', [FILE]: 'file', ...o.kinds };
  return {
    kind: (p) => kinds[p] ?? 'missing',
    access: (p, mode) => !(o.denied ?? []).includes(`${p}:${mode}`),
    freeBytes: () => o.free ?? null,
    user: () => 'xcron (uid 998)',
  };
}

function explain(err: Error, fs: FsView = fakeFs()): string {
  const e = explainStoreError(FILE, err, fs);
  expect(e).toBeInstanceOf(StoreStartupError);
  expect(e.message).toContain(FILE);
  return e.message;
}

describe('explainStoreError', () => {
  it('the file is not readable by the user xcron runs as', () => {
    const m = explain(sqliteError('SQLITE_CANTOPEN', 'unable to open database file'), fakeFs({ denied: [`${FILE}:r`, `${FILE}:w`] }));
    expect(m).toMatch(/xcron runs as xcron \(uid 998\) and may not read \/srv\/xcron\/data\/xcron\.db/);
    expect(m).toMatch(/chown or chmod/);
  });

  it('the file is read-only for that user (SQLITE_READONLY)', () => {
    const m = explain(sqliteError('SQLITE_READONLY', 'attempt to write a readonly database'), fakeFs({ denied: [`${FILE}:w`] }));
    expect(m).toMatch(/may not write \/srv\/xcron\/data\/xcron\.db/);
    expect(m).toMatch(/read and write access/);
  });

  it('the directory is not writable (SQLite needs its -wal and -shm files there)', () => {
    const m = explain(sqliteError('SQLITE_CANTOPEN', 'unable to open database file'), fakeFs({ kinds: { [FILE]: 'other' }, denied: [`${DIR}:w`] }));
    expect(m).toMatch(/may not write the directory \/srv\/xcron\/data/);
    expect(m).toMatch(/-wal and -shm/);
  });

  it('the directory cannot be created for lack of permission (EACCES from mkdir)', () => {
    const m = explain(errnoError('EACCES'), fakeFs({ kinds: { [DIR]: 'other' } }));
    expect(m).toMatch(/may not create the directory \/srv\/xcron\/data/);
    expect(m).toMatch(/data_dir \(XCRON_DATA_DIR\)/);
  });

  it('the directory is missing', () => {
    const fs = fakeFs();
    const view: FsView = { ...fs, kind: (p) => (p === DIR || p === FILE ? 'missing' : fs.kind(p)) };
    const m = explain(sqliteError('SQLITE_CANTOPEN', 'unable to open database file'), view);
    expect(m).toMatch(/the directory \/srv\/xcron\/data does not exist/);
    expect(m).toMatch(/Create the directory, or set data_dir/);
  });

  it('a path component is a file, not a directory (ENOTDIR)', () => {
    const fs = fakeFs({ kinds: { '/srv/xcron': 'file' } });
    const view: FsView = { ...fs, kind: (p) => (p === DIR || p === FILE ? 'missing' : fs.kind(p)) };
    const m = explain(errnoError('ENOTDIR'), view);
    expect(m).toMatch(/\/srv\/xcron is not a directory, so the data directory \/srv\/xcron\/data cannot be created/);
  });

  it('a directory in place of the file, whether SQLite says CANTOPEN or IOERR', () => {
    for (const err of [sqliteError('SQLITE_CANTOPEN', 'unable to open database file'), sqliteError('SQLITE_IOERR_READ', 'disk I/O error')]) {
      expect(explain(err, fakeFs({ kinds: { [FILE]: 'dir' } }))).toMatch(/\/srv\/xcron\/data\/xcron\.db is a directory, not a file/);
    }
  });

  it('the disk is full (SQLITE_FULL and ENOSPC), with the free space', () => {
    for (const err of [sqliteError('SQLITE_FULL', 'database or disk is full'), errnoError('ENOSPC')]) {
      const m = explain(err, fakeFs({ free: 512 * 1024 }));
      expect(m).toMatch(/the disk is full \(0\.5 MiB free\)/);
      expect(m).toMatch(/Free space on the file system holding \/srv\/xcron\/data/);
    }
  });

  it('a read-only file system (EROFS)', () => {
    expect(explain(errnoError('EROFS'))).toMatch(/read-only file system/);
  });

  it('locked by another process (SQLITE_BUSY), with how to find it', () => {
    const m = explain(sqliteError('SQLITE_BUSY', 'database is locked'));
    expect(m).toMatch(/locked by another process/);
    expect(m).toMatch(/fuser \/srv\/xcron\/data\/xcron\.db/);
  });

  it('not a database (SQLITE_NOTADB)', () => {
    expect(explain(sqliteError('SQLITE_NOTADB', 'file is not a database'))).toMatch(/not an SQLite database/);
  });

  it('corrupt (SQLITE_CORRUPT met while opening)', () => {
    const m = explain(sqliteError('SQLITE_CORRUPT', 'database disk image is malformed'));
    expect(m).toMatch(/is corrupt .*database disk image is malformed/);
    expect(m).toMatch(/restore .* from a backup/);
    expect(m).toMatch(/\.recover/);
  });

  it('an I/O error', () => {
    expect(explain(sqliteError('SQLITE_IOERR_READ', 'disk I/O error'))).toMatch(/an I\/O error .*Check the disk .*dmesg/);
  });

  it('an unknown error keeps its message and code; its stack only when verbose', () => {
    const cause = sqliteError('SQLITE_NOMEM', 'out of memory');
    const e = explainStoreError(FILE, cause, fakeFs());
    expect(e.message).toMatch(/out of memory \(SQLITE_NOMEM\)/);
    expect(startupFailureText(e)).not.toMatch(/\n\s+at /);
    expect(startupFailureText(e, true)).toMatch(/\n\s+at /);
  });

  it('prints an explained error without a stack, any other error with it', () => {
    const explained = explainStoreError(FILE, sqliteError('SQLITE_BUSY', 'database is locked'), fakeFs());
    expect(startupFailureText(explained)).toBe(explained.message);
    expect(startupFailureText(new Error('boom'))).toMatch(/^Error: boom\n\s+at /);
  });
});
