-- Flow control: a run ends and gives back its parallelism permit.
-- KEYS[1] = the flow key's base {<prefix>:flow:<key>}; ARGV[1] = the holder (run id). Returns 1 or 0.
return redis.call('ZREM', KEYS[1] .. ':par', ARGV[1])
