"""The glue funcd-python loads: loads the user's module, builds the kubeless event, calls the
handler and encodes its result as (status, headers, body bytes, error).

Everything here runs inside funcd's embedded interpreter; the Swift host calls ``load`` once and
then ``Function.call`` per request (or ``Function.start`` for ``async def`` handlers). It is plain
Python so that it can be tested with plain Python (see tests/).
"""

import os
import sys

from . import _cloudevents
from ._lazy import protect, std
from ._request import Request

# asyncio (which loads ssl and libcrypto), inspect, threading and traceback are imported where
# they are needed: a plain handler's process should not carry them (idle memory is a target).

_HTML = [("Content-Type", "text/html; charset=UTF-8")]
_JSON = [("Content-Type", "application/json")]
_TEXT = [("Content-Type", "text/plain; charset=utf-8")]
_INVALID_JSON = (400, _TEXT, b"Invalid JSON body\n")


def _invalid_event(error):
    return (400, _TEXT, f"Invalid CloudEvent: {error}\n".encode("utf-8"), f"invalid CloudEvent: {error}")


# One encoder and decoder for every call, made on first use (json and re are not imported at
# start-up unless needed): each function below replaces itself with the codec's bound method.
# The circular-reference check costs a quarter of the encoding time; a self-referencing result
# still fails (RecursionError), as a 500 with its traceback. The output is json.dumps' own
# (", " and ": " separators), as bottle sent it.
def _encode_json(obj):
    global _encode_json
    _encode_json = std("json").JSONEncoder(check_circular=False).encode
    return _encode_json(obj)


def _decode_json(text):
    global _decode_json
    _decode_json = std("json").JSONDecoder().decode
    return _decode_json(text)


KAFKA_NAMESPACE = "kafkatriggers.kubeless.io"
_KAFKA_PREFIX = "funcd-kafka-"
_KAFKA_HEADER_PREFIX = "funcd-kafka-header-"


def kafka_extensions(headers):
    """topic, partition, offset, key, timestamp and headers of a Kafka message, which funcd
    passes as funcd-kafka-* headers (the HTTP server drops any a client sends)."""
    found = {"headers": {}}
    for name, value in headers:
        lower = name.lower()
        if lower.startswith(_KAFKA_HEADER_PREFIX):
            found["headers"][name[len(_KAFKA_HEADER_PREFIX):]] = value
        elif lower.startswith(_KAFKA_PREFIX):
            field = lower[len(_KAFKA_PREFIX):]
            found[field] = int(value) if field in ("partition", "offset", "timestamp") else value
    found.setdefault("key", None)
    return found


class KafkaExtensions(dict):
    """The extensions of a Kafka event that the host builds itself (funcd-python's fast path for
    plain handlers): topic, partition, offset, key, timestamp and headers. ``request``, the POST
    the kubeless kafka-trigger made of the message, is built on first use only."""

    __slots__ = ("_value",)

    def __missing__(self, key):
        if key != "request":
            raise KeyError(key)
        value = getattr(self, "_value", b"")
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("event-namespace", KAFKA_NAMESPACE)]
        request = Request("POST", "/", headers, value)
        self["request"] = request
        return request


def kafka_scanner():
    """The JSON scanner the host parses Kafka values with: ``scan(text, index)`` returns
    ``(value, end)`` with no Python frame in between (json.loads adds three). NaN and Infinity
    are refused: a value with them is not JSON, and its handler gets the text."""
    json = std("json")
    return json.scanner.make_scanner(json.JSONDecoder(parse_constant=_not_json))


def _not_json(name):
    raise ValueError(f"{name} is not JSON")


class LoadError(Exception):
    """The module or handler could not be loaded; str() is the one line funcd prints."""


# MARK: - loading


