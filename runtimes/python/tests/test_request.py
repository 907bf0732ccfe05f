"""Tests of funcd._request: the bottle-like request in ``event['extensions']['request']``.

Run from runtimes/python: ``/usr/bin/python3 -m unittest discover -s tests -t . -v``.
"""

import io
import os
import sys
import tempfile
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(_HERE) not in sys.path:  # runtimes/python, when run from elsewhere
    sys.path.insert(0, os.path.dirname(_HERE))

from funcd._request import FileUpload, Headers, MultiDict, Request  # noqa: E402

FORM = "application/x-www-form-urlencoded"


def request(method="GET", target="/", headers=(), body=b""):
    """A Request as the host builds it: headers are a tuple of (name, value) pairs."""
    return Request(method, target, tuple(headers), body)


def multipart(boundary, *parts):
    """A multipart/form-data body; each part is (headers, data bytes)."""
    out = b""
    for headers, data in parts:
        out += b"--" + boundary + b"\r\n"
        for header in headers:
            out += header + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


# MARK: - where the request went


class TargetTest(unittest.TestCase):
    def test_method(self):
        self.assertEqual(request(method="DELETE").method, "DELETE")

    def test_path_is_unquoted_without_query(self):
        r = request(target="/a%20b/caf%C3%A9?x=1")
        self.assertEqual(r.path, "/a b/café")
        self.assertEqual(r.fullpath, "/a b/café")
        self.assertEqual(request(target="/a//b/").fullpath, "/a/b/")

    def test_empty_path_is_slash(self):
        self.assertEqual(request(target="").path, "/")
        self.assertEqual(request(target="?x=1").path, "/")

    def test_query_string(self):
        self.assertEqual(request(target="/p?x=1&y=a%20b").query_string, "x=1&y=a%20b")
        self.assertEqual(request(target="/p").query_string, "")
        self.assertEqual(request(target="/p?").query_string, "")

    def test_query(self):
        r = request(target="/p?x=1&x=2&name=J%C3%BCrgen+M&empty=")
        self.assertEqual(r.query.get("x"), "2")  # the last value, as bottle
        self.assertEqual(r.query.getall("x"), ["1", "2"])
        self.assertEqual(r.query["name"], "Jürgen M")
        self.assertEqual(r.query.get("empty"), "")
        self.assertIsNone(r.query.get("missing"))
        self.assertEqual(r.query.get("missing", "d"), "d")
        self.assertEqual(r.query.getall("missing"), [])
        self.assertIs(r.GET, r.query)
        self.assertIs(r.query, r.query, "parsed once")

    def test_query_attribute_access_like_formsdict(self):
        r = request(target="/p?x=1")
        self.assertEqual(r.query.x, "1")
        self.assertEqual(r.query.missing, "")
        self.assertEqual(r.query.getone("x"), "1")
        self.assertEqual(r.query.getunicode("x"), "1")

    def test_url_with_host(self):
        r = request(target="/p/q?x=1", headers=[("Host", "example.com:8080")])
        self.assertEqual(r.url, "http://example.com:8080/p/q?x=1")
        self.assertEqual(r.urlparts.netloc, "example.com:8080")
        self.assertEqual(r.urlparts.path, "/p/q")
        self.assertEqual(r.urlparts.query, "x=1")

    def test_url_behind_a_proxy(self):
        headers = [("Host", "internal:8080"), ("X-Forwarded-Host", "api.example.com"), ("X-Forwarded-Proto", "https")]
        self.assertEqual(request(target="/p", headers=headers).url, "https://api.example.com/p")

    def test_url_without_host(self):
        self.assertEqual(request(target="/p").url, "http://localhost/p")

    def test_repr(self):
        self.assertEqual(repr(request(method="POST", target="/x?y")), "<Request POST /x?y>")


# MARK: - headers


