-- wrk script: at the end of a run print one machine-readable line with throughput, latency percentiles
-- (from wrk's own full-resolution histogram) and every kind of error, for bench/run.sh to parse:
--   WRK_RESULT requests=N duration_s=S rps=R p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=.. errors=E non2xx=X
-- Usage: wrk -t2 -c32 -d10s -s bench/wrk_report.lua http://127.0.0.1:PORT/path
-- Optional: WRK_TOKEN in the environment is sent as X-Auth-Token.

local token = os.getenv("WRK_TOKEN")
if token and token ~= "" then
  wrk.headers["X-Auth-Token"] = token
end
wrk.headers["Accept"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local function ms(p) return latency:percentile(p) / 1000.0 end
  io.write(string.format(
    "WRK_RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f " ..
    "max_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests, secs, summary.requests / secs, ms(50), ms(90), ms(99), ms(99.9),
    latency.max / 1000.0, e.connect + e.read + e.write + e.timeout, e.status))
end
