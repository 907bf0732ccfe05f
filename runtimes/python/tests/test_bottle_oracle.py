"""funcd's request object against bottle's own (Debian's python3-bottle), the oracle: the same
seeded stream of requests is given to both, and every call a handler can make without bottle's
app must answer alike, or differ as the README lists (non-ASCII values are text here, WSGI's
latin-1 "native strings" in bottle's item access; a repeated header is joined with ',').

Run from runtimes/python: ``/usr/bin/python3 -m unittest tests.test_bottle_oracle``.
"""

import io
import os
import random
import sys
import unittest
from urllib.parse import quote, unquote

_HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(_HERE) not in sys.path:
    sys.path.insert(0, os.path.dirname(_HERE))

import bottle  # noqa: E402  (the oracle; scripts/install-deps installs python3-bottle)

from funcd._request import Request  # noqa: E402

WORDS = ["a", "b", "id", "name", "x_y", "tag", "Q", "empty"]
VALUES = ["1", "42", "-7", "hello world", "", "a+b", "x=y", "50%", "é", "日本", "ok&more", "3.5"]


def encode_pairs(rng, pairs):
    out = []
    for key, value in pairs:
        text = quote(value, safe="") if rng.random() < 0.7 else quote(value, safe="").replace("%20", "+")
        out.append(f"{quote(key)}={text}" if value or rng.random() < 0.5 else quote(key))
    return "&".join(out)


def random_request(rng):
    """(method, target, headers, body): a request of the kinds kubeless handlers received."""
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH"])
    path = "/" + "/".join(rng.choice(["", "api", "v1", "items", "x.json", "a-b"]) for _ in range(rng.randint(0, 3)))
    pairs = [(rng.choice(WORDS), rng.choice(VALUES)) for _ in range(rng.randint(0, 5))]
    target = path + ("?" + encode_pairs(rng, pairs) if pairs or rng.random() < 0.2 else "")
    headers = [("Host", "fn.example:8080"), ("User-Agent", "oracle/1")]
    for name in rng.sample(["X-Request-Id", "x-custom", "Accept", "X-Requested-With", "Cookie", "Authorization",
                             "X-Forwarded-For"], rng.randint(0, 3)):
        # Header bytes 0x80-0xFF reach both as WSGI gives them: each byte a Latin-1 character
        # (a client's Latin-1 "café" and UTF-8 "né" alike), as funcd's front hands them over.
        value = {"Cookie": "sid=abc; theme=dark", "X-Requested-With": "XMLHttpRequest",
                 "Accept": "application/json", "X-Forwarded-For": "203.0.113.9, 10.0.0.2", "x-custom": rng.choice(["caf\xe9", "n\xc3\xa9 \xff", "plain"]),
                 }.get(name, f"v{rng.randint(0, 99)}")
        headers.append((name, value))
    body = b""
    kind = rng.choice(["none", "form", "multipart", "json", "text"])
    if method in ("POST", "PUT", "PATCH") and kind != "none":
        if kind == "form":
            fields = [(rng.choice(WORDS), rng.choice(VALUES)) for _ in range(rng.randint(1, 4))]
            body = encode_pairs(rng, fields).encode()
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif kind == "multipart":
            boundary = f"b{rng.randint(1000, 9999)}"
            parts = []
            for index in range(rng.randint(1, 4)):
                name = rng.choice(WORDS)
                if rng.random() < 0.4:
                    data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
                    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="f{index}.bin"\r\n'
                                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
                else:
                    value = rng.choice([v for v in VALUES if v.isascii()])
                    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            headers.append(("Content-Type", f"multipart/form-data; boundary={boundary}"))
        elif kind == "json":
            body = rng.choice([b'{"a": 1, "b": [true, null]}', b"[1, 2, 3]", b'"text"', b"{}"])
            headers.append(("Content-Type", rng.choice(["application/json", "application/json; charset=utf-8"])))
        else:
            body = b"plain words"
            headers.append(("Content-Type", "text/plain"))
        headers.append(("Content-Length", str(len(body))))
    return method, target, headers, body


PEER = "10.1.2.3"


def bottle_request(method, target, headers, body):
    path, _, query = target.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": unquote(path).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "fn.example", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": PEER,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    return bottle.BaseRequest(environ)


def native(text):
    """What bottle's item access gives for `text`: WSGI's latin-1 view of its UTF-8 bytes."""
    return text.encode("utf-8").decode("latin-1") if isinstance(text, str) else text


