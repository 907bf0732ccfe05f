import Foundation
import Testing

/// funcd-node through the real binary over loopback: every row of the contract for Node, streamed
/// answers, require of a helper and of a package, timeouts the host recovers from, failures, and
/// start-up errors. One server runs `Fixtures/node/app.js`'s `route` handler, which calls the
/// export named by the request path.
@Suite(.sharesMachine)
struct NodeTests {
    /// Serves `Fixtures/node` as a kubeless nodejs pod would (`FUNC_RUNTIME=nodejs18`).
    static func withNodeServer(
        handler: String = "route", env: [String: String] = [:], layout: Funcd.Layout = .plain,
        _ body: (FuncdProcess) throws -> Void
    ) throws {
        try Funcd.withFixtureFolderServer("node", runtime: "nodejs18", handler: handler, env: env, layout: layout, body)
    }

    // MARK: - Event, context, results

    @Test("event: JSON data parsed, event-* headers, context from the environment")
    func eventAndContext() throws {
        try Self.withNodeServer(env: ["FUNC_TIMEOUT": "7", "FUNC_MEMORY_LIMIT": "128Mi"]) { server in
            try EventContract.expectEventAndContext(server, kindKey: "dataType", objectKind: "object", runtime: "nodejs18")
        }
    }

    @Test("event: a non-JSON body is a UTF-8 string, no body {} (as express's body-parser left it), absent event headers null")
    func stringData() throws {
        try Self.withNodeServer { server in
            try EventContract.expectStringData(server, kindKey: "dataType", stringKind: "string", noBodyIsEmptyObject: true)
        }
    }

