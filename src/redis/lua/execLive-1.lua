-- The live instances of a group (expiry after now). ARGV: group, now. Returns {address, value, ...}.
local h = KEYS[1]
local addrs = redis.call('ZRANGEBYSCORE', h .. ':g:' .. ARGV[1], '(' .. ARGV[2], '+inf')
local out = {}
for _, a in ipairs(addrs) do
  local v = redis.call('HGET', h, ARGV[1] .. '\n' .. a)
  if v then
    out[#out + 1] = a
    out[#out + 1] = v
  end
end
return out
