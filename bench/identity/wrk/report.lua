-- Stratus identity bench: shared wrk hooks, loaded by issue.lua / validate.lua.
-- Counts responses outside 2xx per thread and, when wrk finishes, prints one
-- line "BENCH_RESULT {json}" that bench/identity/run.ts parses.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad_status = 0
  last_bad = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad_status = bad_status + 1
    last_bad = status
  end
end

function done(summary, latency, requests)
  local bad, last = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("bad_status") or 0)
    local l = t:get("last_bad") or 0
    if l ~= 0 then last = l end
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"seconds":%.3f,"rps":%.3f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
    '"non2xx":%d,"last_non2xx_status":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    bad, last, e.connect, e.read, e.write, e.timeout))
end
