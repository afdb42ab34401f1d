/** The dashboard's state shared across views: the token, the auth mode, and the stats samples. */
import type { Percentiles, Stats } from './types.js';

const TOKEN_KEY = 'xcron.dashboard.token';

/** 'open': the server needs no token; 'token': ours is accepted; 'needed': we must sign in. */
export type AuthMode = 'open' | 'token' | 'needed' | 'unknown';

/** One stats poll: counters, plus rates per minute once there are earlier samples. */
export interface Sample {
  t: number;
  since: number | undefined;
  fired: number;
  succeeded: number;
  failed: number;
  missed: number;
  lat: Percentiles;
  cb: Percentiles;
  rFired?: number;
  rOk?: number;
  rFail?: number;
  rMiss?: number;
}

export interface State {
  token: string;
  auth: AuthMode;
  /** Server reachable at the last stats poll (null: not known yet). */
  up: boolean | null;
  /** Stats history for the charts. */
  samples: Sample[];
  lastStats: Stats | null;
  /** Where to go after signing in. */
  afterLogin: string;
  /** Cursor stacks of the task list and of the runs table (for "previous page"). */
  listPrev: string[];
  runsPrev: string[];
}

function readToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export const S: State = {
  token: readToken(),
  auth: 'unknown',
  up: null,
  samples: [],
  lastStats: null,
  afterLogin: '#/',
  listPrev: [],
  runsPrev: [],
};

/** Keeps the token for this tab, or on this device with `remember`; '' forgets it. */
export function storeToken(token: string, remember: boolean): void {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
    if (token) (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
  } catch {
    // Storage disabled: the token lives in memory only.
  }
  S.token = token;
}

let authListener: () => void = () => undefined;

/** Registers what redraws the auth status (one listener: the header). */
export function onAuthChange(fn: () => void): void {
  authListener = fn;
}

/** Tells the header that the auth mode, the token or reachability changed. */
export function authChanged(): void {
  authListener();
}
