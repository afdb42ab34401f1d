-- Flow control: admits one fire under a flow key's limit, or says how long to wait.
-- KEYS[1] = the flow key's base {<prefix>:flow:<key>}; derived: <base>:rate, <base>:par.
-- ARGV: rate (0: none), period_ms, parallelism (0: none), holder (the run id), lease_ms (how long a
-- parallelism permit is held at most, if never released: a crashed node's permits expire).
-- Returns 0 when admitted (an admission recorded in the rate window, a permit held by the holder),
-- else the ms to wait before asking again. Times come from the Redis clock (one clock for all nodes).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local par = tonumber(ARGV[3])
local holder = ARGV[4]
local lease = tonumber(ARGV[5])
local rk = KEYS[1] .. ':rate'
local pk = KEYS[1] .. ':par'
local wait = 0
if par > 0 then
  redis.call('ZREMRANGEBYSCORE', pk, '-inf', now)
  if not redis.call('ZSCORE', pk, holder) and redis.call('ZCARD', pk) >= par then
    -- A permit frees when a run ends (on another node: unknown here): ask again soon.
    wait = 50
  end
end
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', rk, '-inf', now - period)
  if redis.call('ZCARD', rk) >= rate then
    local oldest = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + period - now
    if w < 1 then w = 1 end
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
if par > 0 then
  redis.call('ZADD', pk, now + lease, holder)
  if redis.call('PTTL', pk) < lease then redis.call('PEXPIRE', pk, lease) end
end
if rate > 0 then
  redis.call('ZADD', rk, now, holder)
  redis.call('PEXPIRE', rk, period + 1000)
end
return 0