class HeadersTest(unittest.TestCase):
    def setUp(self):
        self.request = request(
            headers=[("Host", "example.com"), ("x-foo", "bar"), ("Accept", "text/html"), ("ACCEPT", "application/json")]
        )

    def test_case_insensitive(self):
        headers = self.request.headers
        self.assertEqual(headers["X-FOO"], "bar")
        self.assertEqual(headers.get("X-Foo"), "bar")
        self.assertIn("x-FOO", headers)
        self.assertNotIn("x-bar", headers)
        with self.assertRaises(KeyError):
            headers["x-bar"]

    def test_get_header(self):
        self.assertEqual(self.request.get_header("HOST"), "example.com")
        self.assertIsNone(self.request.get_header("x-missing"))
        self.assertEqual(self.request.get_header("x-missing", "default"), "default")

    def test_repeated_headers_are_joined(self):
        self.assertEqual(self.request.get_header("accept"), "text/html,application/json")

    def test_items_keys_values_len(self):
        headers = self.request.headers
        self.assertEqual(
            headers.items(), [("Host", "example.com"), ("X-Foo", "bar"), ("Accept", "text/html,application/json")]
        )
        self.assertEqual(headers.keys(), ["Host", "X-Foo", "Accept"])
        self.assertEqual(list(headers), ["Host", "X-Foo", "Accept"])
        self.assertEqual(headers.values(), ["example.com", "bar", "text/html,application/json"])
        self.assertEqual(len(headers), 3)
        self.assertIn("X-Foo", repr(headers))

    def test_raw_is_as_received(self):
        pairs = (("x-foo", "1"), ("X-Foo", "2"))
        self.assertIs(Headers(pairs).raw(), pairs)

    def test_headers_object_is_reused(self):
        self.assertIs(self.request.headers, self.request.headers)

    def test_no_headers(self):
        r = request()
        self.assertEqual(len(r.headers), 0)
        self.assertEqual(r.headers.items(), [])
        self.assertEqual(r.content_type, "")

    def test_is_xhr(self):
        self.assertTrue(request(headers=[("X-Requested-With", "XMLHttpRequest")]).is_xhr)
        self.assertFalse(request().is_xhr)

    def test_cookies(self):
        r = request(headers=[("Cookie", 'session=abc123; theme="dark mode"; n=1')])
        self.assertEqual(r.cookies["session"], "abc123")
        self.assertEqual(r.cookies.get("theme"), "dark mode")
        self.assertEqual(r.get_cookie("n"), "1")
        self.assertIsNone(r.get_cookie("missing"))
        self.assertEqual(r.get_cookie("missing", "d"), "d")

    def test_no_cookies(self):
        self.assertEqual(dict(request().cookies), {})

    def test_content_type(self):
        r = request(headers=[("content-type", "application/json; charset=utf-8")])
        self.assertEqual(r.content_type, "application/json; charset=utf-8")

    def test_content_length(self):
        self.assertEqual(request(headers=[("Content-Length", "5")], body=b"hello").content_length, 5)
        self.assertEqual(request(body=b"abc").content_length, 3)
        self.assertEqual(request().content_length, 0)
        self.assertEqual(request(headers=[("Content-Length", "many")], body=b"ab").content_length, 2)


# MARK: - the body


