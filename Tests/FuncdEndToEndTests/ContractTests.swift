import Foundation
import Testing

/// The HTTP contract of the kubeless python runtime, which funcd replaces without changes to
/// user code: the routes, the event and context a handler receives, the bottle-like request
/// object, and how each kind of result becomes a response.
///
/// Each test starts its own `funcd serve` on a free port with `Fixtures/app.py` (the request path
/// selects the handler's behaviour; other paths echo a JSON description of what it received).
@Suite(.sharesMachine)
struct ContractTests {
    // MARK: Routes

    @Test("GET /healthz answers 200 with body OK")
    func healthz() throws {
        try Funcd.withServer { server in
            let response = try server.get("/healthz")
            #expect(response.status == 200, "GET /healthz → \(response)\n\(server.diagnostics)")
            #expect(response.text == "OK", "GET /healthz → \(response)\n\(server.diagnostics)")
        }
    }

    @Test("every method on any path reaches the handler")
    func everyMethodReachesTheHandler() throws {
        try Funcd.withServer { server in
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
                let response = try server.request(method, "/any/path?x=1")
                #expect(response.status == 200, "\(method) /any/path?x=1 → \(response)\n\(server.diagnostics)")
                let event = JSONObject(response)
                #expect(event?.string("method") == method, "\(method): the handler saw \(response.text)")
                #expect(event?.string("path") == "/any/path", "\(method): the handler saw \(response.text)")
            }

            // HEAD also reaches the handler, and its response carries no body: the next response
            // on the same connection must parse cleanly.
            let connection = try server.connect()
            defer { connection.close() }
            let head = try connection.request(method: "HEAD", path: "/any/path")
            #expect(head.status == 200, "HEAD /any/path → \(head)\n\(server.diagnostics)")
            let after = try connection.request(path: "/fast")
            #expect(
                after.status == 200 && after.text == "fast",
                "GET /fast after HEAD on the same connection → \(after)\n\(server.diagnostics)")
        }
    }

    // MARK: The request object

    @Test("req.path, req.query_string, req.query and req.url for /a/b?x=1")
    func pathAndQuery() throws {
        try Funcd.withServer { server in
            let response = try server.get("/a/b?x=1")
            let event = try #require(JSONObject(response), "GET /a/b?x=1 → \(response)\n\(server.diagnostics)")
            #expect(event.string("method") == "GET", "\(event)")
            #expect(event.string("path") == "/a/b", "req.path has no query: \(event)")
            #expect(event.string("query_string") == "x=1", "\(event)")
            #expect(event.string("query_x") == "1", "req.query.get('x'): \(event)")
            let url = event.string("url") ?? ""
            #expect(url.hasPrefix("http://") && url.hasSuffix("/a/b?x=1"), "req.url is the full URL: \(event)")
        }
    }

    @Test("req.headers and req.get_header are case-insensitive")
    func headers() throws {
        try Funcd.withServer { server in
            let response = try server.get("/headers", headers: ["X-Foo": "bar"])
            let event = try #require(JSONObject(response), "GET /headers → \(response)\n\(server.diagnostics)")
            #expect(event.string("header_exact") == "bar", "req.headers['X-Foo']: \(event)")
            #expect(event.string("remote_addr") == "127.0.0.1", "req.remote_addr, the client's: \(event)")
            #expect(event.string("header_lower") == "bar", "req.headers['x-foo']: \(event)")
            #expect(event.string("get_header") == "bar", "req.get_header('x-foo', 'dflt'): \(event)")
            #expect(event.string("get_header_missing") == "dflt", "req.get_header('x-missing', 'dflt'): \(event)")
        }
    }

    // MARK: The event

    @Test("event keys, and event-* fields taken from the request headers")
    func eventFieldsFromHeaders() throws {
        try Funcd.withServer { server in
            let response = try server.request(
                "POST", "/event",
                headers: [
                    "Content-Type": "text/plain",
                    "event-id": "id-123",
                    "event-type": "com.example.test",
                    "event-time": "2026-11-21T10:00:00Z",
                    "event-namespace": "e2e",
                ],
                body: "payload")
            let event = try #require(JSONObject(response), "POST /event → \(response)\n\(server.diagnostics)")
            let keys = Set(event.strings("event_keys") ?? [])
            let expectedKeys: Set = ["data", "event-id", "event-type", "event-time", "event-namespace", "extensions"]
            #expect(keys.isSuperset(of: expectedKeys), "event keys: \(event)")
            #expect(event.strings("extensions_keys")?.contains("request") == true, "event['extensions']: \(event)")
            #expect(event.string("event-id") == "id-123", "\(event)")
            #expect(event.string("event-type") == "com.example.test", "\(event)")
            #expect(event.string("event-time") == "2026-11-21T10:00:00Z", "\(event)")
            #expect(event.string("event-namespace") == "e2e", "\(event)")

            let bare = try server.get("/event")
            let bareEvent = try #require(JSONObject(bare), "GET /event → \(bare)\n\(server.diagnostics)")
            for key in ["event-id", "event-type", "event-time", "event-namespace"] {
                #expect(bareEvent.isNull(key), "event['\(key)'] is None without its header: \(bareEvent)")
            }
        }
    }

    @Test("application/json: data is the parsed JSON, and req.json, req.body, req.content_length agree")
    func jsonBody() throws {
        try Funcd.withServer { server in
            let body = #"{"a": 1, "b": [1, 2], "s": "\u00fc"}"#
            let response = try server.request("POST", "/json", headers: ["Content-Type": "application/json"], body: body)
            #expect(response.status == 200, "POST /json → \(response)\n\(server.diagnostics)")
            let event = try #require(JSONObject(response), "POST /json → \(response)\n\(server.diagnostics)")
            #expect(event.string("data_type") == "dict", "\(event)")
            #expect(event.canonical("data") == JSONObject.canonicalText(json: body), "event['data']: \(event)")
            #expect(event.canonical("json") == JSONObject.canonicalText(json: body), "req.json: \(event)")
            #expect(event.string("content_type") == "application/json", "req.content_type: \(event)")
            #expect(event.int("content_length") == body.utf8.count, "req.content_length: \(event)")
            #expect(event.string("body_hex") == hex(Array(body.utf8)), "req.body.read(): \(event)")

            let list = try server.request("POST", "/json", headers: ["Content-Type": "application/json"], body: "[1, 2, 3]")
            let listEvent = try #require(JSONObject(list), "POST /json [1, 2, 3] → \(list)\n\(server.diagnostics)")
            #expect(listEvent.string("data_type") == "list", "\(listEvent)")
            #expect(listEvent.canonical("data") == JSONObject.canonicalText(json: "[1, 2, 3]"), "\(listEvent)")
        }
    }

    @Test("other content types: data is the raw body as bytes")
    func rawBody() throws {
        try Funcd.withServer { server in
            let text = try server.request("POST", "/raw", headers: ["Content-Type": "text/plain"], body: "hello raw")
            let textEvent = try #require(JSONObject(text), "POST text/plain → \(text)\n\(server.diagnostics)")
            #expect(textEvent.string("data_type") == "bytes", "\(textEvent)")
            #expect(textEvent.string("data_hex") == hex(Array("hello raw".utf8)), "\(textEvent)")
            #expect(textEvent.string("body_hex") == hex(Array("hello raw".utf8)), "req.body.read(): \(textEvent)")

            let binaryBody: [UInt8] = [0x00, 0xFF, 0x0A, 0x0D, 0x80]
            let binary = try server.request(
                "PUT", "/raw", headers: ["Content-Type": "application/octet-stream"], body: binaryBody)
            let binaryEvent = try #require(JSONObject(binary), "PUT octet-stream → \(binary)\n\(server.diagnostics)")
            #expect(binaryEvent.string("data_type") == "bytes", "\(binaryEvent)")
            #expect(binaryEvent.string("data_hex") == hex(binaryBody), "bytes must arrive unchanged: \(binaryEvent)")

            let empty = try server.get("/raw")
            let emptyEvent = try #require(JSONObject(empty), "GET /raw → \(empty)\n\(server.diagnostics)")
            #expect(emptyEvent.string("data_type") == "bytes", "data is b'' without a body: \(emptyEvent)")
            #expect(emptyEvent.string("data_hex") == "", "data is b'' without a body: \(emptyEvent)")
        }
    }

    @Test("invalid JSON with Content-Type application/json answers 400")
    func invalidJSON() throws {
        try Funcd.withServer { server in
            let response = try server.request(
                "POST", "/json", headers: ["Content-Type": "application/json"], body: "{not json")
            #expect(response.status == 400, "POST invalid JSON → \(response)\n\(server.diagnostics)")
            let next = try server.get("/fast")
            #expect(next.status == 200, "GET /fast after a 400 → \(next)\n\(server.diagnostics)")
        }
    }

    @Test("req.forms reads an urlencoded body")
    func formBody() throws {
        try Funcd.withServer { server in
            let response = try server.request(
                "POST", "/form", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                body: "a=1&b=two+words")
            let event = try #require(JSONObject(response), "POST form → \(response)\n\(server.diagnostics)")
            #expect(event.string("form_a") == "1", "req.forms.get('a'): \(event)")
            #expect(event.string("form_b") == "two words", "req.forms.get('b'): \(event)")
            #expect(event.string("data_type") == "bytes", "a form body is still raw bytes in data: \(event)")
        }
    }

    // MARK: The context

    @Test("context carries function-name, timeout, runtime and memory-limit")
    func contextFields() throws {
        try Funcd.withServer(env: ["FUNC_TIMEOUT": "7.5", "FUNC_MEMORY_LIMIT": "128Mi"]) { server in
            let response = try server.get("/context")
            let event = try #require(JSONObject(response), "GET /context → \(response)\n\(server.diagnostics)")
            let context = try #require(event.object("context"), "\(event)")
            #expect(context.string("function-name") == "handler", "\(context)")
            #expect(context.number("timeout") == 7.5, "FUNC_TIMEOUT=7.5: \(context)")
            #expect(context.string("runtime") == Funcd.runtime, "\(context)")
            #expect(context.string("memory-limit") == "128Mi", "\(context)")
        }
    }

    @Test("context timeout defaults to 180 seconds")
    func defaultTimeoutInContext() throws {
        try Funcd.withServer { server in
            let response = try server.get("/context")
            let event = try #require(JSONObject(response), "GET /context → \(response)\n\(server.diagnostics)")
            #expect(event.object("context")?.number("timeout") == 180, "\(event)")
        }
    }

    @Test("context function-name is the handler's __name__, not the FUNC_HANDLER value")
    func functionNameIsDunderName() throws {
        try Funcd.withServer(handler: "aliased_handler") { server in
            let response = try server.get("/context")
            let event = try #require(JSONObject(response), "GET /context → \(response)\n\(server.diagnostics)")
            #expect(event.object("context")?.string("function-name") == "handler", "\(event)")
        }
    }

    // MARK: Results

    @Test("str, bytes, dict, list, None, funcd.Response and duck-typed results")
    func resultTypes() throws {
        try Funcd.withServer { server in
            let string = try server.get("/str")
            #expect(string.status == 200, "/str → \(string)\n\(server.diagnostics)")
            #expect(string.text == "h\u{e9}llo w\u{f6}rld", "a str result is the UTF-8 body: \(string)")
            #expect(
                string.header("Content-Type")?.lowercased() == "text/html; charset=utf-8",
                "a str result is text/html; charset=UTF-8: \(string)")

            let bytes = try server.get("/bytes")
            #expect(bytes.status == 200, "/bytes → \(bytes)\n\(server.diagnostics)")
            let expectedBytes: [UInt8] = [0x00, 0x01, 0xFE, 0xFF] + Array("raw-bytes".utf8)
            #expect(bytes.body == expectedBytes, "a bytes result is the body as is: \(bytes)")

            let dict = try server.get("/dict")
            #expect(dict.status == 200, "/dict → \(dict)\n\(server.diagnostics)")
            #expect(dict.header("Content-Type")?.hasPrefix("application/json") == true, "\(dict)")
            #expect(
                JSONObject.canonicalText(of: dict.json) == JSONObject.canonicalText(json: #"{"a": 1, "nested": {"b": [1, 2, 3]}, "text": "\u00fc"}"#),
                "a dict result is its JSON: \(dict)")

            let list = try server.get("/list")
            #expect(list.status == 200, "/list → \(list)\n\(server.diagnostics)")
            #expect(list.header("Content-Type")?.hasPrefix("application/json") == true, "\(list)")
            #expect(
                JSONObject.canonicalText(of: list.json) == JSONObject.canonicalText(json: #"[1, "two", null, true]"#),
                "a list result is its JSON: \(list)")

            let none = try server.get("/none")
            #expect(none.status == 200 && none.body.isEmpty, "a None result is 200 with an empty body: \(none)")

            let custom = try server.get("/response")
            #expect(custom.status == 201, "funcd.Response(status=201) → \(custom)\n\(server.diagnostics)")
            #expect(custom.header("X-A") == "b", "funcd.Response(headers=...) → \(custom)")
            #expect(custom.text == "created", "funcd.Response(body) → \(custom)")

            let duck = try server.get("/duck")
            #expect(duck.status == 202, "status_code/body/headers object → \(duck)\n\(server.diagnostics)")
            #expect(duck.header("X-Duck") == "quack", "\(duck)")
            #expect(duck.text == "duck body", "\(duck)")
        }
    }

    @Test("async def handlers are awaited")
    func asyncHandler() throws {
        try Funcd.withServer(fixtures: ["async_app.py"], module: "async_app") { server in
            let response = try server.request(
                "POST", "/async/path", headers: ["Content-Type": "application/json"], body: #"{"k": "v"}"#)
            #expect(response.status == 200, "POST /async/path → \(response)\n\(server.diagnostics)")
            let result = try #require(JSONObject(response), "\(response)\n\(server.diagnostics)")
            #expect(result.bool("async") == true, "\(result)")
            #expect(result.string("path") == "/async/path", "\(result)")
            #expect(result.string("data_type") == "dict", "\(result)")
            #expect(result.canonical("data") == JSONObject.canonicalText(json: #"{"k": "v"}"#), "\(result)")
            #expect(result.string("function-name") == "handler", "\(result)")
        }
    }

    // MARK: Failures and output

    @Test("an exception answers 500, logs the traceback, and the next request is fine")
    func handlerRaises() throws {
        try Funcd.withServer { server in
            let response = try server.get("/raise")
            #expect(response.status == 500, "GET /raise → \(response)\n\(server.diagnostics)")
            #expect(response.text.contains("Internal Server Error"), "GET /raise → \(response)")
            #expect(
                server.waitForStderr(containing: "boom-from-handler"),
                "the exception message reaches stderr\n\(server.diagnostics)")
            #expect(server.stderrText.contains("ValueError"), "the traceback names the exception\n\(server.diagnostics)")
            #expect(server.stderrText.contains("Traceback"), "a full traceback is logged\n\(server.diagnostics)")

            let next = try server.get("/fast")
            #expect(next.status == 200 && next.text == "fast", "GET /fast after the failure → \(next)\n\(server.diagnostics)")
        }
    }

    @Test("print() in a handler reaches stdout promptly, without a flush")
    func printReachesStdout() throws {
        try Funcd.withServer { server in
            let response = try server.get("/print")
            #expect(response.status == 200 && response.text == "ok", "GET /print → \(response)\n\(server.diagnostics)")
            #expect(
                server.waitForStdout(containing: "hello-from-handler", timeout: 5),
                "print() output must reach stdout while the server runs, not at exit\n\(server.diagnostics)")
        }
    }
}

/// Lower-case hexadecimal, as Python's `bytes.hex()` writes it.
func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] })
}
