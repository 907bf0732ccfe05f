"""The request object handlers find in ``event['extensions']['request']``.

It answers the calls kubeless handlers made on bottle's request (method, path, url, headers,
get_header, query, body, json, forms, files, content_type, ...), computed lazily: most handlers
touch none of it, and the hot path must not pay for parsing they never read.
"""

import io

from ._lazy import std


class MultiDict(dict):
    """bottle's FormsDict: a dict of the last value per key that keeps every value, with all of
    bottle's MultiDict and FormsDict calls (``getall``/``getlist``, ``get(key, default, index,
    type)``, ``allitems``, ``append``, ``replace``, ``decode``, ``getunicode``, attribute access
    answering ``''`` when missing). A dict subclass, so ``json.dumps`` and ``dict()`` take it
    (bottle's is not a dict: a superset). Values are text decoded as UTF-8, where bottle's item
    access gives WSGI's latin-1 "native strings" (mojibake for non-ASCII, which its attribute
    access and ``getunicode`` undo): here every access gives the decoded text."""

    input_encoding = "utf8"
    recode_unicode = True

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._all = {}
        pairs = args[0] if args else ()
        if hasattr(pairs, "items") and not isinstance(pairs, MultiDict):
            pairs = pairs.items()
        elif isinstance(pairs, MultiDict):
            pairs = pairs.allitems()
        for key, value in pairs:
            self.append(key, value)
        for key, value in kwargs.items():
            self.append(key, value)

    def append(self, key, value):
        """Adds a value for `key` (bottle: so does ``d[key] = value``)."""
        self._all.setdefault(key, []).append(value)
        dict.__setitem__(self, key, value)

    __setitem__ = append

    def __delitem__(self, key):
        del self._all[key]
        dict.__delitem__(self, key)

    def replace(self, key, value):
        """Replaces every value of `key` with `value`."""
        self._all[key] = [value]
        dict.__setitem__(self, key, value)

    def get(self, key, default=None, index=-1, type=None):
        """A value of `key` (the last by default, else the one at `index`), passed through
        `type` when given; `default` when there is none or `type` raises."""
        try:
            value = self._all[key][index]
            return type(value) if type else value
        except Exception:
            return default

    getone = get

    def getall(self, key):
        return list(self._all.get(key) or ())

    getlist = getall

    def allitems(self):
        """Every (key, value) pair, each key's values in order."""
        return ((key, value) for key, values in self._all.items() for value in values)

    iterallitems = allitems

    def iterkeys(self):
        return iter(self.keys())

    def itervalues(self):
        return iter(self.values())

    def iteritems(self):
        return iter(self.items())

    def getunicode(self, key, default=None, encoding=None):
        try:
            return self[key]
        except KeyError:
            return default

    def decode(self, encoding=None):
        """A copy (the values are already text)."""
        copy = MultiDict(self.allitems())
        copy.input_encoding = encoding or self.input_encoding
        copy.recode_unicode = False
        return copy

    def copy(self):
        return MultiDict(self.allitems())

    # The dict calls that change it keep every value in step (bottle's are MutableMapping's).
    def update(self, *args, **kwargs):
        for key, value in MultiDict(*args, **kwargs).allitems():
            self.append(key, value)

    def setdefault(self, key, default=None):
        if key not in self:
            self.append(key, default)
        return self[key]

    def pop(self, key, *default):
        self._all.pop(key, None)
        return dict.pop(self, key, *default)

    def popitem(self):
        key, value = dict.popitem(self)
        del self._all[key]
        return key, value

    def clear(self):
        self._all.clear()
        dict.clear(self)

    def __getattr__(self, key):
        # bottle's FormsDict answers missing attributes with ''.
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        return self.getunicode(key, default="")


FormsDict = MultiDict


class Headers:
    """Read-only, case-insensitive view of the request headers."""

    __slots__ = ("_pairs", "_map")

    def __init__(self, pairs):
        self._pairs = pairs
        self._map = None

    def _lookup(self):
        if self._map is None:
            m = {}
            for name, value in self._pairs:
                key = name.lower()
                m[key] = f"{m[key]},{value}" if key in m else value
            self._map = m
        return self._map

    def __getitem__(self, name):
        return self._lookup()[name.lower()]

    def get(self, name, default=None):
        return self._lookup().get(name.lower(), default)

    def __contains__(self, name):
        return name.lower() in self._lookup()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self._lookup())

    def keys(self):
        return [name.title() for name in self._lookup()]

    def items(self):
        return [(name.title(), value) for name, value in self._lookup().items()]

    def values(self):
        return list(self._lookup().values())

    def raw(self, name=None, default=None):
        """bottle's ``raw(name, default)``: the value of `name` as the WSGI environ holds it
        (the same text here). Without a name, funcd's own: the headers as received, a tuple of
        (name, value) pairs."""
        if name is None:
            return self._pairs
        return self.get(name, default)

    def __repr__(self):
        return f"Headers({self.items()!r})"


class FileUpload:
    """One file of a multipart form (bottle's FileUpload calls)."""

    def __init__(self, name, filename, content_type, data):
        self.name = name
        self.filename = self.raw_filename = filename
        self.content_type = content_type
        self.file = io.BytesIO(data)
        self.content_length = len(data)

    def save(self, destination):
        if hasattr(destination, "write"):
            destination.write(self.file.getvalue())
        else:
            with open(destination, "wb") as out:
                out.write(self.file.getvalue())


