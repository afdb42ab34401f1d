-- Reserves a change of a task's children (on_success) in the child graph, refusing a change that
-- closes a cycle. The check and the reservation are one step on one key, so of two concurrent
-- changes that would close a cycle between them, the second to arrive sees the first's edges.
-- The task write follows with the returned deadline (updateTask), then graphSettle.
-- KEYS[1]: {<prefix>}:graph (see _graph.lua).
-- ARGV: id, token, children (JSON array), check ('1': refuse cycles; '0': only record, a new task),
--       reservation lifetime (ms)
-- Returns {1, now_ms} (reserved), {0, id, child, ..., id} (a cycle) or {2} (too large to check).
--@include _graph.lua
local key = KEYS[1]
local id, token = ARGV[1], ARGV[2]
local children = cjson.decode(ARGV[3])
local ttl = tonumber(ARGV[5])
local now = now_ms()

if ARGV[4] == '1' then
  local seen = {}
  local stack = {}
  for _, c in ipairs(children) do stack[#stack + 1] = { c, { c } } end
  local visited = 0
  while #stack > 0 do
    local top = table.remove(stack)
    local n, path = top[1], top[2]
    if n == id then
      local out = { 0, id }
      for _, p in ipairs(path) do out[#out + 1] = p end
      return out
    end
    if not seen[n] then
      seen[n] = true
      visited = visited + 1
      if visited > 10000 then return { 2 } end
      for _, c in ipairs(node_edges(load_node(key, n))) do
        local np = {}
        for i, p in ipairs(path) do np[i] = p end
        np[#np + 1] = c
        stack[#stack + 1] = { c, np }
      end
    end
  end
end

local node = load_node(key, id)
fold_expired(node, now, ttl)
node.p[token] = { c = children, t = now }
save_node(key, id, node)
return { 1, now }
