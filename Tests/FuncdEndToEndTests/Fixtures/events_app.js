// Shows a test what funcd made of a request: the kubeless event's fields, the CloudEvent and the
// trace context. `X-Answer` (a request header, or a Kafka message's header): `structured` answers
// with a returned event, `binary` with ce-* fields, `fail` throws.
exports.handler = (event, context) => {
  const data = Buffer.isBuffer(event.data) ? { bytes: [...event.data] } : event.data;
  const seen = {
    data,
    'event-id': event['event-id'] ?? null,
    'event-type': event['event-type'] ?? null,
    'event-time': event['event-time'] ?? null,
    'event-namespace': event['event-namespace'] ?? null,
    cloudevent: event.extensions.cloudevent ?? null,
    traceparent: context.traceparent ?? null,
    tracestate: context.tracestate ?? null,
  };
  const kafka = event.extensions.headers;
  const answer = kafka !== undefined ? kafka['x-answer'] : event.extensions.request.get('x-answer');
  if (answer === 'fail') throw new Error('asked to fail');
  if (answer === 'structured') {
    return { specversion: '1.0', id: 'reply-1', source: '/funcd/test', type: 'com.example.reply', datacontenttype: 'application/json', data: seen };
  }
  if (answer === 'binary') {
    event.extensions.response.set({ 'ce-id': 'reply-1', 'ce-source': '/funcd/test', 'ce-specversion': '1.0', 'ce-type': 'com.example.reply' });
  }
  return seen;
};
