/**
 * The executor registry in a 3-node cluster of real ./xcron_server processes on one real
 * redis-server: instances registered through different nodes are seen by every node; tasks created
 * through any node are routed among them (lru, broadcast) by the slot owner; an instance that
 * stops its heartbeat drops out everywhere; a group with no live instance fails the run clearly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterSuite } from '../cluster/suite.js';
import { CallbackReceiver, XNode, until, type RunView } from '../cluster/procs.js';

const SLOTS = 16;
let rec: CallbackReceiver;
// Every slot owned by its preferred node before the first test: the lru choice is state of the
// slot owner's node, so no handover may move a task's slot while a test fires it.
const { nodes } = clusterSuite({ tag: 'exec', slots: SLOTS });
beforeAll(async () => {
  rec = await CallbackReceiver.start();
});
afterAll(() => rec?.close());

interface ExecutorsView {
  groups: { group: string; live: number; instances: { address: string; live: boolean }[] }[];
}
const register = (n: XNode, group: string, address: string, ttl_ms = 60_000) => n.call<{ created: boolean }>('POST', '/xcron/registerExecutor', { group, address, ttl_ms });
const task = (group: string, route: string, retry = { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 }) => ({ type: 1, format: '0 0 1 1 *', retry, callback: { executor: group, route, body: {} } });

async function fire(via: XNode, taskId: string): Promise<RunView> {
  const t = await via.call<{ run_id: string }>('POST', '/xcron/triggerTask', { task_id: taskId });
  expect(t.status).toBe(200);
  const runs = await until(`run ${t.body.data.run_id}`, () => via.runs(taskId), (rs) => rs.some((r) => r.run_id === t.body.data.run_id && (r.status === 'SUCCESS' || r.status === 'FAIL')));
  return runs.find((r) => r.run_id === t.body.data.run_id)!;
}

describe('executor registry in a 3-node cluster', () => {
  it('registrations through any node are seen by every node; fires are routed by the strategy among them', async () => {
    const [a, b, c] = nodes as [XNode, XNode, XNode];
    expect((await register(a, 'pool', rec.url('/pool/1'))).body.data.created).toBe(true);
    expect((await register(b, 'pool', rec.url('/pool/2'))).body.data.created).toBe(true);
    expect((await register(c, 'pool', rec.url('/pool/3'))).body.data.created).toBe(true);
    expect((await register(a, 'pool', rec.url('/pool/3'))).body.data.created).toBe(false); // a heartbeat through another node
    for (const n of nodes) {
      const v = await n.call<ExecutorsView>('GET', '/xcron/executors');
      expect(v.body.data.groups.map((g) => [g.group, g.live, g.instances.map((i) => i.address)])).toEqual([['pool', 3, ['/pool/1', '/pool/2', '/pool/3'].map((p) => rec.url(p))]]);
    }
    const lru = (await b.create(task('pool', 'lru'))).task_id;
    for (let i = 0; i < 3; i++) expect((await fire(nodes[i]!, lru)).status).toBe('SUCCESS');
    expect(rec.forTask(lru).map((x) => x.path).sort()).toEqual(['/pool/1', '/pool/2', '/pool/3']);

    const bc = (await c.create(task('pool', 'broadcast'))).task_id;
    const run = await fire(a, bc);
    expect(run.status).toBe('SUCCESS');
    expect(rec.forTask(bc).map((x) => x.path).sort()).toEqual(['/pool/1', '/pool/2', '/pool/3']);
  });

  it('an instance that misses its ttl drops out on every node; an empty group fails the run clearly', async () => {
    const [a, b, c] = nodes as [XNode, XNode, XNode];
    await register(a, 'short', rec.url('/short/1'), 1_000);
    await register(b, 'short', rec.url('/short/2'), 120_000);
    for (const n of nodes) {
      await until(`${n.name} sees /short/1 expire`, () => n.call<ExecutorsView>('GET', '/xcron/executors?group=short'), (v) => v.body.data.groups[0]?.live === 1);
    }
    const id = (await c.create(task('short', 'round_robin'))).task_id;
    await new Promise((r) => setTimeout(r, 600)); // past each node's live-list cache
    for (let i = 0; i < 2; i++) expect((await fire(nodes[i]!, id)).status).toBe('SUCCESS');
    expect(rec.forTask(id).map((x) => x.path)).toEqual(['/short/2', '/short/2']);

    expect((await b.call('POST', '/xcron/unregisterExecutor', { group: 'short', address: rec.url('/short/2') })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 600));
    const failed = await fire(c, id);
    expect(failed).toMatchObject({ status: 'FAIL', error: 'no live executor in group "short"' });
  });
});
