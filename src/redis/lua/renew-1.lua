-- Extends a slot's lease if this node still holds it with this token (compare, then PEXPIRE).
-- KEYS[1]: the slot's key base.
-- ARGV: token, node, lease_ms
-- Returns 1 (renewed) or 0 (lost: expired or taken).
local base = KEYS[1]
if redis.call('GET', base .. ':lease') == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('PEXPIRE', base .. ':lease', ARGV[3])
  return 1
end
return 0
