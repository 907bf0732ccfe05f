"""CloudEvents v1.0 in the kubeless event: what funcd's host found in a request (binary mode: the
attributes, read and checked in Swift; structured mode: the body is the event) put where a
handler finds it, and a returned event answered in structured mode.

The event keeps its kubeless shape: ``data`` is the event's data, the ``event-*`` fields a caller
did not send are filled from the event (``event-id`` from ``id``, ``event-type`` from ``type``,
``event-time`` from ``time``, ``event-namespace`` from ``source``), and every attribute, the
extensions beside the core ones, is in ``event["extensions"]["cloudevent"]``.
"""

from ._lazy import std

STRUCTURED = "application/cloudevents+json"
_REQUIRED = ("id", "source", "type")
_FILLED = (("event-id", "id"), ("event-type", "type"), ("event-time", "time"), ("event-namespace", "source"))


class CloudEventError(ValueError):
    """A complete structured event whose data cannot be read: the request's 400."""


def apply(event, cloudevent, body):
    """Fills ``event`` from ``cloudevent``: a tuple of ``(name, value)`` attributes (binary
    mode: ``data`` stays what the body gave it), or True (structured mode: ``body`` is the event;
    when it is no complete v1.0 event, ``event`` is left as any request's)."""
    if cloudevent is True:
        parsed = _structured(body)
        if parsed is None:
            return
        attributes, data = parsed
        event["data"] = data
    else:
        attributes = dict(cloudevent)
    for field, name in _FILLED:
        if event.get(field) is None and name in attributes:
            event[field] = attributes[name]
    event["extensions"]["cloudevent"] = attributes


def _structured(body):
    """``(attributes, data)`` of a structured event, or None when ``body`` is no complete,
    valid v1.0 event (an ordinary request then)."""
    try:
        text = bytes(body).decode("utf-8")
        document = std("json").loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not is_event(document):
        return None
    attributes = {name: value for name, value in document.items() if name not in ("data", "data_base64")}
    if "data_base64" in document:
        if "data" in document:
            raise CloudEventError("the event has both data and data_base64")
        encoded = document["data_base64"]
        if not isinstance(encoded, str):
            raise CloudEventError("data_base64 is not a string")
        try:
            data = std("binascii").a2b_base64(encoded.encode("ascii"), strict_mode=True)
        except (ValueError, UnicodeEncodeError):
            raise CloudEventError("data_base64 is not base64") from None
        return attributes, data
    return attributes, document.get("data")


def is_event(document):
    """Whether ``document`` is a complete v1.0 event: ``specversion`` "1.0", non-empty string
    ``id``, ``source`` and ``type``, attribute names of lower-case letters and digits."""
    if type(document) is not dict or document.get("specversion") != "1.0":
        return False
    for name in _REQUIRED:
        value = document.get(name)
        if not isinstance(value, str) or not value:
            return False
    return all(name in ("data", "data_base64") or _is_attribute_name(name) for name in document)


def _is_attribute_name(name):
    return name.isascii() and name.isalnum() and name == name.lower()


def encode_event(result, encode_json):
    """A handler's returned event as a structured-mode answer (bytes data as ``data_base64``);
    None when ``result`` is not a complete event."""
    if not is_event(result):
        return None
    document = result
    data = result.get("data")
    if isinstance(data, (bytes, bytearray, memoryview)):
        document = {name: value for name, value in result.items() if name != "data"}
        document["data_base64"] = std("binascii").b2a_base64(bytes(data), newline=False).decode("ascii")
    return (200, [("Content-Type", STRUCTURED)], encode_json(document).encode("utf-8"), None)
