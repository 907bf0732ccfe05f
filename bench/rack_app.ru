# The Ruby baseline for bench/run: a rack lambda under puma doing what the funcd handlers do
# (hello: a fixed text; echo: JSON parsed and generated back). BENCH_APP=hello|echo.
require 'json'

hello = ->(_env) { [200, { 'Content-Type' => 'text/plain' }, ['Hello world!']] }
echo = lambda do |env|
  [200, { 'Content-Type' => 'application/json' }, [JSON.generate(JSON.parse(env['rack.input'].read))]]
end
run(ENV.fetch('BENCH_APP', 'hello') == 'echo' ? echo : hello)
