-- _lib.lua: helpers inlined into slot scripts by the loader (a line `--@include _lib.lua`).
-- Not a script of its own.

-- Bytewise a < b. Lua's own `<` follows the server's LC_COLLATE; ZSET member order is bytewise.
local function bytes_lt(a, b)
  if a == b then return false end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- How many members of the ZSET `key` sort at or before (score, member) in (score, member) order.
-- O(log n): ZRANK when the member is there with that score, else a binary search among the
-- members sharing the score (they are ordered bytewise).
local function count_upto(key, score, member)
  local s = redis.call('ZSCORE', key, member)
  if s and tonumber(s) == tonumber(score) then
    return redis.call('ZRANK', key, member) + 1
  end
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local hi = redis.call('ZCOUNT', key, '-inf', score)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = redis.call('ZRANGE', key, mid, mid)[1]
    if bytes_lt(member, m) then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- How many members sort strictly before (score, member).
local function count_before(key, score, member)
  local s = redis.call('ZSCORE', key, member)
  if s and tonumber(s) == tonumber(score) then
    return redis.call('ZRANK', key, member)
  end
  return count_upto(key, score, member)
end

-- Appends a field and its value to a flat HSET argument list, unless the value is nil.
local function put(list, field, value)
  if value == nil then return end
  list[#list + 1] = field
  list[#list + 1] = value
end

-- The index in the ZSET `key` to read from after the cursor (ARGV-style: after_time ('' = from
-- the start), after_id), for the ordered per-slot reads (dueTasks, dueKeys, unfinishedRuns).
local function start_after(key, after_time, after_id)
  if after_time == '' then return 0 end
  return count_upto(key, after_time, after_id)
end

-- One page of a slot's due set (dueTasks, dueKeys): {id, score, id, score, ...} after the cursor.
-- args: after_time ('' = from the start), after_id, up_to, limit. Returns the rows, up_to and limit.
local function due_page(base, args)
  local due = base .. ':due'
  local limit = tonumber(args[4])
  local start = start_after(due, args[1], args[2])
  return redis.call('ZRANGE', due, start, start + limit - 1, 'WITHSCORES'), tonumber(args[3]), limit
end

-- Nullable string arguments: '' is null, otherwise the value follows a one-character marker.
local function opt(v)
  if v == '' then return nil end
  return string.sub(v, 2)
end

-- Sets a hash field, or deletes it when the value is nil (null is an absent field).
local function hset_or_del(key, field, value)
  if value == nil then
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, value)
  end
end

-- Moves a run between status counters of the slot.
local function count_status(base, from, to)
  if from then redis.call('HINCRBY', base .. ':runstat', from, -1) end
  if to then redis.call('HINCRBY', base .. ':runstat', to, 1) end
end

-- Deletes one run record and every index entry of it.
local function drop_run(base, run_id)
  local rk = base .. ':r:' .. run_id
  local r = redis.call('HMGET', rk, 'task_id', 'status')
  if r[1] then
    redis.call('ZREM', base .. ':runs:' .. r[1], run_id)
    count_status(base, r[2], nil)
    redis.call('DEL', rk, base .. ':log:' .. run_id, base .. ':logm:' .. run_id)
  end
  redis.call('ZREM', base .. ':open', run_id)
  redis.call('ZREM', base .. ':done', run_id)
  redis.call('ZREM', base .. ':all', run_id)
  redis.call('ZREM', base .. ':fail', run_id)
end

-- The daily report (src/store/report.ts): the upper edges (ms) of the lateness buckets, the same
-- list as LATENESS_EDGES there.
local REPORT_EDGES = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000}

-- Adds a finished run to a write's report tallies (`tally`: day -> field -> count): its status, and
-- its lateness bucket (l<i>) when it started (SUCCESS or FAIL). The day is its scheduled time's (UTC).
local function report_tally(tally, status, scheduled, start)
  local sched = tonumber(scheduled)
  local day = string.format('%d', math.floor(sched / 86400000))
  local t = tally[day]
  if not t then
    t = {}
    tally[day] = t
  end
  t[status] = (t[status] or 0) + 1
  if start and (status == 'SUCCESS' or status == 'FAIL') then
    local late = math.max(0, tonumber(start) - sched)
    local b = #REPORT_EDGES
    for i = 1, #REPORT_EDGES do
      if late < REPORT_EDGES[i] then
        b = i - 1
        break
      end
    end
    t['l' .. b] = (t['l' .. b] or 0) + 1
  end
end

-- Writes a write's report tallies: one hash per slot and day (B:rep:<day>), kept 400 days after
-- its first field was written. The expiry is set when a write adds a field (an HINCRBY answering
-- its own increment), not on every batch: a day's hash is written for about a day, so it still
-- expires about 400 days after its last write.
local function report_flush(base, tally)
  for day, t in pairs(tally) do
    local key = base .. ':rep:' .. day
    local added = false
    for f, n in pairs(t) do
      if redis.call('HINCRBY', key, f, n) == n then added = true end
    end
    if added then redis.call('EXPIRE', key, 34560000) end
  end
end

-- Deletes a task, its runs and every index entry of it. Returns its hash (flat), or {} if unknown.
local function drop_task(base, id)
  local tk = base .. ':t:' .. id
  local t = redis.call('HGETALL', tk)
  if #t == 0 then return t end
  local state = redis.call('HGET', tk, 'state')
  redis.call('DEL', tk)
  redis.call('ZREM', base .. ':ids', id)
  redis.call('ZREM', base .. ':st:' .. state, id)
  redis.call('ZREM', base .. ':due', id)
  redis.call('ZREM', base .. ':completed', id)
  local runs = redis.call('ZRANGE', base .. ':runs:' .. id, 0, -1)
  for _, rid in ipairs(runs) do drop_run(base, rid) end
  redis.call('DEL', base .. ':runs:' .. id)
  return t
end

-- The slot's fence: the epoch its lease is held with (nil when no lease) and its current epoch, in
-- one MGET. A token may write to the slot when it equals both (commitFires, claimFires).
local function fence_of(base)
  local le = redis.call('MGET', base .. ':lease', base .. ':epoch')
  local lease_epoch = nil
  if le[1] then lease_epoch = string.match(le[1], '^(%d+)|') end
  return lease_epoch, le[2]
end

-- Sorted-set writes of a batch script, gathered per key and written at the end with one ZADD and
-- one ZREM per key (and per ZB_CHUNK members) instead of one command per fire. The last write of a
-- member wins, as it would when run one by one. `zb` is a table: key -> member -> score | false.
local ZB_CHUNK = 1000
local function zb_put(zb, key, member, score)
  local k = zb[key]
  if not k then
    k = {}
    zb[key] = k
  end
  k[member] = score
end

local function zb_add(zb, key, score, member) zb_put(zb, key, member, score) end

local function zb_rem(zb, key, member) zb_put(zb, key, member, false) end

local function zb_flush(zb)
  for key, members in pairs(zb) do
    local add, rem = {}, {}
    for m, s in pairs(members) do
      if s then
        add[#add + 1] = s
        add[#add + 1] = m
        if #add >= 2 * ZB_CHUNK then
          redis.call('ZADD', key, unpack(add))
          add = {}
        end
      else
        rem[#rem + 1] = m
        if #rem >= ZB_CHUNK then
          redis.call('ZREM', key, unpack(rem))
          rem = {}
        end
      end
    end
    if #add > 0 then redis.call('ZADD', key, unpack(add)) end
    if #rem > 0 then redis.call('ZREM', key, unpack(rem)) end
  end
end
