# Handlers for the Ruby end-to-end tests: GET /<name> runs <name> through `route`.
require 'padder'

def hello(event, context)
  'hello world'
end

def event(event, context)
  {
    data: event[:data],
    dataClass: event[:data].class.name,
    'event-id': event[:'event-id'],
    'event-type': event[:'event-type'],
    'event-time': event[:'event-time'],
    'event-namespace': event[:'event-namespace'],
    context: context
  }
end

def request(event, context)
  request = event[:extensions][:request]
  {
    method: request.request_method,
    path: request.path_info,
    query: request.query_string,
    params: request.params,
    header: request.env['HTTP_X_CUSTOM'],
    getHeader: request.get_header('HTTP_X_CUSTOM'),
    contentType: request.env['CONTENT_TYPE'],
    body: request.body.read
  }
end

def string(event, context)
  'plain text'
end

def hash_value(event, context)
  { answer: 42 }
end

def array(event, context)
  [1, 'two']
end

def nothing(event, context)
  nil
end

def rack(event, context)
  [201, { 'X-Made-By' => 'rack' }, ['cre', 'ated']]
end

# A redirect to a target from the query, as an open-redirect-prone handler writes it.
def redirect(event, context)
  [302, { 'Location' => event[:extensions][:request].params['next'] }, []]
end

def bundled(event, context)
  Padder.left(7, 3)
end

def fails(event, context)
  raise ArgumentError, 'handler broke'
end

def spin(event, context)
  loop {}
end

def sleeps(event, context)
  sleep 100
end

def nap(event, context)
  sleep 1
  'rested'
end

def stubborn(event, context)
  loop do
    sleep 100
  rescue Exception
    nil
  end
end

def log(event, context)
  puts 'logged from the handler'
  'logged'
end

def exits(event, context)
  exit 3
end

# A Rack triple with status 204 and the request body as its body (a framing attack).
def no_content_echo(event, context)
  [204, {}, [event[:extensions][:request].body.read]]
end

def route(event, context)
  name = event[:extensions][:request].path_info.delete_prefix('/')
  # self is the module funcd loaded this file into: its functions are its instance methods.
  raise ArgumentError, "no handler #{name}" if name == 'route' || !instance_methods(false).include?(name.to_sym)

  send(name, event, context)
end

def encodings(event, context)
  { external: Encoding.default_external.name, internal: Encoding.default_internal&.name,
    literal: 'é'.encoding.name }
end

# A Rack body that yields slowly: each piece must go out as it is yielded.
def stream(event, context)
  pieces = Enumerator.new do |out|
    out << "first\n"
    sleep 0.3
    out << "second\n"
    sleep 0.3
    out << "last\n"
  end
  [200, { 'Content-Type' => 'text/plain' }, pieces]
end

# Breaks off after its first piece.
def stream_fails(event, context)
  [200, {}, Enumerator.new { |out| out << "partial\n"; sleep 0.2; raise IOError, 'stream broke' }]
end

# Still yielding at the deadline.
def stream_stalls(event, context)
  [200, {}, Enumerator.new { |out| out << "partial\n"; sleep 100 }]
end

# What the real Rack::Request answers: nested params, the class, Sinatra's accept.
def rack_request(event, context)
  request = event[:extensions][:request]
  { rack: request.is_a?(Rack::Request), params: request.params, url: request.url,
    preferred: request.preferred_type('application/json', 'text/html'), dataEncoding: event[:data].encoding.name,
    ip: request.ip }
end

# 8 MiB in 64 KiB pieces: far more than a client that does not read yet takes (the writer pauses).
def stream_big(event, context)
  [200, {}, Enumerator.new { |out| 128.times { |index| out << (index % 26 + 97).chr * 65_536 } }]
end

# The bytes and encoding of the X-Custom header as the handler reads it.
def header_bytes(event, context)
  value = event[:extensions][:request].env['HTTP_X_CUSTOM']
  { bytes: value.bytes, encoding: value.encoding.name }
end
