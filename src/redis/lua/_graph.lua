-- _graph.lua: helpers of the child-graph scripts (graphReserve, graphSettle), inlined by the loader.
-- Not a script of its own.
--
-- The child graph is one hash, KEYS[1] = {<prefix>}:graph: field = task id, value = JSON
--   {"r": rev of the newest task write recorded, "c": [children that write stored],
--    "p": {"<token>": {"c": [children], "t": reserved at (ms)}}}
-- The edges of a task are c plus the children of every reservation: a superset of what the task
-- stores at any moment, also while writes are in flight or after a node died half-way.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function load_node(key, id)
  local v = redis.call('HGET', key, id)
  if not v then return { r = 0, c = {}, p = {} } end
  local n = cjson.decode(v)
  n.r = n.r or 0
  n.c = n.c or {}
  n.p = n.p or {}
  return n
end

-- Every edge of a node: its recorded children and those of its reservations.
local function node_edges(n)
  local out = {}
  for _, c in ipairs(n.c) do out[#out + 1] = c end
  for _, p in pairs(n.p) do
    for _, c in ipairs(p.c) do out[#out + 1] = c end
  end
  return out
end

-- A reservation older than ttl ms belongs to a write that can no longer land (graph writes carry a
-- deadline of half that): its children join the recorded ones (its write may have landed before
-- the node that made it died) and the reservation goes.
local function fold_expired(n, now, ttl)
  local p = {}
  local set = {}
  for _, c in ipairs(n.c) do set[c] = true end
  for token, r in pairs(n.p) do
    if tonumber(r.t) + ttl < now then
      for _, c in ipairs(r.c) do
        if not set[c] then
          set[c] = true
          n.c[#n.c + 1] = c
        end
      end
    else
      p[token] = r
    end
  end
  n.p = p
end

local function save_node(key, id, n)
  if #n.c == 0 and next(n.p) == nil then
    redis.call('HDEL', key, id)
  else
    redis.call('HSET', key, id, cjson.encode(n))
  end
end
