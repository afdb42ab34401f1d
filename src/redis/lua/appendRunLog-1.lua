-- Appends log lines to a run, up to caps on the number of lines and their total length. Lines live
-- in a list (seq = position + 1); `B:logm:<run_id>` keeps the running totals.
-- KEYS[1]: the slot's key base.
-- ARGV: run_id, now, max_lines, max_bytes, then per line: its text and its length (as the caller
--       counts it)
-- Returns {accepted, dropped}, or {-1} when the run is unknown.
local base = KEYS[1]
local run_id, now, max_lines, max_bytes = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', base .. ':r:' .. run_id) == 0 then return {-1} end
local mk = base .. ':logm:' .. run_id
local lk = base .. ':log:' .. run_id
local m = redis.call('HMGET', mk, 'n', 'bytes')
local n, bytes = tonumber(m[1] or '0'), tonumber(m[2] or '0')
local accepted, total = 0, (#ARGV - 4) / 2
for i = 5, #ARGV, 2 do
  local len = tonumber(ARGV[i + 1])
  if n >= max_lines or bytes + len > max_bytes then break end
  redis.call('RPUSH', lk, now .. '|' .. ARGV[i])
  n = n + 1
  bytes = bytes + len
  accepted = accepted + 1
end
if accepted > 0 then redis.call('HSET', mk, 'n', n, 'bytes', bytes) end
return {accepted, total - accepted}
