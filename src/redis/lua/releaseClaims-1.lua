-- Gives claimed runs back (their node lost the slot before delivering them): the claimer mark is
-- removed if it is still this node's, so the slot's new owner delivers them from the outbox.
-- KEYS[1]: the slot's key base.
-- ARGV: node, then run_id per run.
-- Returns the number of runs given back.
local base = KEYS[1]
local node = ARGV[1]
local n = 0
for i = 2, #ARGV do
  local rk = base .. ':r:' .. ARGV[i]
  if redis.call('HGET', rk, 'claimed_by') == node then
    redis.call('HDEL', rk, 'claimed_by')
    n = n + 1
  end
end
return n
