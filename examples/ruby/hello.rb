# The example kubeless Ruby function: funcd run examples/ruby/hello.rb --handler hello

# GET / answers a greeting.
def hello(event, context)
  'Hello world!'
end

# POST a JSON body and get it back: event[:data] is already parsed for application/json.
def echo(event, context)
  event[:data]
end

# Status and headers of your own: return a Rack triple.
def created(event, context)
  [201, { 'Content-Type' => 'text/plain', 'X-Function' => context[:'function-name'] }, ["made\n"]]
end
