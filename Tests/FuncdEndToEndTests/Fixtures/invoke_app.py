"""Handlers for the ``funcd invoke`` end-to-end tests (one call, no server).

In invoke mode the result body goes to stdout and the handler's own prints to stderr, so
``echo`` prints a marker the test looks for on stderr (and must not find on stdout).
"""


def echo(event, context):
    print('handler-side-output')
    data = event['data']
    if isinstance(data, (bytes, bytearray)):
        shown = bytes(data).decode('utf-8', 'replace')
    else:
        shown = data
    return {'type': type(data).__name__, 'data': shown}


def text(event, context):
    return 'plain text result'


def fail(event, context):
    raise RuntimeError('invoke-failure-xyz')
