-- wrk script for WorkerTests: every 50th request goes to /stubborn (a handler that swallows its
-- interruption, so its worker must be replaced), the rest to /fast. done() prints one line the
-- test parses: how many of each were sent and how the answers came back.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent_fast, sent_stuck, ok, timed_out, other = 0, 0, 0, 0, 0
  counter = 0
end

function request()
  counter = counter + 1
  if counter % 50 == 0 then
    sent_stuck = sent_stuck + 1
    return wrk.format("GET", "/stubborn")
  end
  sent_fast = sent_fast + 1
  return wrk.format("GET", "/fast")
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 408 then timed_out = timed_out + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = { sent_fast = 0, sent_stuck = 0, ok = 0, timed_out = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(t) do t[key] = t[key] + thread:get(key) end
  end
  io.write(string.format(
    "funcd-result sent_fast=%d sent_stuck=%d ok=%d timed_out=%d other=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d max_latency_us=%d\n",
    t.sent_fast, t.sent_stuck, t.ok, t.timed_out, t.other, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency.max))
end
