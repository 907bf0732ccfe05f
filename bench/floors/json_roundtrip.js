// bench/floors/json_roundtrip.js: the JSON floor under one echo call of funcd-node.
//
//     node json_roundtrip.js --seconds S PAYLOAD
//
// JSON.stringify(JSON.parse(text)) of the payload (as a string, as the glue gets it) in a loop
// for S seconds, in the Node funcd embeds; prints one JSON object in the form of
// bench/exec/spawn_floor.c's (calls, wall seconds, calls/s, this process's CPU microseconds in
// all and per call, start-up not counted, failures). bench/run runs it pinned to the server's CPU.
'use strict';
const fs = require('fs');

function main(argv) {
  if (argv.length !== 5 || argv[2] !== '--seconds') {
    process.stderr.write('usage: json_roundtrip.js --seconds S PAYLOAD\n');
    return 2;
  }
  const seconds = Number(argv[3]);
  const text = fs.readFileSync(argv[4], 'utf8');
  return run(seconds, text);
}

function run(seconds, text) {
  const expected = JSON.stringify(JSON.parse(text));
  const failures = JSON.stringify(JSON.parse(expected)) === expected ? 0 : 1;
  let calls = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  const deadline = wall0 + BigInt(Math.round(seconds * 1e9));
  let sink = 0;
  for (;;) {
    for (let i = 0; i < 256; i++) sink += JSON.stringify(JSON.parse(text)).length;
    calls += 256;
    if (process.hrtime.bigint() >= deadline) break;
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMicros = cpu.user + cpu.system;
  const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
  process.stdout.write(JSON.stringify({
    calls, wall_s: wall, calls_per_s: calls / wall, cpu_self_us: cpuMicros, cpu_children_us: 0,
    cpu_us_per_call: cpuMicros / calls, self_us_per_call: cpuMicros / calls, children_us_per_call: 0,
    failures: failures + (sink > 0 ? 0 : 1),
  }) + '\n');
  return failures ? 1 : 0;
}

process.exitCode = main(process.argv);