class Request:
    """A bottle-like view of one HTTP request."""

    __slots__ = ("method", "_target", "_header_pairs", "_headers", "_body", "_query", "_forms", "_files", "_json", "_peer")

    def __init__(self, method, target, header_pairs, body, peer=None):
        self.method = method
        self._peer = peer
        self._target = target
        self._header_pairs = header_pairs
        self._headers = None
        self._body = body
        self._query = None
        self._forms = None
        self._files = None
        self._json = _UNSET

    # -- where the request went

    @property
    def fullpath(self):
        """The path joined to the root as bottle does (empty segments folded: ``/a//b`` is
        ``/a/b``), decoded like ``path``."""
        return std("urllib.parse").urljoin("/", self.path.lstrip("/"))

    @property
    def path(self):
        path = self._target.partition("?")[0]
        if "%" in path:
            path = std("urllib.parse").unquote(path)
        return path or "/"

    @property
    def query_string(self):
        return self._target.partition("?")[2]

    @property
    def url(self):
        host = self.headers.get("x-forwarded-host") or self.headers.get("host") or "localhost"
        scheme = self.headers.get("x-forwarded-proto") or "http"
        return f"{scheme}://{host}{self._target}"

    @property
    def urlparts(self):
        return std("urllib.parse").urlsplit(self.url)

    @property
    def query(self):
        if self._query is None:
            self._query = MultiDict(std("urllib.parse").parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    GET = query

    # -- headers

    @property
    def headers(self):
        if self._headers is None:
            self._headers = Headers(self._header_pairs)
        return self._headers

    def get_header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    @property
    def content_length(self):
        try:
            return int(self.headers.get("content-length", len(self._body)))
        except ValueError:
            return len(self._body)

    @property
    def cookies(self):
        jar = std("http.cookies").SimpleCookie()
        jar.load(self.headers.get("cookie", ""))
        return MultiDict((key, morsel.value) for key, morsel in jar.items())

    def get_cookie(self, name, default=None):
        return self.cookies.get(name, default)

    @property
    def is_xhr(self):
        return self.headers.get("x-requested-with", "").lower() == "xmlhttprequest"

    # -- the body

    @property
    def body(self):
        return io.BytesIO(self._body)

    @property
    def json(self):
        if self._json is _UNSET:
            media = self.content_type.split(";", 1)[0].strip().lower()
            if media in ("application/json", "application/json-rpc") and self._body:
                self._json = std("json").loads(self._body)
            else:
                self._json = None
        return self._json

    @property
    def forms(self):
        self._parse_form()
        return self._forms

    @property
    def POST(self):
        """The form fields and the files together, as bottle's ``request.POST``."""
        self._parse_form()
        both = MultiDict(self._forms.allitems())
        for key, value in self._files.allitems():
            both.append(key, value)
        return both

    @property
    def files(self):
        self._parse_form()
        return self._files

    @property
    def params(self):
        merged = MultiDict()
        for source in (self.query, self.forms):
            for key in source:
                for value in source.getall(key):
                    merged.append(key, value)
        return merged

    def _parse_form(self):
        if self._forms is not None:
            return
        self._forms, self._files = MultiDict(), MultiDict()
        media = self.content_type.split(";", 1)[0].strip().lower()
        if media == "application/x-www-form-urlencoded":
            # parse_qsl decodes %-escapes as UTF-8: read raw bytes (curl -d 'name=é') as UTF-8
            # too, or they would arrive as mojibake beside the escaped ones.
            try:
                text = self._body.decode("utf-8")
            except UnicodeDecodeError:
                text = self._body.decode("latin-1")
            for key, value in std("urllib.parse").parse_qsl(text, keep_blank_values=True):
                self._forms.append(key, value)
        elif media.startswith("multipart/"):
            self._parse_multipart()

    def _parse_multipart(self):
        BytesParser = std("email.parser").BytesParser
        HTTP = std("email.policy").HTTP
        head = f"Content-Type: {self.content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        message = BytesParser(policy=HTTP).parsebytes(head + self._body)
        if not message.is_multipart():
            return
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name is None:
                continue
            data = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                self._files.append(name, FileUpload(name, filename, part.get_content_type(), data))
            else:
                charset = part.get_content_charset() or "utf-8"
                self._forms.append(name, data.decode(charset, "replace"))

    # -- who asked

    @property
    def remote_route(self):
        """bottle's: the addresses of X-Forwarded-For, else the client's own."""
        proxy = self.headers.get("X-Forwarded-For")
        if proxy:
            return [address.strip() for address in proxy.split(",")]
        return [self._peer] if self._peer else []

    @property
    def remote_addr(self):
        """bottle's: the first of ``remote_route``, or None."""
        route = self.remote_route
        return route[0] if route else None

    # -- WSGI-style access, for handlers written against bottle.request.environ

    @property
    def environ(self):
        env = {
            "REQUEST_METHOD": self.method,
            "PATH_INFO": self.path,
            "QUERY_STRING": self.query_string,
            "CONTENT_TYPE": self.content_type,
            "CONTENT_LENGTH": str(len(self._body)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(self._body),
        }
        if self._peer:
            env["REMOTE_ADDR"] = self._peer
        for name, value in self._header_pairs:
            key = "HTTP_" + name.upper().replace("-", "_")
            env[key] = f"{env[key]},{value}" if key in env else value
        return env

    def __repr__(self):
        return f"<Request {self.method} {self._target}>"


_UNSET = object()
