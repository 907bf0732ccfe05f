# A Ruby handler for KafkaTests: prints the facts of each message's event as one JSON line.
require 'json'

def record(event, context)
  facts = event[:extensions]
  shown = { topic: facts[:topic], partition: facts[:partition], offset: facts[:offset], key: facts[:key],
            headers: facts[:headers], data: event[:data] }
  puts "message #{JSON.generate(shown)}"
  nil
end
