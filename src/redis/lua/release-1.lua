-- Hands a slot back: deletes the lease only if this node holds it with this token.
-- KEYS[1]: the slot's key base.
-- ARGV: token, node
-- Returns 1 (released) or 0 (not held).
local base = KEYS[1]
if redis.call('GET', base .. ':lease') == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('DEL', base .. ':lease')
  return 1
end
return 0
