-- wrk -t1 -c64 -d10s -s bench/create-wrk.lua http://127.0.0.1:PORT   (a running server, default config)
-- POSTs /xcron/createTask with a one-shot task 30-395 days ahead, a fresh body each request.
local base = (os.time() + 30 * 86400) * 1000
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local t = base + math.random(0, 365 * 86400000)
  local body = string.format('{"type":2,"format":"%d","callback":{"url":"http://127.0.0.1:9/never","body":{"i":%d}}}', t, n)
  return wrk.format("POST", "/xcron/createTask", nil, body)
end
