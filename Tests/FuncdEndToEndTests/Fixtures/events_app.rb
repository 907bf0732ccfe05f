# Shows a test what funcd made of a request: the kubeless event's fields, the CloudEvent and the
# trace context. `X-Answer` (a request header, or a Kafka message's header): `structured` answers
# with a returned event, `binary` with ce-* fields, `fail` raises.
require 'json'

REPLY = { 'ce-id' => 'reply-1', 'ce-source' => '/funcd/test', 'ce-specversion' => '1.0', 'ce-type' => 'com.example.reply' }.freeze

def handler(event, context)
  data = event[:data]
  data = { bytes: data.bytes } if data.is_a?(String) && data.encoding == Encoding::BINARY
  seen = {
    data: data,
    'event-id': event[:'event-id'],
    'event-type': event[:'event-type'],
    'event-time': event[:'event-time'],
    'event-namespace': event[:'event-namespace'],
    cloudevent: event[:extensions][:cloudevent],
    traceparent: context[:traceparent],
    tracestate: context[:tracestate]
  }
  kafka = event[:extensions][:headers]
  case kafka ? kafka['x-answer'] : event[:extensions][:request].env['HTTP_X_ANSWER']
  when 'fail'
    raise 'asked to fail'
  when 'structured'
    { specversion: '1.0', id: 'reply-1', source: '/funcd/test', type: 'com.example.reply', datacontenttype: 'application/json', data: seen }
  when 'binary'
    [200, REPLY.merge('Content-Type' => 'application/json'), [JSON.generate(seen)]]
  else
    seen
  end
end
