-- Takes a slot's lease: free, or already held by this node (a re-take after a lost renewal).
-- Each take increments the slot's epoch, the fencing token.
-- KEYS[1]: the slot's key base.
-- ARGV: node, lease_ms
-- Returns {1, epoch} when taken, {0, current lease value "<epoch>|<node>"} when held by another.
local base = KEYS[1]
local lease = redis.call('GET', base .. ':lease')
if lease then
  local holder = string.match(lease, '^%d+|(.*)$')
  if holder ~= ARGV[1] then return {0, lease} end
end
local epoch = redis.call('INCR', base .. ':epoch')
redis.call('SET', base .. ':lease', epoch .. '|' .. ARGV[1], 'PX', ARGV[2])
return {1, epoch}
