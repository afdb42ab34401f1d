-- The executor registry's helpers (execRegister, execList): KEYS[1] is `{<prefix>}:exec`, a hash
-- "<group>\n<address>" -> "<last_heartbeat>|<ttl_ms>|<registered_at>|<meta JSON or empty>";
-- KEYS[1]..':exp' scores each field by its expiry (last_heartbeat + ttl_ms), and
-- KEYS[1]..':g:'..<group> scores each address of the group by the same expiry.

-- Removes the instances that expired before `before` (ms epoch).
local function execPurge(h, before)
  local old = redis.call('ZRANGEBYSCORE', h .. ':exp', '-inf', '(' .. before)
  for _, f in ipairs(old) do
    redis.call('HDEL', h, f)
    redis.call('ZREM', h .. ':exp', f)
    local nl = string.find(f, '\n', 1, true)
    if nl then redis.call('ZREM', h .. ':g:' .. string.sub(f, 1, nl - 1), string.sub(f, nl + 1)) end
  end
end
