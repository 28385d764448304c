-- wrk script: optional bearer token / method / JSON body from the environment, and a one-line
-- JSON report with the percentiles wrk's --latency table leaves out (p95).
local token = os.getenv("BENCH_TOKEN")
local method = os.getenv("BENCH_METHOD")
local body = os.getenv("BENCH_BODY")
if method and method ~= "" then wrk.method = method end
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
