-- wrk script of the Parrain benchmarks (bench/redirect.py drives it; bench/README.md explains the figures).
--
-- Arguments after `--`:
--   redirect <path> [<run>]      GET <path> as a browser would (wrk never follows the 302)
--   signups <path> <key> <run>   POST a JSON signup with the Bearer key; the e-mail is unique per run,
--                                wrk thread and request, so every request is a new subscriber
--
-- done() prints "BENCH_JSON {...}" with the figures and the number of requests written
-- (`sent`): requests still in flight when wrk stops at its deadline are answered by the server
-- after wrk has gone, so the rows recorded are compared with `sent` as well as with the answers;
-- and "BENCH_QUANTILES ..." with the latency (microseconds) at each 0.1% of the distribution.
-- wrk's own counters: `status` counts responses >= 400; `timeout` counts responses that came later
-- than --timeout (they are also in `requests`); `read`/`write` are requests lost on a socket error.

local threads = {}

-- A real browser's User-Agent: an empty one would be classified as a bot and set no cookie.
local UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   mode = args[1]
   path = args[2]
   sent = 0
   if mode == "signups" then
      headers = {
         ["Authorization"] = "Bearer " .. args[3],
         ["Content-Type"] = "application/json",
         ["User-Agent"] = UA,
      }
      run = args[4]
   elseif mode == "redirect" then
      fixed = wrk.format("GET", path, {["User-Agent"] = UA})
   else
      error("unknown mode: " .. tostring(mode))
   end
end

function request()
   sent = sent + 1
   if mode == "signups" then
      local body = string.format('{"email": "friend-%s-%d-%d@example.com"}', run, tid, sent)
      return wrk.format("POST", path, headers, body)
   end
   return fixed
end

function done(summary, latency, requests)
   -- wrk calls request() once on the first thread before the run, to check the script; nothing is sent.
   local total_sent = -1
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
   end
   local e = summary.errors
   -- The latency distribution at every 0.1%: bench/redirect.py merges rounds of the same target with it.
   local quantiles = {}
   for i = 1, 1000 do
      quantiles[i] = string.format("%d", latency:percentile(i / 10))
   end
   io.write("BENCH_QUANTILES " .. table.concat(quantiles, " ") .. "\n")
   io.write(string.format(
      'BENCH_JSON {"duration_us": %d, "requests": %d, "sent": %d, "connect": %d, "read": %d, "write": %d, '
         .. '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.duration, summary.requests, total_sent, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean
   ))
end
