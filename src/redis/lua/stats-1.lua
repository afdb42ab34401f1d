-- Counts of one slot for /xcron/stats.
-- KEYS[1]: the slot's key base.
-- Returns {active, paused, completed, {status, count, status, count, ...}}.
local base = KEYS[1]
return {
  redis.call('ZCARD', base .. ':st:active'),
  redis.call('ZCARD', base .. ':st:paused'),
  redis.call('ZCARD', base .. ':st:completed'),
  redis.call('HGETALL', base .. ':runstat'),
}