class BottleOracleTest(unittest.TestCase):
    def compare_dicts(self, ours, theirs, what):
        self.assertEqual(sorted(ours.keys()), sorted(theirs.keys()), what)
        self.assertEqual(sorted((k, native(v)) for k, v in ours.allitems()),
                         sorted(theirs.allitems()), what)
        for key in theirs.keys():
            self.assertEqual([native(v) for v in ours.getall(key)], theirs.getall(key), (what, key))
            self.assertEqual([native(v) for v in ours.getlist(key)], theirs.getlist(key), (what, key))
            self.assertEqual(native(ours.get(key)), theirs.get(key), (what, key))
            self.assertEqual(native(ours.get(key, index=0)), theirs.get(key, index=0), (what, key))
            self.assertEqual(ours.get(key, -1, type=int), theirs.get(key, -1, type=int), (what, key))
            self.assertEqual(native(ours.getone(key)), theirs.getone(key), (what, key))
            # Attribute access and getunicode decode in bottle too: equal as they are.
            self.assertEqual(getattr(ours, key), getattr(theirs, key), (what, key))
            self.assertEqual(ours.getunicode(key), theirs.getunicode(key), (what, key))
            self.assertEqual(ours.decode()[key], theirs.decode()[key], (what, key))
        self.assertEqual(ours.get("absent", "d"), theirs.get("absent", "d"), what)
        self.assertEqual(ours.absent, theirs.absent, what)
        self.assertEqual(ours.getall("absent"), theirs.getall("absent"), what)

    def test_generated_requests(self):
        rng = random.Random(20261206)
        for number in range(400):
            method, target, headers, body = random_request(rng)
            what = f"request {number}: {method} {target} {headers} {body[:80]!r}"
            ours = Request(method, target, tuple(headers), body, PEER)
            theirs = bottle_request(method, target, headers, body)
            with self.subTest(what):
                self.assertEqual(ours.method, theirs.method)
                if not target.startswith("//"):  # bottle strips a leading "//" (README: kept here)
                    self.assertEqual(ours.path, theirs.path)
                self.assertEqual(ours.fullpath, theirs.fullpath)
                self.assertEqual(ours.query_string, theirs.query_string)
                self.assertEqual(ours.content_type, theirs.content_type)
                if any(name == "Content-Length" for name, _ in headers):
                    # Without one (chunked), the body's length here: it is whole; bottle says -1.
                    self.assertEqual(ours.content_length, theirs.content_length)
                self.assertEqual(ours.is_xhr, theirs.is_xhr)
                self.assertEqual(ours.remote_addr, theirs.remote_addr)
                self.assertEqual(ours.remote_route, theirs.remote_route)
                self.assertEqual(ours.environ["REMOTE_ADDR"], theirs.environ["REMOTE_ADDR"])
                self.assertEqual(ours.body.read(), theirs.body.read())
                for name, _ in headers:
                    self.assertEqual(ours.get_header(name), theirs.get_header(name), name)
                    self.assertEqual(ours.get_header(name.lower()), theirs.get_header(name.lower()), name)
                    self.assertEqual(ours.headers.get(name), theirs.headers.get(name), name)
                    self.assertEqual(ours.headers.raw(name), theirs.headers.raw(name), name)
                    self.assertEqual(ours.headers[name], theirs.headers[name], name)
                self.assertEqual(sorted(ours.headers.keys()), sorted(theirs.headers.keys()))
                self.assertEqual(ours.get_header("absent", "d"), theirs.get_header("absent", "d"))
                self.assertEqual(ours.get_cookie("sid"), theirs.get_cookie("sid"))
                self.assertEqual(ours.json, theirs.json)
                self.compare_dicts(ours.query, theirs.query, "query")
                self.compare_dicts(ours.GET, theirs.GET, "GET")
                media = ours.content_type.split(";")[0]
                if not body or media in ("application/x-www-form-urlencoded", "multipart/form-data"):
                    # bottle parses any other body as a form too (README: here only forms are)
                    self.compare_dicts(ours.forms, theirs.forms, "forms")
                    self.compare_dicts(ours.params, theirs.params, "params")
                self.assertEqual(sorted(ours.files.keys()), sorted(theirs.files.keys()))
                for key in theirs.files.keys():
                    mine, real = ours.files.getall(key), theirs.files.getall(key)
                    self.assertEqual([f.filename for f in mine], [f.filename for f in real])
                    self.assertEqual([f.raw_filename for f in mine], [f.raw_filename for f in real])
                    self.assertEqual([f.name for f in mine], [f.name for f in real])
                    self.assertEqual([f.content_type for f in mine], [f.content_type for f in real])
                    self.assertEqual([f.file.read() for f in mine], [f.file.read() for f in real])
                if not body or media in ("application/x-www-form-urlencoded", "multipart/form-data"):
                    self.assertEqual(sorted(ours.POST.keys()), sorted(theirs.POST.keys()))


if __name__ == "__main__":
    unittest.main()
