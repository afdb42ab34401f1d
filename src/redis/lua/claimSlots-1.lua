-- Fixes the cluster's slot count on first use and returns the stored value.
-- KEYS[1]: "{<prefix>}:slots". ARGV: this node's slot count.
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return v
