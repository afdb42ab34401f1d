-- Removes an executor instance. ARGV: group, address. Returns 1 when it was registered, else 0.
local h = KEYS[1]
local f = ARGV[1] .. '\n' .. ARGV[2]
local n = redis.call('HDEL', h, f)
redis.call('ZREM', h .. ':exp', f)
redis.call('ZREM', h .. ':g:' .. ARGV[1], ARGV[2])
return n
