-- wrk script for bench/: cycles through the request paths listed in the file $BENCH_PATHS (one per
-- line), counts responses by status and by RFC 9211 Cache-Status (hit; fwd=miss, collapsed into
-- another request's query, or stale; none), and prints
-- one JSON line at the end (counters are per-thread globals, summed in done()) for bench/load.py to read. Latencies are in microseconds.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  paths = {}
  for line in io.lines(os.getenv("BENCH_PATHS")) do
    if line ~= "" then table.insert(paths, line) end
  end
  index = (id or 1) - 1
  hit, miss, collapsed, stale, none, s2xx, s304, s4xx, s429, s5xx = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index])
end

function response(status, headers, body)
  local cache = headers["Cache-Status"] or headers["cache-status"]
  if cache == nil then
    none = none + 1
  elseif string.find(cache, "collapsed", 1, true) then
    collapsed = collapsed + 1
  elseif string.find(cache, "fwd=stale", 1, true) then
    stale = stale + 1
  elseif string.find(cache, "fwd=", 1, true) == nil and string.find(cache, "hit", 1, true) then
    hit = hit + 1
  else
    miss = miss + 1
  end
  if status == 304 then s304 = s304 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  elseif status >= 200 and status < 300 then s2xx = s2xx + 1 end
end

function done(summary, latency, requests)
  local totals = { hit = 0, miss = 0, collapsed = 0, stale = 0, none = 0, s2xx = 0, s304 = 0, s4xx = 0, s429 = 0, s5xx = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do totals[key] = totals[key] + (thread:get(key) or 0) end
  end
  local errors = summary.errors
  local parts = {
    string.format('"requests": %d', summary.requests),
    string.format('"duration_us": %d', summary.duration),
    string.format('"bytes": %d', summary.bytes),
    string.format('"p50_us": %d', latency:percentile(50)),
    string.format('"p90_us": %d', latency:percentile(90)),
    string.format('"p99_us": %d', latency:percentile(99)),
    string.format('"max_us": %d', latency.max),
    string.format('"socket_errors": %d', errors.connect + errors.read + errors.write + errors.timeout),
  }
  for key, value in pairs(totals) do table.insert(parts, string.format('"%s": %d', key, value)) end
  io.write("BENCH_JSON {" .. table.concat(parts, ", ") .. "}\n")
end
