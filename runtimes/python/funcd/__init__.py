"""What a handler may import from funcd: ``Response``, to choose the status and headers.

    from funcd import Response

    def handler(event, context):
        return Response({"created": True}, status=201, headers={"Location": "/items/1"})

Any object with ``status_code``, ``body`` and ``headers`` attributes (a bottle ``HTTPResponse``,
for instance) is answered the same way.
"""

__all__ = ["Response"]


class Response:
    """A handler result with an explicit status and headers.

    ``body`` may be ``str``, ``bytes``, ``dict``/``list`` (sent as JSON) or ``None``.
    ``headers`` is a mapping or a list of ``(name, value)`` pairs.
    """

    __slots__ = ("body", "status_code", "headers")

    def __init__(self, body=None, status=200, headers=None):
        self.body = body
        self.status_code = int(status)
        self.headers = headers if headers is not None else {}

    def __repr__(self):
        return f"Response(status={self.status_code}, headers={self.headers!r})"
