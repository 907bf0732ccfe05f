"""Handler module for the funcd end-to-end tests.

One handler serves many behaviours so that a test needs one server process: the request path
selects the behaviour (see ROUTES below). Any other path answers with a JSON description of the
event and the context the handler received, which the contract tests inspect.

Paths that block (/sleep, /spin, /slow, /stubborn) write the file named by the query parameter
``marker`` (when given) as soon as the handler starts, so a test can wait for "the handler is
running" by polling a file instead of sleeping.

Plain Python 3.11, standard library only.
"""

import os
import sys
import time


def _try(function):
    """Return function(), or a readable marker of the exception it raised.

    One missing request attribute then shows up as one wrong field in the test's failure
    message instead of a 500 that hides every other field.
    """
    try:
        return function()
    except Exception as exc:  # reported back to the test, never swallowed silently
        return '<error %s: %s>' % (type(exc).__name__, exc)


def _plain(value):
    """A JSON-serialisable stand-in for value (repr for anything exotic)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


def _hex(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return _plain(value)


def _mark_started(req):
    """Write the file named by ?marker=PATH, to tell the test the handler is running."""
    marker = _try(lambda: req.query.get('marker'))
    if isinstance(marker, str) and marker.startswith('/'):
        with open(marker, 'w') as stream:
            stream.write('started')


def describe(event, context):
    """Everything the contract says a handler can see, as a JSON-ready dict."""
    req = event['extensions']['request']
    data = event['data']
    content_type = _try(lambda: req.content_type)
    is_json = isinstance(content_type, str) and content_type.lower().startswith('application/json')
    is_form = isinstance(content_type, str) and content_type.lower().startswith(
        'application/x-www-form-urlencoded')
    return {
        'event_keys': sorted(event.keys()),
        'extensions_keys': sorted(event['extensions'].keys()),
        'data_type': type(data).__name__,
        'data': None if isinstance(data, (bytes, bytearray)) else _plain(data),
        'data_hex': _hex(data) if isinstance(data, (bytes, bytearray)) else None,
        'event-id': _plain(event.get('event-id')),
        'event-type': _plain(event.get('event-type')),
        'event-time': _plain(event.get('event-time')),
        'event-namespace': _plain(event.get('event-namespace')),
        'method': _plain(_try(lambda: req.method)),
        'path': _plain(_try(lambda: req.path)),
        'url': _plain(_try(lambda: req.url)),
        'query_string': _plain(_try(lambda: req.query_string)),
        'query_x': _plain(_try(lambda: req.query.get('x'))),
        'header_exact': _plain(_try(lambda: req.headers['X-Foo'])),
        'header_lower': _plain(_try(lambda: req.headers['x-foo'])),
        'get_header': _plain(_try(lambda: req.get_header('x-foo', 'dflt'))),
        'get_header_missing': _plain(_try(lambda: req.get_header('x-missing', 'dflt'))),
        'remote_addr': _plain(_try(lambda: req.remote_addr)),
        'body_hex': _hex(_try(lambda: req.body.read())),
        'json': _plain(_try(lambda: req.json)) if is_json else None,
        'content_type': _plain(content_type),
        'content_length': _plain(_try(lambda: req.content_length)),
        'form_a': _plain(_try(lambda: req.forms.get('a'))) if is_form else None,
        'form_b': _plain(_try(lambda: req.forms.get('b'))) if is_form else None,
        'context': {
            key: _plain(_try(lambda key=key: context[key]))
            for key in ('function-name', 'timeout', 'runtime', 'memory-limit')
        },
    }


class DuckResponse:
    """Not a funcd.Response, but has the attributes the contract says are enough."""

    def __init__(self):
        self.status_code = 202
        self.body = 'duck body'
        self.headers = {'X-Duck': 'quack'}


def _fast(event, context):
    return 'fast'


def _sleep(event, context):
    _mark_started(event['extensions']['request'])
    try:
        time.sleep(1000)
    finally:
        # Only reached when funcd interrupts the sleep at FUNC_TIMEOUT.
        print('sleep-interrupted', flush=True)
    return 'woke up'


def _spin(event, context):
    _mark_started(event['extensions']['request'])
    try:
        while True:
            pass
    finally:
        print('spin-interrupted', flush=True)


def _slow(event, context):
    _mark_started(event['extensions']['request'])
    time.sleep(1)
    return 'slow done'


def _stubborn(event, context):
    """A handler that cannot be interrupted: it swallows whatever funcd raises in it."""
    _mark_started(event['extensions']['request'])
    while True:
        try:
            time.sleep(0.05)
        except BaseException:
            pass


def _orphan(event, context):
    """Leaves an orphan behind: a child that exits at once after forking a grandchild that
    exits a moment later. The grandchild is re-parented to PID 1, which must reap it."""
    child = os.fork()
    if child == 0:
        if os.fork() == 0:
            time.sleep(0.3)
        os._exit(0)
    os.waitpid(child, 0)
    return 'orphaned'


def _raise(event, context):
    raise ValueError('boom-from-handler')


def _print(event, context):
    print('hello-from-handler')  # no flush: funcd must make it reach stdout promptly
    return 'ok'


def _size(event, context):
    body = event['extensions']['request'].body.read()
    return {'length': len(body), 'data_length': len(event['data'])}


def _response(event, context):
    from funcd import Response
    return Response('created', status=201, headers={'X-A': 'b'})


def _echo_status(event, context):
    """The request body sent back with the status named by ?status=N, whatever N is.

    For framing attacks: a 204 or 304 "with a body" that an attacker chose, and statuses HTTP
    does not allow (99, 600)."""
    from funcd import Response
    req = event['extensions']['request']
    return Response(req.body.read(), status=int(req.query.get('status')))


# Header values and names a handler should never be able to send (?kind=...).
_BAD_HEADERS = {
    'crlf': {'X-Bad': 'a\r\nInjected: 1'},
    'lf': {'X-Bad': 'a\nInjected: 1'},
    'nul': {'X-Bad': 'a\x00Injected\x001'},
    'name': {'X-Bad Name': 'v'},
}


def _bad_header(event, context):
    from funcd import Response
    kind = event['extensions']['request'].query.get('kind')
    return Response('bad header', headers=_BAD_HEADERS[kind])


ROUTES = {
    '/fast': _fast,
    '/sleep': _sleep,
    '/spin': _spin,
    '/slow': _slow,
    '/stubborn': _stubborn,
    '/orphan': _orphan,
    '/raise': _raise,
    '/print': _print,
    '/size': _size,
    '/str': lambda event, context: 'h\u00e9llo w\u00f6rld',
    '/bytes': lambda event, context: b'\x00\x01\xfe\xffraw-bytes',
    '/dict': lambda event, context: {'a': 1, 'nested': {'b': [1, 2, 3]}, 'text': '\u00fc'},
    '/list': lambda event, context: [1, 'two', None, True],
    '/none': lambda event, context: None,
    '/response': _response,
    '/duck': lambda event, context: DuckResponse(),
    '/echo-status': _echo_status,
    '/bad-header': _bad_header,
    '/interpreter': lambda event, context: {
        'executable': sys.executable, 'argv': sys.argv, 'path0': sys.path[0], 'pid': os.getpid(),
        'unbuffered': int(getattr(sys.stdout, 'write_through', False)), 'no_user_site': sys.flags.no_user_site},
}


def handler(event, context):
    """The function funcd calls: dispatch on the request path."""
    route = ROUTES.get(event['extensions']['request'].path)
    if route is None:
        return describe(event, context)
    return route(event, context)


# The same function under another name: context['function-name'] must still be 'handler'
# (the function's __name__), not the FUNC_HANDLER value.
aliased_handler = handler
