/**
 * The stats poll (every 3 s on every page): reachability for the header, and the samples the
 * overview's charts draw (rates per minute over the last few samples).
 */
import { api, statusOf } from './api.js';
import { S, authChanged, type Sample } from './state.js';
import type { Stats } from './types.js';
import { statsPolled } from './view.js';

export const POLL_MS = 3000;
const MAX_SAMPLES = 200;

/** The counters of one poll; rates are added by `withRates`. */
function sampleOf(st: Stats, now: number): Sample {
  const live = st.live ?? {};
  return {
    t: now,
    since: live.since,
    fired: live.fired || 0,
    succeeded: live.succeeded || 0,
    failed: live.failed || 0,
    missed: (live.missed || 0) + (live.skipped || 0),
    lat: live.lateness_ms || {},
    cb: live.callback_latency_ms || {},
  };
}

/** Rates over the last ~15 s (several samples), so a 1-2 s schedule does not saw-tooth. */
function withRates(sample: Sample, samples: readonly Sample[]): Sample {
  const prev = samples[Math.max(0, samples.length - 5)];
  if (!prev) return sample;
  const per = 60_000 / Math.max(1, sample.t - prev.t);
  return {
    ...sample,
    rFired: (sample.fired - prev.fired) * per,
    rOk: (sample.succeeded - prev.succeeded) * per,
    rFail: (sample.failed - prev.failed) * per,
    rMiss: (sample.missed - prev.missed) * per,
  };
}

export async function pollStats(): Promise<void> {
  if (S.auth === 'needed' && !S.token) return;
  try {
    const st = await api<Stats>('GET', '/xcron/stats');
    S.up = true;
    const sample = sampleOf(st, Date.now());
    const last = S.samples[S.samples.length - 1];
    if (last && (last.since !== sample.since || sample.fired < last.fired)) S.samples = []; // server restarted
    S.samples.push(withRates(sample, S.samples));
    if (S.samples.length > MAX_SAMPLES) S.samples.shift();
    S.lastStats = st;
  } catch (e) {
    const status = statusOf(e);
    if (status === 401) S.auth = 'needed';
    else if (status === 0 || (status !== null && status >= 500)) S.up = false;
  }
  authChanged();
  statsPolled();
}