def load(code_dir, mod_name, handler_name, context):
    """Imports ``<code_dir>/<mod_name>.py`` and returns a ``Function`` for ``handler_name``.

    ``code_dir`` goes first on sys.path so that modules beside the handler (helpers) import, as
    they did in kubeless. The module is loaded from its file, never found by name, so that a
    module called like a standard one (``test``, ``json``) is still the user's.
    """
    path = os.path.join(code_dir, mod_name + ".py")
    if not os.path.isfile(path):
        raise LoadError(f"{path}: no such file (MOD_NAME={mod_name}, code directory {code_dir})")
    # Standard modules the user's module would shadow are fetched first, before the code
    # folder goes on sys.path (where a json.py would be found instead of the real one).
    protect(mod_name)
    venv = add_virtualenv(code_dir)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    spec = _spec_from_file_location(mod_name, path)
    module = _module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        del sys.modules[mod_name]
        where = f"{error.filename or path}:{error.lineno}" if error.lineno else (error.filename or path)
        raise LoadError(f"{where}: SyntaxError: {error.msg}") from None
    except BaseException as error:  # noqa: B036 - any failure at import time is a load failure
        del sys.modules[mod_name]
        frames = std("traceback").extract_tb(error.__traceback__)
        inner = next((f for f in reversed(frames) if f.filename == path), None)
        where = f"{path}:{inner.lineno}" if inner else path
        hint = ""
        if isinstance(error, ModuleNotFoundError):
            hint = f" (looked in {code_dir}, {venv or 'no virtualenv: VIRTUAL_ENV is unset and there is no .venv beside the handler'}, PYTHONPATH and the interpreter's own packages)"
        raise LoadError(f"{where}: {type(error).__name__} while importing {mod_name}: {error}{hint}") from None
    try:
        handler = getattr(module, handler_name)
    except AttributeError:
        raise LoadError(f"{path}: no function '{handler_name}' in module '{mod_name}'") from None
    if not callable(handler):
        raise LoadError(f"{path}: '{handler_name}' is not callable (it is a {type(handler).__name__})")
    context = dict(context)
    context["function-name"] = getattr(handler, "__name__", handler_name)
    return Function(handler, context)


# MARK: - calling


def add_virtualenv(code_dir):
    """Puts the packages of the virtualenv the user works in on sys.path: the activated one
    (VIRTUAL_ENV), else a .venv beside the handler. Returns its site-packages folder, or None.

    Only one made for this interpreter's Python version can serve: another version's compiled
    packages would not load, so it is named in a warning and left out.
    """
    root = os.environ.get("VIRTUAL_ENV") or os.path.join(code_dir, ".venv")
    if not os.path.isdir(root):
        return None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = os.path.join(root, "lib", version, "site-packages")
    if not os.path.isdir(site_packages):
        found = sorted(os.listdir(os.path.join(root, "lib"))) if os.path.isdir(os.path.join(root, "lib")) else []
        print(f"funcd: warning: the virtualenv {root} is not for {version} (it has {', '.join(found) or 'no lib folder'}); its packages are not used", file=sys.stderr)
        return None
    if site_packages not in sys.path:
        # addsitedir also reads the .pth files editable installs leave there.
        std("site").addsitedir(site_packages)
    return site_packages


