-- wrk script for benchmarks/_receiving.py: POST the bodies of $BODIES (one per line),
-- thread k of $THREADS sending bodies k, k + THREADS, ... (each body once per pass).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local threads = tonumber(os.getenv("THREADS"))
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local index = 0
function init(args)
  index = id
end
function request()
  local body = bodies[(index % #bodies) + 1]
  index = index + threads
  return wrk.format("POST", nil, nil, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(99),
    latency:percentile(50)))
end
