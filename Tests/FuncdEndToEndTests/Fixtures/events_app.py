"""Shows a test what funcd made of a request: the kubeless event's fields, the CloudEvent and the
trace context. `X-Answer` (a request header, or a Kafka message's header): `structured` answers
with a returned event, `binary` with ce-* fields, `fail` raises."""

from funcd import Response

REPLY = {"ce-id": "reply-1", "ce-source": "/funcd/test", "ce-specversion": "1.0", "ce-type": "com.example.reply"}


def handler(event, context):
    data = event["data"]
    if isinstance(data, bytes):
        data = {"bytes": list(data)}
    seen = {
        "data": data,
        "event-id": event["event-id"],
        "event-type": event["event-type"],
        "event-time": event["event-time"],
        "event-namespace": event["event-namespace"],
        "cloudevent": event["extensions"].get("cloudevent"),
        "traceparent": context["traceparent"],
        "tracestate": context["tracestate"],
    }
    kafka = event["extensions"].get("headers")
    answer = kafka.get("x-answer") if kafka is not None else event["extensions"]["request"].get_header("x-answer")
    if answer == "fail":
        raise RuntimeError("asked to fail")
    if answer == "structured":
        return {"specversion": "1.0", "id": "reply-1", "source": "/funcd/test", "type": "com.example.reply",
                "datacontenttype": "application/json", "data": seen}
    if answer == "binary":
        return Response(seen, headers=REPLY)
    return seen