class Function:
    """One loaded handler and its context, called once per event."""

    def __init__(self, handler, context):
        self.handler = handler
        self.context = context
        self.is_coroutine = is_coroutine_function(handler)
        self._loop = None
        self._futures = {}

    def event(self, method, target, headers, body, content_type, event_id, event_type, event_time, namespace, peer=None, cloudevent=None):
        """Builds the kubeless event; raises ValueError when a JSON body does not parse, and
        CloudEventError when a structured CloudEvent's data cannot be read."""
        data = body
        if content_type is not None and content_type.split(";", 1)[0].strip().lower() == "application/json":
            try:
                data = _parse_json(body) if body else None
            except RecursionError:
                # Nested deeper than the stack allows: the client's bad body (400), not a failure
                # of the function, and call() must still return a result rather than raise.
                raise ValueError("JSON body nested too deeply") from None
        extensions = {"request": Request(method, target, headers, body, peer)}
        if namespace == KAFKA_NAMESPACE:
            if data is body:
                data = body.decode("utf-8", "replace")
            extensions.update(kafka_extensions(headers))
        event = {
            "data": data,
            "event-id": event_id,
            "event-type": event_type,
            "event-time": event_time,
            "event-namespace": namespace,
            "extensions": extensions,
        }
        if cloudevent is not None:
            _cloudevents.apply(event, cloudevent, body)
        return event

    def call_context(self, traceparent, tracestate):
        """The context of one call: the function's, with the call's trace to propagate. A copy
        per call, because calls on other threads (or awaiting) hold their own trace."""
        context = self.context.copy()
        context["traceparent"] = traceparent
        context["tracestate"] = tracestate
        return context

    def call(self, method, target, headers, body, content_type, event_id, event_type, event_time, namespace, peer=None,
             traceparent=None, tracestate=None, cloudevent=None):
        """Calls a plain handler: returns (status, headers, body, error). `peer` is the client's
        address (None for a Kafka message); `traceparent` and `tracestate` the call's trace;
        `cloudevent` what the host found of a CloudEvent (see _cloudevents.apply)."""
        try:
            event = self.event(method, target, headers, body, content_type, event_id, event_type, event_time, namespace, peer, cloudevent)
        except _cloudevents.CloudEventError as error:
            return _invalid_event(error)
        except ValueError:
            return (*_INVALID_JSON, "invalid JSON body")
        try:
            result = self.handler(event, self.call_context(traceparent, tracestate))
            return encode(result) if cloudevent is not True else encode_answer(result, True)
        except BaseException as error:  # noqa: B036 - a handler's failure must never end the worker
            return failure(error)

    # -- async def handlers run on one asyncio loop the host owns

    def start(self, token, complete, method, target, headers, body, content_type, event_id, event_type, event_time, namespace,
              peer=None, traceparent=None, tracestate=None, cloudevent=None):
        """Starts an async handler on the loop; ``complete(token, result)`` is called when done.

        Returns None, or a finished result when the call failed before it started.
        """
        try:
            event = self.event(method, target, headers, body, content_type, event_id, event_type, event_time, namespace, peer, cloudevent)
        except _cloudevents.CloudEventError as error:
            return _invalid_event(error)
        except ValueError:
            return (*_INVALID_JSON, "invalid JSON body")
        loop = self._ensure_loop()
        context = self.call_context(traceparent, tracestate)
        future = std("asyncio").run_coroutine_threadsafe(self._run(event, context, cloudevent is True), loop)
        self._futures[token] = future

        def done(finished, token=token):
            self._futures.pop(token, None)
            if finished.cancelled():
                result = (500, _TEXT, b"Internal Server Error\n", "the function was cancelled after its timeout")
            else:
                result = finished.result()
            complete(token, result)

        future.add_done_callback(done)
        return None

    async def _run(self, event, context, structured):
        try:
            return encode_answer(await self.handler(event, context), structured)
        except BaseException as error:  # noqa: B036
            if isinstance(error, std("asyncio").CancelledError):
                raise
            return failure(error)

    def cancel(self, token):
        """Cancels the async call ``token`` (its deadline passed)."""
        future = self._futures.get(token)
        if future is not None:
            future.cancel()

    def _ensure_loop(self):
        if self._loop is None:
            loop = std("asyncio").new_event_loop()
            thread = std("threading").Thread(target=loop.run_forever, name="funcd-asyncio", daemon=True)
            thread.start()
            self._loop = loop
        return self._loop


_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: the code object of an `async def`


def is_coroutine_function(handler):
    """True for an `async def` function, method, partial or callable object.

    Reads the code flags instead of importing inspect (and asyncio) for every plain handler.
    """
    seen = 0
    while seen < 8:
        seen += 1
        code = getattr(handler, "__code__", None)
        if code is not None:
            return bool(code.co_flags & _CO_COROUTINE)
        if hasattr(handler, "__func__"):  # bound method
            handler = handler.__func__
        elif hasattr(handler, "func") and hasattr(handler, "args"):  # functools.partial
            handler = handler.func
        elif hasattr(type(handler), "__call__") and not isinstance(handler, type):
            handler = type(handler).__call__
        else:
            return False
    return False


try:
    # The import system's own functions, always loaded (frozen): importlib.util would import
    # contextlib, functools and more at start-up just to reach them.
    from _frozen_importlib import module_from_spec as _module_from_spec
    from _frozen_importlib_external import spec_from_file_location as _spec_from_file_location
except ImportError:  # another Python implementation
    from importlib.util import module_from_spec as _module_from_spec
    from importlib.util import spec_from_file_location as _spec_from_file_location


