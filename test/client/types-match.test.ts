/**
 * The client package (clients/typescript) is published on its own, so it declares the API's shapes
 * itself. The live figures of /xcron/stats are declared three times: by the server's scheduler
 * (src/scheduler/stats.ts), by the API contract (src/api/contract/schemas.ts, which /openapi.json
 * is generated from) and by the client (clients/typescript/src/types.ts). These checks keep them
 * equal: at compile time (`npm run typecheck` type-checks the tests), and at run time through the
 * contract's schema.
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { LiveStats as ClientLiveStats } from '../../clients/typescript/src/types.js';
import { LiveStats as LiveStatsSchema } from '../../src/api/contract/schemas.js';
import type { LiveStats as ServerLiveStats } from '../../src/scheduler/stats.js';

/** True when A and B are the same type (neither has a property or a type the other lacks). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

const sameAsServer: Equal<ClientLiveStats, ServerLiveStats> = true;
const sameAsContract: Equal<ClientLiveStats, z.output<typeof LiveStatsSchema>> = true;

describe("the client's LiveStats", () => {
  it('is the type the server and the contract declare', () => {
    expect([sameAsServer, sameAsContract]).toEqual([true, true]);
  });

  it('has exactly the fields of the contract schema, and a value of it passes the schema', () => {
    const summary = { count: 3, p50: 1, p90: 2, p99: 2, max: 2 };
    const sample: ClientLiveStats = { since: 1_700_000_000_000, fired: 3, skipped: 0, missed: 0, succeeded: 2, failed: 1, success_rate: 2 / 3, failure_rate: 1 / 3, lateness_ms: summary, callback_latency_ms: summary };
    expect(Object.keys(sample).sort()).toEqual(Object.keys(LiveStatsSchema.shape).sort());
    expect(LiveStatsSchema.strict().parse(sample)).toEqual(sample);
  });
});
