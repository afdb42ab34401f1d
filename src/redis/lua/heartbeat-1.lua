-- Records this node's heartbeat (Redis server time, so node clocks do not matter) and returns
-- the live members: nodes seen within the lease time. With leave = 1 the node is removed instead.
-- KEYS[1]: the members ZSET "{<prefix>}:members".
-- ARGV: node, lease_ms, leave (0|1)
-- Returns {server_time_ms, member, last_seen_ms, member, last_seen_ms, ...} (Redis server time):
-- a member's leases, renewed right after its heartbeat, expire about lease_ms after its last one.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
local out = {now}
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf', 'WITHSCORES')
for _, v in ipairs(live) do out[#out + 1] = v end
return out
