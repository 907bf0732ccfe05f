# bench/floors/json_roundtrip.rb: the JSON floor under one echo call of funcd-ruby.
#
#     ruby json_roundtrip.rb --seconds S PAYLOAD
#
# JSON.generate(JSON.parse(payload)) in a loop for S seconds, in the Ruby funcd embeds; prints
# one JSON object in the form of bench/exec/spawn_floor.c's (calls, wall seconds, calls/s, this
# process's CPU microseconds in all and per call, start-up not counted, failures). bench/run
# runs it pinned to the server's CPU.
require 'json'

unless ARGV.length == 3 && ARGV[0] == '--seconds'
  warn 'usage: json_roundtrip.rb --seconds S PAYLOAD'
  exit 2
end
seconds = Float(ARGV[1])
payload = File.binread(ARGV[2]).force_encoding(Encoding::UTF_8)
expected = JSON.parse(payload)
failures = JSON.parse(JSON.generate(expected)) == expected ? 0 : 1
calls = 0
cpu0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
wall0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
deadline = wall0 + seconds
loop do
  256.times { JSON.generate(JSON.parse(payload)) }
  calls += 256
  break if Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline
end
cpu_us = (Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu0) * 1e6
wall = Process.clock_gettime(Process::CLOCK_MONOTONIC) - wall0
puts JSON.generate(
  calls: calls, wall_s: wall, calls_per_s: calls / wall, cpu_self_us: cpu_us, cpu_children_us: 0.0,
  cpu_us_per_call: cpu_us / calls, self_us_per_call: cpu_us / calls, children_us_per_call: 0.0,
  failures: failures
)
exit(failures.zero? ? 0 : 1)
