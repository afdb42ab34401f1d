/**
 * The executor registry's endpoints: POST /xcron/registerExecutor (calling it again is the
 * heartbeat), POST /xcron/unregisterExecutor and GET /xcron/executors. With API tokens, the two
 * writes take a token of role `executor` (or `admin`); the listing a `read` one.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { type Code, Codes, XcronError } from '../errors.js';
import { ExecutorService, MAX_META_BYTES, MAX_TTL_MS, MIN_TTL_MS, checkExecutorAddress, parseRegistration } from '../service/index.js';
import { checkExecutorGroup } from '../task/index.js';
import { reply, xcronOperations } from './contract/registry.js';
import type { ApiDeps } from './deps.js';
import { objectBody } from './request.js';

const Group = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).meta({ description: 'Executor group name (1 to 64 characters of A-Z a-z 0-9 _ . : -).', examples: ['billing'] });
const Address = z.string().min(1).max(2048).meta({ description: "The instance's callback URL (absolute http/https, no credentials; the same destination policy as task callbacks).", examples: ['http://10.0.0.7:8080/run'] });
const Meta = z.record(z.string(), z.unknown()).meta({ description: `Free-form JSON object (at most ${MAX_META_BYTES} bytes), shown in the listing.` });

const RegisterInput = z
  .strictObject({
    group: Group,
    address: Address,
    ttl_ms: z.int().min(MIN_TTL_MS).max(MAX_TTL_MS).meta({ description: 'The instance drops out when no heartbeat comes within this time (ms). Heartbeat at a third of it or more often.' }),
    meta: Meta.nullable().optional(),
  })
  .meta({ id: 'RegisterExecutorInput' });
const UnregisterInput = z.strictObject({ group: Group, address: Address }).meta({ id: 'UnregisterExecutorInput' });

const Instance = z
  .object({
    address: z.string(),
    ttl_ms: z.int(),
    meta: z.record(z.string(), z.unknown()).nullable(),
    last_heartbeat: z.number().meta({ description: 'ms epoch of the last register call.' }),
    registered_at: z.number().meta({ description: 'ms epoch of the first register call (since it was last absent).' }),
    expires_at: z.number().meta({ description: 'last_heartbeat + ttl_ms.' }),
    live: z.boolean().meta({ description: 'True while expires_at is ahead of now: fires may be routed to it.' }),
  })
  .meta({ id: 'ExecutorInstance' });
const RegisteredData = z
  .object({ group: z.string(), address: z.string(), ttl_ms: z.int(), last_heartbeat: z.number(), registered_at: z.number(), expires_at: z.number(), created: z.boolean().meta({ description: 'False: a heartbeat of a registered instance.' }) })
  .meta({ id: 'RegisteredExecutor' });
const ExecutorsData = z
  .object({
    now: z.number().meta({ description: "The node's time (ms epoch) the live flags were computed at." }),
    groups: z.array(z.object({ group: z.string(), live: z.int().meta({ description: 'Live instances.' }), instances: z.array(Instance) }).meta({ id: 'ExecutorGroup' })),
  })
  .meta({ id: 'Executors' });

const operation = xcronOperations('executors');

/** Register and unregister name one instance `(group, address)`, so both refuse a bad group or address alike. */
const instanceOp = <D extends z.ZodType>(operationId: string, spec: { summary: string; description: string; body: z.ZodType; data: D }, moreErrors: Code[]) =>
  operation.executor(operationId, { ...spec, errors: [Codes.EXECUTOR_GROUP, Codes.EXECUTOR_ADDRESS, ...moreErrors] });

export const registerExecutorOp = instanceOp(
  'registerExecutor',
  {
    summary: 'Register an executor instance, or send its heartbeat',
    description: 'Upserts the instance `(group, address)`: the first call registers it, each later call is its heartbeat (refreshes `last_heartbeat`, `ttl_ms` and `meta`). Tasks with `callback.executor` are routed among the live instances of their group.',
    body: RegisterInput,
    data: RegisteredData,
  },
  [Codes.INVALID_OPTION, Codes.SSRF_REFUSED],
);

export const unregisterExecutorOp = instanceOp(
  'unregisterExecutor',
  {
    summary: 'Unregister an executor instance',
    description: 'Removes the instance at once (an executor shutting down); fires are no longer routed to it.',
    body: UnregisterInput,
    data: z.object({ group: z.string(), address: z.string(), removed: z.literal(true) }).meta({ id: 'UnregisteredExecutor' }),
  },
  [Codes.EXECUTOR_NOT_FOUND],
);

export const executorsOp = operation.read('listExecutors', {
  path: '/xcron/executors',
  summary: 'List executor groups and instances',
  description: 'Every group with its instances, their last heartbeat and whether they are live. Instances expired for more than 10 minutes are removed.',
  query: z.object({ group: Group.optional().meta({ description: 'Only this group.' }) }),
  data: ExecutorsData,
  errors: [Codes.EXECUTOR_GROUP],
});

export function executorRoutes(app: Hono, deps: ApiDeps): void {
  const service = new ExecutorService({ store: deps.store, clock: deps.clock });

  app.post(registerExecutorOp.path, async (c) => {
    const input = parseRegistration(await objectBody(c, ['group', 'address', 'ttl_ms', 'meta']));
    const why = deps.destinations ? await deps.destinations.urlRefusal(input.address) : null;
    if (why !== null) throw new XcronError(Codes.SSRF_REFUSED, 400, `'address' is refused by the callback destination policy: ${why}`);
    const { instance: i, created } = await service.register(input);
    return reply(c, registerExecutorOp, { group: i.group, address: i.address, ttl_ms: i.ttl_ms, last_heartbeat: i.last_heartbeat, registered_at: i.registered_at, expires_at: i.last_heartbeat + i.ttl_ms, created });
  });

  app.post(unregisterExecutorOp.path, async (c) => {
    const b = await objectBody(c, ['group', 'address']);
    const group = checkExecutorGroup(b.group, 'group');
    const address = checkExecutorAddress(b.address);
    await service.unregister(group, address);
    return reply(c, unregisterExecutorOp, { group, address, removed: true });
  });

  app.get(executorsOp.path, async (c) => {
    const g = c.req.query('group');
    const data = await service.list(g === undefined || g === '' ? null : checkExecutorGroup(g, 'group'));
    return reply(c, executorsOp, {
      now: data.now,
      groups: data.groups.map((x) => ({ group: x.group, live: x.live, instances: x.instances.map(({ group: _g, ...i }) => i) })),
    });
  });
}