    @Test("extensions.request: method, url, path, query (nested by qs, as express), get, headers, is, body")
    func expressRequest() throws {
        try Self.withNodeServer { server in
            let response = try server.request(
                "PUT", "/request?x=1&y=a&y=b&o%5Bp%5D%5Bq%5D=deep&arr%5B%5D=1&arr%5B%5D=2",
                headers: ["X-Custom": "yes", "Content-Type": "application/json"], body: #"{"k":true}"#)
            let request = try #require(response.jsonObject, "\(response)")
            #expect(request["method"] as? String == "PUT")
            #expect(request["url"] as? String == "/request?x=1&y=a&y=b&o%5Bp%5D%5Bq%5D=deep&arr%5B%5D=1&arr%5B%5D=2")
            #expect(request["path"] as? String == "/request")
            let query = request["query"] as? [String: Any]
            #expect(query?["x"] as? String == "1" && query?["y"] as? [String] == ["a", "b"], "\(request)")
            #expect(((query?["o"] as? [String: Any])?["p"] as? [String: Any])?["q"] as? String == "deep", "\(request)")
            #expect(query?["arr"] as? [String] == ["1", "2"], "\(request)")
            #expect(request["header"] as? String == "yes")
            #expect(request["headers"] as? String == "yes")
            #expect(request["isJSON"] as? String == "json")
            #expect(request["body"] as? String == #"{"k":true}"#)
        }
    }

    /// funcd-node hands an ASCII body to the glue as a string and any other as a Buffer: both
    /// must give the same request.body bytes and event.data.
    @Test("request.body is the bytes sent and event.data their decoding, for ASCII bodies and any other")
    func bodyBytes() throws {
        try Self.withNodeServer { server in
            let cases: [(type: String, body: [UInt8], data: Any)] = [
                ("application/json", Array(#"{"k":[1,"x"]}"#.utf8), ["k": [1, "x"]] as [String: Any]),
                ("text/plain", Array("tab\t nul\u{0} del\u{7f}".utf8), "tab\t nul\u{0} del\u{7f}"),
                ("application/json", Array(#"{"s":"\#u{e9}"}"#.utf8), ["s": "\u{e9}"]),
                ("text/plain", Array("caf\u{e9}".utf8), "caf\u{e9}"),
                // Not UTF-8: each bad byte decodes to U+FFFD, as Buffer.toString('utf8') does.
                ("text/plain", [0x61, 0xFF, 0x80, 0x62], "a\u{FFFD}\u{FFFD}b"),
            ]
            for (type, body, data) in cases {
                let response = try server.request("POST", "/bodyBytes", headers: ["Content-Type": type], body: body)
                let answer = try #require(response.jsonObject, "\(type) \(body) → \(response)\n\(server.diagnostics)")
                #expect(answer["isBuffer"] as? Bool == true, "\(answer)")
                #expect(answer["hex"] as? String == body.map { String(format: "%02x", $0) }.joined(), "\(answer)")
                if let text = data as? String {
                    #expect(answer["data"] as? String == text, "\(type) \(body): \(answer)")
                } else {
                    #expect(NSDictionary(dictionary: answer["data"] as? [String: Any] ?? [:]).isEqual(to: data as! [String: Any]),
                            "\(type) \(body): \(answer)")
                }
            }
        }
    }

    @Test("extensions.request: ip is the client's socket address (X-Forwarded-For not trusted), accepts*, xhr, subdomains, fresh, params")
    func expressNegotiation() throws {
        try Self.withNodeServer { server in
            let response = try server.request(
                "GET", "/negotiation?q=1",
                headers: [
                    "Host": "a.b.fn.example", "Accept": "text/html;q=0.5, application/json", "Accept-Encoding": "gzip",
                    "Accept-Language": "fr-CH, fr;q=0.9", "X-Requested-With": "XMLHttpRequest", "If-None-Match": #""v1""#,
                    "X-Forwarded-For": "203.0.113.9", "Cookie": "a=1",
                ], body: "")
            let answer = try #require(response.jsonObject, "\(response)\n\(server.diagnostics)")
            #expect(answer["ip"] as? String == "127.0.0.1", "\(answer)")
            #expect((answer["ips"] as? [Any])?.isEmpty == true, "\(answer)")
            #expect(answer["protocol"] as? String == "http" && answer["secure"] as? Bool == false, "\(answer)")
            #expect(answer["accepts"] as? String == "json", "\(answer)")
            #expect(answer["encoding"] as? String == "gzip", "\(answer)")
            #expect(answer["language"] as? String == "fr", "\(answer)")
            #expect(answer["xhr"] as? Bool == true, "\(answer)")
            #expect(answer["subdomains"] as? [String] == ["b", "a"], "\(answer)")
            #expect(answer["fresh"] as? Bool == true, "\(answer)")
            #expect((answer["params"] as? [String: Any])?["0"] as? String == "/negotiation", "\(answer)")
            #expect(answer["originalUrl"] as? String == "/negotiation?q=1" && answer["baseUrl"] as? String == "", "\(answer)")
            #expect(answer["cookies"] as? String == "undefined", "\(answer)")
        }
    }

    @Test("results: string, object, undefined, number, null, bytes, WHATWG Response, Promise")
    func results() throws {
        try Self.withNodeServer { server in
            let string = try server.get("/string")
            #expect(string.status == 200 && string.text == "plain text", "\(string)")
            let object = try server.get("/object")
            #expect(object.text == #"{"answer":42}"#, "\(object)")
            #expect(object.header("Content-Type") == "application/json; charset=utf-8")
            let nothing = try server.get("/nothing")
            #expect(nothing.status == 200 && nothing.body.isEmpty, "\(nothing)")
            #expect(try server.get("/number").text == "7")
            #expect(try server.get("/nullValue").text == "null")
            // A string answer's UTF-8: each width, a lone surrogate replaced, and a large one whole.
            #expect(try server.get("/unicode").body == Array("a\u{e9}\u{6f22}\u{1F642}\u{FFFD}z".utf8))
            // A one-byte string past ASCII: Latin-1 in V8, two bytes each in UTF-8.
            #expect(try server.get("/latin1").body == Array("caf\u{e9} cr\u{e8}me \u{ff}".utf8))
            let large = try server.get("/large")
            #expect(large.body.count == 600 * 1024 * 2 + 3 && large.text.hasSuffix("\u{e9}end"), "\(large.body.count) bytes")
            #expect(try server.get("/buffer").body == [0, 1, 2, 255])
            let fetch = try server.get("/fetchResponse")
            #expect(fetch.status == 201 && fetch.text == "created" && fetch.header("X-Made-By") == "fetch", "\(fetch)")
            let promise = try server.request("POST", "/promise", headers: ["Content-Type": "application/json"], body: "[1]")
            #expect(promise.text == #"{"waited":true,"data":[1]}"#, "\(promise)")
        }
    }

    @Test("extensions.response: status, set and json; a status set before returning a value")
    func expressResponse() throws {
        try Self.withNodeServer { server in
            let response = try server.get("/response")
            #expect(response.status == 202, "\(response)")
            #expect(response.header("X-Through") == "response")
            #expect(response.text == #"{"through":"response"}"#)
            let made = try server.get("/statusWithValue")
            #expect(made.status == 201 && made.text == "made", "\(made)")
        }
    }

    @Test("res.redirect to a target holding NUL, CR or LF: a 500 with node's ERR_INVALID_CHAR in the log, never an injected header")
    func redirectCannotInjectHeaders() throws {
        try Self.withNodeServer { server in
            for next in ["/home%00Set-Cookie%00session=attacker", "/home%0D%0ASet-Cookie:%20session=attacker"] {
                let injected = try server.get("/redirect?next=\(next)")
                #expect(injected.status == 500, "\(injected)")
                #expect(injected.headerValues("Set-Cookie").isEmpty, "\(injected)")
                #expect(injected.header("Location") == nil, "\(injected)")
            }
            let logged = #"TypeError [ERR_INVALID_CHAR]: Invalid character in header content ["Location"]"#
            #expect(server.waitForStderr(containing: logged, timeout: 5), "\(server.diagnostics)")
            let plain = try server.get("/redirect?next=/home")
            #expect(plain.status == 302 && plain.header("Location") == "/home", "\(plain)")
        }
    }

    @Test("CORS as the kubeless nodejs runtime: Allow-Origin on answers, OPTIONS preflight echoed")
    func cors() throws {
        try Self.withNodeServer { server in
            #expect(try server.get("/string").header("Access-Control-Allow-Origin") == "*")
            let preflight = try server.request(
                "OPTIONS", "/string",
                headers: ["Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "X-Token"])
            #expect(preflight.status == 200, "\(preflight)")
            #expect(preflight.header("Access-Control-Allow-Origin") == "*")
            #expect(preflight.header("Access-Control-Allow-Methods") == "DELETE")
            #expect(preflight.header("Access-Control-Allow-Headers") == "X-Token")
        }
    }

    // MARK: - Streaming

    @Test("a handler writing through extensions.response is streamed: chunks arrive before it ends")
    func streaming() throws {
        try Self.withNodeServer { server in
            let client = try server.connect()
            defer { client.close() }
            let started = Deadline.now
            try client.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try client.waitForRaw(containing: "first\n", timeout: 10))
            let firstAt = Deadline.now - started
            #expect(try client.waitForRaw(containing: "last\n", timeout: 10))
            let lastAt = Deadline.now - started
            // The handler ends 600 ms after it starts; the first chunk must not wait for that.
            #expect(lastAt - firstAt >= 0.4, "first chunk at \(firstAt) s, last at \(lastAt) s")
            let response = try client.readResponse()
            #expect(response.header("Transfer-Encoding")?.lowercased() == "chunked", "\(response)")
            #expect(response.text == "first\nsecond\nlast\n", "\(response)")
            // The connection stays usable.
            let again = try client.request(method: "GET", path: "/string", body: [])
            #expect(again.text == "plain text")
        }
    }

    @Test("a stream piped into extensions.response arrives whole")
    func pipe() throws {
        try Self.withNodeServer { server in
            let response = try server.get("/pipe")
            #expect(response.status == 200)
            #expect(response.text == String(repeating: "a", count: 1000) + String(repeating: "b", count: 1000) + String(repeating: "c", count: 1000))
        }
    }

    // MARK: - require

    @Test("require: a helper beside the handler, a package in node_modules, built-ins; also in a ConfigMap layout")
    func requires() throws {
        for layout in [Funcd.Layout.plain, .configMap] {
            try Self.withNodeServer(layout: layout) { server in
                let helper = try server.get("/helper")
                let package = try server.get("/package")
                let builtin = try server.get("/builtin")
                #expect(helper.text == "helped node", "\(layout): \(helper)\n\(server.diagnostics)")
                #expect(package.text == "007", "\(layout): \(package)\n\(server.diagnostics)")
                #expect(builtin.text == "string", "\(layout): \(builtin)")
            }
        }
    }

    @Test("console.log in a handler reaches stdout at once")
    func consoleLog() throws {
        try Self.withNodeServer { server in
            let response = try server.get("/log")
            #expect(response.text == "logged")
            #expect(server.waitForStdout(containing: "logged from the handler", timeout: 5), "\(server.diagnostics)")
        }
    }

    // MARK: - Failures and timeouts

    @Test("an exception (thrown or rejected) → 500, stack in the log, serving goes on")
    func exceptions() throws {
        try Self.withNodeServer { server in
            let thrown = try server.get("/throws")
            #expect(thrown.status == 500, "\(thrown)")
            #expect(server.waitForStderr(containing: "handler broke", timeout: 5), "\(server.diagnostics)")
            let rejected = try server.get("/rejects")
            #expect(rejected.status == 500, "\(rejected)")
            #expect(server.waitForStderr(containing: "promise broke", timeout: 5))
            #expect(try server.get("/string").status == 200)
        }
    }

    @Test("process.exit() in a handler → 500 for that call; the server goes on")
    func processExit() throws {
        try Self.withNodeServer(env: ["FUNC_WORKERS": "0"]) { server in
            let response = try server.get("/exits")
            #expect(response.status == 500, "\(response)\n\(server.diagnostics)")
            #expect(try server.get("/string").text == "plain text")
            #expect(server.isRunning)
        }
    }

    @Test(
        "timeouts the host recovers from: a synchronous endless loop, a spin after an await, a spin in a timer, a never-settling Promise",
        arguments: ["/spin", "/spinLater", "/spinInTimer", "/never"])
    func recoveredTimeouts(path: String) throws {
        let timeout = 1.0
        try Self.withNodeServer(env: ["FUNC_TIMEOUT": "\(timeout)", "FUNC_WORKERS": "0"]) { server in
            let port = try server.port()
            let request = try TimedRequest.get(port: port, path: path)
            #expect(request.response.status == 408, "\(path) → \(request.response)\n\(server.diagnostics)")
            #expect(request.elapsed >= timeout && request.elapsed < timeout + 5, "408 after \(request.elapsed) s")
            // The same process serves on (no supervisor here to hide a restart).
            let after = try server.get("/string", timeout: 10)
            #expect(after.status == 200 && after.text == "plain text", "after \(path): \(after)\n\(server.diagnostics)")
            let again = try TimedRequest.get(port: port, path: path)
            #expect(again.response.status == 408, "\(path) a second time → \(again.response)")
            let last = try server.get("/string", timeout: 10)
            #expect(last.status == 200, "after \(path) a second time: \(last)\n\(server.diagnostics)")
            #expect(server.isRunning, "\(server.diagnostics)")
        }
    }

    @Test("a timer a finished call left spinning holds the loop: the next call waits its whole timeout (408), then the spin is stopped and the same process serves on")
    func strayTimerStopped() throws {
        let timeout = 1.0
        try Self.withNodeServer(env: ["FUNC_TIMEOUT": "\(timeout)", "FUNC_WORKERS": "0"]) { server in
            let armed = try server.get("/spinAfterAnswer")
            #expect(armed.text == "armed", "\(armed)\n\(server.diagnostics)")
            Thread.sleep(forTimeInterval: 0.1)
            let waiting = try TimedRequest.get(port: try server.port(), path: "/string")
            #expect(waiting.response.status == 408, "\(waiting.response)\n\(server.diagnostics)")
            #expect(waiting.elapsed >= timeout && waiting.elapsed < timeout + 5, "408 after \(waiting.elapsed) s")
            let after = try server.get("/string", timeout: 10)
            #expect(after.status == 200 && after.text == "plain text", "\(after)\n\(server.diagnostics)")
            #expect(server.waitForStderr(containing: "holds the event loop outside any call", timeout: 5), "\(server.diagnostics)")
            // Stopped for good: the next calls are answered at once.
            let again = try TimedRequest.get(port: try server.port(), path: "/string")
            #expect(again.response.status == 200 && again.elapsed < timeout, "\(again.response) after \(again.elapsed) s")
            #expect(server.isRunning, "\(server.diagnostics)")
        }
    }

    @Test("an idle worker's JavaScript thread sleeps: its heartbeat stops once the timeout + 5 s after the last call have passed, and beats again from the next call")
    func idleHeartbeat() throws {
        try Self.withNodeServer(env: ["FUNC_TIMEOUT": "0.5", "FUNC_WORKERS": "0"]) { server in
            let thread = try #require(ProcessTree.thread(named: "funcd-js", of: server.pid), "\(server.diagnostics)")
            #expect(try server.get("/string").status == 200)
            // Inside the window the 10 ms heartbeat wakes the thread about a hundred times a second.
            let beating = ProcessTree.wakeUps(server.pid, thread: thread, over: 1)
            #expect(beating >= 30, "\(beating) wake-ups in the second after a call")
            Thread.sleep(forTimeInterval: 5)
            let idle = ProcessTree.wakeUps(server.pid, thread: thread, over: 2)
            #expect(idle <= 10, "\(idle) wake-ups in 2 s of an idle worker")
            #expect(try server.get("/string").status == 200)
            let again = ProcessTree.wakeUps(server.pid, thread: thread, over: 1)
            #expect(again >= 30, "\(again) wake-ups in the second after the next call")
        }
    }

    // MARK: - ES modules

    @Test(".mjs handler: top-level await done before funcd says it listens, a helper and a package imported beside it; also in a ConfigMap layout")
    func esModule() throws {
        for layout in [Funcd.Layout.plain, .configMap] {
            try Funcd.withFixtureFolderServer("node-esm", runtime: "nodejs18", handler: "handler", layout: layout) { server in
                let stderr = server.stderrText
                let awaited = try #require(stderr.range(of: "top-level await done"), "\(layout): \(server.diagnostics)")
                let listening = try #require(stderr.range(of: "listening on http://"), "\(layout): \(server.diagnostics)")
                #expect(awaited.upperBound <= listening.lowerBound, "\(layout): \(server.diagnostics)")
                let response = try server.request("POST", "/", headers: ["Content-Type": "application/json"], body: #"{"n":1}"#)
                let answer = try #require(response.jsonObject, "\(layout): \(response)\n\(server.diagnostics)")
                #expect(answer["helped"] as? String == "helped esm", "\(layout): \(answer)")
                #expect(answer["padded"] as? String == "007", "\(layout): \(answer)")
                #expect(answer["loaded"] as? String == "number", "\(layout): \(answer)")
                #expect((answer["data"] as? [String: Any])?["n"] as? Int == 1, "\(layout): \(answer)")
                #expect(answer["name"] as? String == "handler", "\(layout): \(answer)")
            }
        }
    }

    @Test("a .js handler under package.json \"type\": \"module\" is an ES module (its default export holds the handler)")
    func packageTypeModule() throws {
        try Funcd.withFixtureFolderServer("node-esm-type", runtime: "nodejs18", handler: "handler") { server in
            let response = try server.request("POST", "/", headers: ["Content-Type": "text/plain"], body: "x")
            #expect(response.status == 200 && response.text == "module: require is undefined, data x", "\(response)\n\(server.diagnostics)")
        }
    }

    @Test(
        "ES-module start-up errors: exit 1 and one funcd: error: line naming the file and the cause",
        arguments: [
            ("syntax", "export function handler() {\n  return {;\n}\n", "broken.mjs:2: SyntaxError"),
            ("throws after a top-level await", "await null;\nthrow new Error('no config');\n", "no config"),
            ("missing handler", "export const other = () => 1;\n", "no function 'handler' in the exports"),
            ("missing import", "import x from './absent.mjs';\nexport const handler = () => x;\n", "absent.mjs"),
            ("top-level await that never settles", "await new Promise(() => {});\nexport const handler = () => 1;\n", "never settled"),
            ("process.exit while loading", "await null;\nprocess.exit(3);\n", "process.exit(3)"),
        ])
    func esModuleStartupErrors(name: String, source: String, cause: String) throws {
        try Funcd.expectStartupFailure(name, file: "broken.mjs", source: source, runtime: "nodejs18", cause: cause)
    }

    @Test("funcd invoke runs an .mjs handler named on the command line")
    func invokeESModule() throws {
        let code = try CodeDirectory(copyingFixtureFolder: "node-esm")
        defer { code.remove() }
        let outcome = try Funcd.run(arguments: ["invoke", code.file("app.mjs"), "--handler", "handler", "--data", #"{"n":2}"#])
        #expect(outcome.exitCode == 0, "\(outcome)")
        #expect(outcome.stdout.contains(#""helped":"helped esm""#) && outcome.stdout.contains(#""n":2"#), "\(outcome)")
    }

    // MARK: - Start-up and invoke

    @Test(
        "start-up errors: exit 1 and one funcd: error: line naming the file and the cause",
        arguments: [
            ("syntax", "module.exports = { handler: () => { ;", "handler", "SyntaxError"),
            ("missing handler", "module.exports = { other: () => 1 };", "handler", "no function 'handler'"),
            ("not a function", "module.exports = { handler: 42 };", "handler", "not a function"),
            ("throws at load", "throw new Error('no config');", "handler", "no config"),
            ("require of a missing package", "require('does-not-exist');", "handler", "does-not-exist"),
        ])
    func startupErrors(name: String, source: String, handler: String, cause: String) throws {
        try Funcd.expectStartupFailure(name, file: "broken.js", source: source, runtime: "nodejs18", handler: handler, cause: cause)
    }

    @Test("funcd invoke runs a .js handler once; its console.log goes to stderr, the answer to stdout")
    func invoke() throws {
        let code = try CodeDirectory(copyingFixtureFolder: "node")
        defer { code.remove() }
        let outcome = try Funcd.run(arguments: ["invoke", code.file("app.js"), "--handler", "promise", "--data", #"{"n":1}"#])
        #expect(outcome.exitCode == 0, "\(outcome)")
        #expect(outcome.stdout.contains(#"{"waited":true,"data":{"n":1}}"#), "\(outcome)")
        let logged = try Funcd.run(arguments: ["invoke", code.file("app.js"), "--handler", "log"])
        #expect(logged.stdout.hasPrefix("logged") && logged.stderr.contains("logged from the handler"), "\(logged)")
        let streamed = try Funcd.run(arguments: ["invoke", code.file("app.js"), "--handler", "stream"])
        #expect(streamed.stdout == "first\nsecond\nlast\n", "\(streamed)")
    }
}
