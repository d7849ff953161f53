-- wrk script for bench/http.sh: after the run, one machine-readable line on stdout:
--   RESULT requests=N rps=R p50_us=X p99_us=Y errors=E non2xx=M
-- (errors: connect/read/write/timeout; non2xx: responses with a status outside 200-399, which wrk counts in
-- summary.errors.status). Latency percentiles are wrk's (per request, measured by each connection).
done = function(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d rps=%.1f p50_us=%.0f p99_us=%.0f errors=%d non2xx=%d\n",
      summary.requests, summary.requests / secs,
      latency:percentile(50), latency:percentile(99),
      e.connect + e.read + e.write + e.timeout, e.status))
end
