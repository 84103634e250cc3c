-- wrk script for bench/reviewers.py: random byte ranges of one file, as a video player seeking.
-- Arguments (after --): file size, smallest and largest range, Cookie header ("" for none),
-- number of reviewer addresses to spread over X-Forwarded-For (0 for none).
-- No response() callback on purpose: with one, wrk copies every body into Lua, which cut its
-- rate against nginx to a third here. Answers of 400 and up are counted by wrk itself
-- (errors.status); bench/reviewers.py checks the bodies with a sampling client beside the load
-- and the mean answer size against the ranges asked for.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("id", #threads)
end

function init(args)
   size = tonumber(args[1])
   low = tonumber(args[2])
   high = tonumber(args[3])
   cookie = args[4] or ""
   addresses = tonumber(args[5] or "0")
   math.randomseed(os.time() * 1000 + id)
end

function request()
   local length = math.random(low, high)
   local first = math.random(0, size - length)
   local headers = { Range = string.format("bytes=%d-%d", first, first + length - 1) }
   if cookie ~= "" then
      headers["Cookie"] = cookie
   end
   if addresses > 0 then
      local n = math.random(0, addresses - 1)
      headers["X-Forwarded-For"] = string.format("10.77.%d.%d", math.floor(n / 256), n % 256)
   end
   return wrk.format("GET", nil, headers)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH-RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "status_errors": %d, '
         .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
         .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, summary.duration, summary.bytes, e.status,
      e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