def _parse_json(body):
    """json.loads, with the common UTF-8 case decoded directly (json.loads(bytes) first sniffs
    for UTF-16 and UTF-32, which it still does for anything that is not UTF-8)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or text.startswith("\ufeff"):  # other encodings, a byte-order mark
        return std("json").loads(body)
    return _decode_json(text)


def failure(error):
    """The 500 answer and the traceback of a handler's exception."""
    text = "".join(std("traceback").format_exception(type(error), error, error.__traceback__))
    return (500, _TEXT, b"Internal Server Error\n", text)


# MARK: - results


def encode(result):
    """Turns a handler's return value into (status, headers, body bytes, None).

    Exact types are tested first, as they are the common case; subclasses (an OrderedDict, a
    namedtuple, a str subclass) must still be answered like their base, never iterated: iterating
    would send a dict's keys, or zero bytes for each int.
    """
    kind = type(result)
    if kind is str:
        return (200, _HTML, result.encode("utf-8"), None)
    if kind is dict or kind is list:
        return (200, _JSON, _encode_json(result).encode("utf-8"), None)
    if result is None:
        return (200, _HTML, b"", None)
    if kind is bytes or kind is bytearray or kind is memoryview:
        return (200, _HTML, bytes(result), None)
    if hasattr(result, "status_code") and hasattr(result, "body"):
        return _encode_response(result)
    if isinstance(result, str):
        return (200, _HTML, result.encode("utf-8"), None)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return (200, _HTML, bytes(result), None)
    if isinstance(result, (dict, list, tuple, int, float)):  # bool is an int
        return (200, _JSON, _encode_json(result).encode("utf-8"), None)
    if hasattr(result, "__iter__"):
        # bottle joined iterables of str/bytes into the body.
        return (200, _HTML, b"".join([_part(part) for part in result]), None)
    return (200, _HTML, str(result).encode("utf-8"), None)


def encode_answer(result, structured):
    """``encode(result)``, except that an event returned for a structured-mode CloudEvent is
    answered as one (``application/cloudevents+json``)."""
    if structured and type(result) is dict:
        answer = _cloudevents.encode_event(result, _encode_json)
        if answer is not None:
            return answer
    return encode(result)


def _part(part):
    if isinstance(part, str):
        return part.encode("utf-8")
    if isinstance(part, (bytes, bytearray, memoryview)):
        return bytes(part)
    # bytes(part) of an int would be that many zero bytes (or gigabytes of them): refuse, so the
    # handler's mistake is a 500 with a traceback rather than a garbled body.
    raise TypeError(f"the function returned an iterable of {type(part).__name__}: only str and bytes can be sent")


def _encode_response(response):
    status = int(response.status_code)
    _, headers, body, _ = encode(response.body)
    given = _header_pairs(response)
    if given:
        names = {name.lower() for name, _ in given}
        headers = [pair for pair in headers if pair[0].lower() not in names] + given
    return (status, headers, body, None)


def _header_pairs(response):
    headerlist = getattr(response, "headerlist", None)  # bottle.HTTPResponse
    if headerlist is not None:
        return [(str(k), str(v)) for k, v in headerlist]
    headers = getattr(response, "headers", None)
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(k), str(v)) for k, v in items]


# MARK: - process set-up


def install_interrupt(signum, interrupt_due):
    """Lets the host stop a handler blocked in C (``time.sleep``) on the interpreter's main thread.

    CPython runs signal handlers only on the thread that initialised it, and a blocking call there
    returns with EINTR, runs this handler and raises. The host sends ``signum`` only after a
    deadline; ``interrupt_due()`` says whether the call running now is still the one to stop.
    """

    # _signal, the C module under signal: signal's wrapper only turns numbers into enums, and
    # importing it (enum, functools, collections, operator) was 4 ms of a 40 ms cold start.
    import _signal

    def on_signal(signum, frame):
        if interrupt_due():
            raise TimeoutError("funcd: the function ran past its timeout")

    _signal.signal(signum, on_signal)


def print_to_stderr():
    """`funcd invoke` keeps stdout for the result: the handler's own prints go to stderr."""
    sys.stdout = sys.stderr