class BodyTest(unittest.TestCase):
    def test_body_can_be_read_twice(self):
        r = request(method="POST", body=b"some \x00 bytes")
        self.assertEqual(r.body.read(), b"some \x00 bytes")
        self.assertEqual(r.body.read(), b"some \x00 bytes")
        first = r.body
        first.read(4)
        self.assertEqual(r.body.read(), b"some \x00 bytes", "each read starts at the beginning")

    def test_json(self):
        r = request(method="POST", headers=[("Content-Type", "application/json; charset=utf-8")],
                    body='{"a": [1, "é"]}'.encode())
        self.assertEqual(r.json, {"a": [1, "é"]})
        self.assertIs(r.json, r.json, "parsed once")

    def test_json_only_for_json_content_types(self):
        self.assertIsNone(request(headers=[("Content-Type", "text/plain")], body=b'{"a": 1}').json)
        self.assertIsNone(request(body=b'{"a": 1}').json)
        self.assertIsNone(request(headers=[("Content-Type", "application/json")], body=b"").json)
        self.assertEqual(request(headers=[("Content-Type", "application/json-rpc")], body=b"[1]").json, [1])

    def test_invalid_json_raises(self):
        with self.assertRaises(ValueError):
            request(headers=[("Content-Type", "application/json")], body=b"{").json

    def test_urlencoded_forms(self):
        r = request(method="POST", headers=[("Content-Type", FORM)], body=b"a=1&b=hello+world&a=2&c=%C3%A9&d=")
        self.assertEqual(r.forms["a"], "2")
        self.assertEqual(r.forms.getall("a"), ["1", "2"])
        self.assertEqual(r.forms.get("b"), "hello world")
        self.assertEqual(r.forms.c, "é")
        self.assertEqual(r.forms.d, "")
        self.assertEqual(r.forms.missing, "")
        self.assertEqual(list(r.POST.allitems()), list(r.forms.allitems()))  # no files here
        self.assertEqual(dict(r.files), {})

    def test_urlencoded_raw_utf8(self):
        # curl -d 'name=Zoë' sends the UTF-8 bytes unescaped.
        r = request(method="POST", headers=[("Content-Type", FORM + "; charset=UTF-8")], body="name=Zoë&x=%C3%A9".encode())
        self.assertEqual(r.forms["name"], "Zoë")
        self.assertEqual(r.forms["x"], "é")

    def test_urlencoded_not_utf8_does_not_fail(self):
        r = request(method="POST", headers=[("Content-Type", FORM)], body=b"name=Zo\xeb")
        self.assertEqual(r.forms["name"], "Zo\xeb")

    def test_no_form_for_other_content_types(self):
        r = request(method="POST", headers=[("Content-Type", "text/plain")], body=b"a=1")
        self.assertEqual(dict(r.forms), {})
        self.assertEqual(dict(r.files), {})

    def test_multipart_forms_and_files(self):
        body = multipart(
            b"XyZzy",
            ([b'Content-Disposition: form-data; name="title"'], "café".encode()),
            ([b'Content-Disposition: form-data; name="tag"'], b"one"),
            ([b'Content-Disposition: form-data; name="tag"'], b"two"),
            (
                [b'Content-Disposition: form-data; name="upload"; filename="data.bin"',
                 b"Content-Type: application/octet-stream"],
                b"\x00\xff\r\nsecond line\n\r\n",
            ),
            ([b'Content-Disposition: form-data; name="note"; filename="note.txt"', b"Content-Type: text/plain"],
             b"hello"),
            ([b"Content-Type: text/plain"], b"a part without a name is skipped"),
        )
        r = request(method="POST", headers=[("Content-Type", "multipart/form-data; boundary=XyZzy")], body=body)
        self.assertEqual(r.forms["title"], "café")
        self.assertEqual(r.forms.getall("tag"), ["one", "two"])
        self.assertEqual(set(r.forms), {"title", "tag"})
        self.assertEqual(set(r.files), {"upload", "note"})

        upload = r.files["upload"]
        self.assertIsInstance(upload, FileUpload)
        self.assertEqual(upload.name, "upload")
        self.assertEqual(upload.filename, "data.bin")
        self.assertEqual(upload.raw_filename, "data.bin")
        self.assertEqual(upload.content_type, "application/octet-stream")
        self.assertEqual(upload.file.read(), b"\x00\xff\r\nsecond line\n\r\n")
        self.assertEqual(upload.content_length, len(b"\x00\xff\r\nsecond line\n\r\n"))

        note = r.files.get("note")
        self.assertEqual((note.filename, note.content_type, note.file.read()), ("note.txt", "text/plain", b"hello"))

    def test_multipart_file_save(self):
        body = multipart(b"b", ([b'Content-Disposition: form-data; name="f"; filename="f.txt"'], b"saved"))
        upload = request(headers=[("Content-Type", "multipart/form-data; boundary=b")], body=body).files["f"]
        out = io.BytesIO()
        upload.save(out)
        self.assertEqual(out.getvalue(), b"saved")
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "out.txt")
            upload.save(path)
            with open(path, "rb") as saved:
                self.assertEqual(saved.read(), b"saved")

    def test_multipart_utf8_filename(self):
        body = multipart(b"b", (['Content-Disposition: form-data; name="f"; filename="été.txt"'.encode()], b"x"))
        upload = request(headers=[("Content-Type", "multipart/form-data; boundary=b")], body=body).files["f"]
        self.assertEqual(upload.filename, "été.txt")

    def test_multipart_field_charset(self):
        body = multipart(
            b"b", ([b'Content-Disposition: form-data; name="t"', b"Content-Type: text/plain; charset=latin-1"], b"Zo\xeb")
        )
        r = request(headers=[("Content-Type", "multipart/form-data; boundary=b")], body=body)
        self.assertEqual(r.forms["t"], "Zoë")

    def test_params_merge_query_and_forms(self):
        r = request(method="POST", target="/p?a=q1&only_query=1", headers=[("Content-Type", FORM)],
                    body=b"a=f1&only_form=2")
        params = r.params
        self.assertEqual(params.getall("a"), ["q1", "f1"])
        self.assertEqual(params["a"], "f1")
        self.assertEqual(params["only_query"], "1")
        self.assertEqual(params["only_form"], "2")


# MARK: - WSGI-style access


class EnvironTest(unittest.TestCase):
    def test_environ(self):
        r = request(
            method="PATCH",
            target="/a%20b?x=1",
            headers=[("Content-Type", "text/plain"), ("X-Foo", "bar"), ("x-foo", "baz"), ("User-Agent", "t")],
            body=b"body",
        )
        env = r.environ
        self.assertEqual(env["REQUEST_METHOD"], "PATCH")
        self.assertEqual(env["PATH_INFO"], "/a b")
        self.assertEqual(env["QUERY_STRING"], "x=1")
        self.assertEqual(env["CONTENT_TYPE"], "text/plain")
        self.assertEqual(env["CONTENT_LENGTH"], "4")
        self.assertEqual(env["HTTP_X_FOO"], "bar,baz")
        self.assertEqual(env["HTTP_USER_AGENT"], "t")
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertEqual(env["wsgi.input"].read(), b"body")
        self.assertEqual(r.environ["wsgi.input"].read(), b"body", "a fresh stream each time")


class MultiDictTest(unittest.TestCase):
    def test_pairs(self):
        d = MultiDict([("a", 1), ("b", 2), ("a", 3)])
        self.assertEqual(dict(d), {"a": 3, "b": 2})
        self.assertEqual(d.getall("a"), [1, 3])
        self.assertEqual(len(d), 2)
        d.append("b", 4)
        self.assertEqual(d["b"], 4)
        self.assertEqual(d.getall("b"), [2, 4])

    def test_getall_returns_a_copy(self):
        d = MultiDict([("a", 1)])
        d.getall("a").append(2)
        self.assertEqual(d.getall("a"), [1])

    def test_dunder_attributes_are_not_answered(self):
        d = MultiDict()
        self.assertFalse(hasattr(d, "__missing_dunder__"))
        self.assertEqual(d.anything, "")


if __name__ == "__main__":
    unittest.main()
