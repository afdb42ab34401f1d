-- Takes a slot's lease: free, or already held by this node (a re-take after a lost renewal).
-- Each take raises the slot's epoch, the fencing token: to the server's clock in milliseconds, or
-- by one when the stored epoch is already there or past it. Strictly increasing on one Redis, as
-- with INCR; the clock floor is for a failover to a replica that had not received the last take
-- (asynchronous replication): the rolled-back epoch would otherwise be handed out again, and the
-- node still holding that token would pass the fence. With the floor, the new take's token is the
-- new primary's current time, which no earlier take used unless that primary's clock is behind the
-- old one's by the exact gap between the two takes.
-- KEYS[1]: the slot's key base.
-- ARGV: node, lease_ms
-- Returns {1, epoch} when taken, {0, current lease value "<epoch>|<node>"} when held by another.
local base = KEYS[1]
local lease = redis.call('GET', base .. ':lease')
if lease then
  local holder = string.match(lease, '^%d+|(.*)$')
  if holder ~= ARGV[1] then return {0, lease} end
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = math.max((tonumber(redis.call('GET', base .. ':epoch')) or 0) + 1, now_ms)
local e = string.format('%d', epoch)
redis.call('SET', base .. ':epoch', e)
redis.call('SET', base .. ':lease', e .. '|' .. ARGV[1], 'PX', ARGV[2])
return {1, epoch}
