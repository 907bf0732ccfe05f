import Foundation
import Testing

/// funcd-ruby through the real binary over loopback: every row of the contract for Ruby, a gem
/// from the bundle path, timeouts by Thread#raise, overlapping sleeps, failures, and start-up
/// errors. One server runs `Fixtures/ruby/app.rb`'s `route`, which calls the function named by the
/// request path.
@Suite(.sharesMachine)
struct RubyTests {
    /// Serves `Fixtures/ruby` as a kubeless ruby pod would (`FUNC_RUNTIME=ruby3.1`).
    static func withRubyServer(
        handler: String = "route", env: [String: String] = [:], _ body: (FuncdProcess) throws -> Void
    ) throws {
        try Funcd.withFixtureFolderServer("ruby", runtime: "ruby3.1", handler: handler, env: env, body)
    }

    @Test("event: symbol keys, JSON data parsed, event-* headers, context")
    func eventAndContext() throws {
        try Self.withRubyServer(env: ["FUNC_TIMEOUT": "7", "FUNC_MEMORY_LIMIT": "128Mi"]) { server in
            try EventContract.expectEventAndContext(server, kindKey: "dataClass", objectKind: "Hash", runtime: "ruby3.1")
        }
    }

    @Test("event: a non-JSON body is a String, an empty one '', absent event headers nil; invalid JSON → 400")
    func stringData() throws {
        try Self.withRubyServer { server in
            try EventContract.expectStringData(server, kindKey: "dataClass", stringKind: "String")
        }
    }

    @Test("Encoding.default_external follows the locale as the ruby command's does: UTF-8 under LANG=C.UTF-8, US-ASCII under C")
    func defaultExternalEncoding() throws {
        try Self.withRubyServer(env: ["LANG": "C.UTF-8"]) { server in
            let answer = try #require(try server.get("/encodings").jsonObject)
            #expect(answer["external"] as? String == "UTF-8", "\(answer)")
            #expect(answer["literal"] as? String == "UTF-8", "\(answer)")
        }
        try Self.withRubyServer(env: ["LANG": "C", "LC_ALL": "C"]) { server in
            let answer = try #require(try server.get("/encodings").jsonObject)
            #expect(answer["external"] as? String == "US-ASCII", "\(answer)")
        }
    }

    @Test("extensions[:request]: request_method, path_info, query_string, params, env, get_header, body.read")
    func rackRequest() throws {
        try Self.withRubyServer { server in
            let response = try server.request(
                "PUT", "/request?x=1",
                headers: ["X-Custom": "yes", "Content-Type": "application/x-www-form-urlencoded"], body: "k=v&z=2")
            let request = try #require(response.jsonObject, "\(response)")
            #expect(request["method"] as? String == "PUT")
            #expect(request["path"] as? String == "/request")
            #expect(request["query"] as? String == "x=1")
            #expect(request["params"] as? [String: String] == ["x": "1", "k": "v", "z": "2"], "\(request)")
            #expect(request["header"] as? String == "yes")
            #expect(request["getHeader"] as? String == "yes")
            #expect(request["contentType"] as? String == "application/x-www-form-urlencoded")
            #expect(request["body"] as? String == "k=v&z=2")
        }
    }

    @Test("extensions[:request] is a real Rack::Request: nested params, url, Sinatra's preferred_type; binary data")
    func realRackRequest() throws {
        try Self.withRubyServer { server in
            let response = try server.request(
                "POST", "/rack_request?o[p][q]=deep&arr[]=1&arr[]=2",
                headers: ["Accept": "text/html;q=0.5, application/json", "Content-Type": "application/x-www-form-urlencoded"],
                body: "user[name]=ann")
            let answer = try #require(response.jsonObject, "\(response)\n\(server.diagnostics)")
            #expect(answer["rack"] as? Bool == true, "\(answer)")
            let params = try #require(answer["params"] as? [String: Any], "\(answer)")
            #expect((params["o"] as? [String: [String: String]]) == ["p": ["q": "deep"]], "\(answer)")
            #expect(params["arr"] as? [String] == ["1", "2"], "\(answer)")
            #expect(params["user"] as? [String: String] == ["name": "ann"], "\(answer)")
            #expect(answer["url"] as? String == "http://127.0.0.1:\(try server.port())/rack_request?o[p][q]=deep&arr[]=1&arr[]=2", "\(answer)")
            #expect(answer["preferred"] as? String == "application/json", "\(answer)")
            #expect(answer["dataEncoding"] as? String == "ASCII-8BIT", "\(answer)")
            #expect(answer["ip"] as? String == "127.0.0.1", "REMOTE_ADDR is the client's: \(answer)")
            #expect(!server.diagnostics.contains("rack is not installed"), "\(server.diagnostics)")
        }
    }

    // MARK: - Streaming

    @Test("a Rack body that yields slowly is streamed: the first piece arrives before the last is yielded")
    func streaming() throws {
        try Self.withRubyServer { server in
            let client = try server.connect()
            defer { client.close() }
            let started = Deadline.now
            try client.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try client.waitForRaw(containing: "first\n", timeout: 10))
            let firstAt = Deadline.now - started
            #expect(try client.waitForRaw(containing: "last\n", timeout: 10))
            let lastAt = Deadline.now - started
            // The body yields its last piece 600 ms after its first; the first must not wait for it.
            #expect(lastAt - firstAt >= 0.4, "first piece at \(firstAt) s, last at \(lastAt) s")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Transfer-Encoding")?.lowercased() == "chunked", "\(response)")
            #expect(response.header("Content-Type") == "text/plain", "\(response)")
            #expect(response.text == "first\nsecond\nlast\n", "\(response)")
            // The connection stays usable.
            let again = try client.request(method: "GET", path: "/string", body: [])
            #expect(again.text == "plain text")
        }
    }

    @Test("a streamed body far ahead of a client that does not read yet pauses and goes on: all 8 MiB arrive in order")
    func streamBackpressure() throws {
        try Self.withRubyServer { server in
            let client = try server.connect()
            defer { client.close() }
            try client.send("GET /stream_big HTTP/1.1\r\nHost: x\r\n\r\n")
            Thread.sleep(forTimeInterval: 1)
            let response = try client.readResponse()
            let expected = (0..<128).flatMap { index in [UInt8](repeating: UInt8(index % 26 + 97), count: 65_536) }
            #expect(response.body.count == expected.count)
            #expect(response.body == expected)
            #expect(try server.get("/string").text == "plain text")
        }
    }

    @Test("a streamed answer whose body raises, or whose deadline passes, is broken off (no last chunk), the reason logged; serving goes on",
          arguments: [("/stream_fails", "stream broke"), ("/stream_stalls", "timeout")])
    func brokenStream(path: String, reason: String) throws {
        try Self.withRubyServer(env: ["FUNC_TIMEOUT": "1", "FUNC_WORKERS": "0"]) { server in
            let client = try server.connect()
            defer { client.close() }
            let started = Deadline.now
            try client.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try client.waitForRaw(containing: "partial\n", timeout: 10))
            #expect(throws: (any Error).self, "a broken answer must not read as a whole one") {
                try client.readResponse()
            }
            #expect(Deadline.now - started < 5, "broken off after \(Deadline.now - started) s")
            #expect(server.waitForStderr(containing: reason, timeout: 5), "\(server.diagnostics)")
            let after = try server.get("/string", timeout: 10)
            #expect(after.status == 200 && after.text == "plain text", "\(after)\n\(server.diagnostics)")
        }
    }

    @Test("a JSON POST whose Access-Control-Request-Headers is 'content-type' (every CORS preflight's) still has its data parsed")
    func headerValuedContentType() throws {
        try Self.withRubyServer { server in
            // The header valued "content-type" comes first: the old lookup took its value for the name.
            let response = try server.request(
                "POST", "/event",
                headers: ["Access-Control-Request-Headers": "content-type", "Content-Type": "application/json"],
                body: #"{"a":1}"#)
            #expect(response.status == 200, "\(response)")
            let event = try #require(response.jsonObject, "\(response)")
            #expect(event["dataClass"] as? String == "Hash", "\(event)")
            #expect((event["data"] as? [String: Any])?["a"] as? Int == 1, "\(event)")
        }
    }

    @Test("a Rack Location holding NUL stays one header: no injected Set-Cookie")
    func redirectCannotInjectHeaders() throws {
        try Self.withRubyServer { server in
            let response = try server.get("/redirect?next=/home%00Set-Cookie%00session=attacker")
            #expect(response.headerValues("Set-Cookie").isEmpty, "\(response)")
            let plain = try server.get("/redirect?next=/home")
            #expect(plain.status == 302 && plain.header("Location") == "/home", "\(plain)")
        }
    }

    @Test("results: String as text/html, Hash and Array as JSON, nil empty, a Rack triple as given; every method and path")
    func results() throws {
        try Self.withRubyServer { server in
            let string = try server.get("/string")
            #expect(string.status == 200 && string.text == "plain text", "\(string)")
            #expect(string.header("Content-Type") == "text/html;charset=utf-8")
            let hash = try server.get("/hash_value")
            #expect(hash.text == #"{"answer":42}"# && hash.header("Content-Type") == "application/json", "\(hash)")
            #expect(try server.get("/array").text == #"[1,"two"]"#)
            let nothing = try server.get("/nothing")
            #expect(nothing.status == 200 && nothing.body.isEmpty, "\(nothing)")
            let rack = try server.get("/rack")
            #expect(rack.status == 201 && rack.text == "created" && rack.header("X-Made-By") == "rack", "\(rack)")
            for method in ["DELETE", "PATCH", "PUT"] {
                let response = try server.request(method, "/string")
                #expect(response.status == 200 && response.text == "plain text", "\(method): \(response)")
            }
        }
    }

    @Test("a gem installed with bundle install --path <code dir> is found by require; puts reaches stdout at once")
    func gemsAndOutput() throws {
        try Self.withRubyServer { server in
            let bundled = try server.get("/bundled")
            #expect(bundled.text == "007", "\(bundled)\n\(server.diagnostics)")
            let logged = try server.get("/log")
            #expect(logged.text == "logged")
            #expect(server.waitForStdout(containing: "logged from the handler", timeout: 5), "\(server.diagnostics)")
        }
    }

    @Test("RubyGems loads on first need: not for a handler without gems, yet a gem under GEM_HOME is found")
    func rubyGemsOnFirstNeed() throws {
        let gems = try CodeDirectory(copyingFixtureFolder: "ruby")
        defer { gems.remove() }
        let code = try CodeDirectory(files: [
            (
                "app.rb",
                """
                def rubygems_loaded? = $LOADED_FEATURES.any? { |feature| feature.end_with?('/rubygems.rb') }

                def handler(event, context)
                  before = rubygems_loaded?
                  require 'padder'
                  rack = event[:extensions][:request].is_a?(Rack::Request)
                  "#{before} #{Padder.left(7, 3)} #{rubygems_loaded?} #{rack}"
                end

                """
            )
        ])
        defer { code.remove() }
        let process = try FuncdProcess(
            arguments: ["run", code.file("app.rb"), "--handler", "handler", "--port", "0", "--workers", "0"],
            environment: ["GEM_HOME": "\(gems.path)/ruby/3.1.0"])
        defer { process.stop() }
        try process.waitForListening()
        let first = try process.get("/")
        #expect(first.status == 200 && first.text == "false 007 true true", "\(first)\n\(process.diagnostics)")
        let second = try process.get("/")
        #expect(second.text == "true 007 true true", "\(second)")
    }

    @Test("an exception → 500 with the backtrace in the log; exit in a handler → 500; serving goes on")
    func failures() throws {
        try Self.withRubyServer { server in
            let failed = try server.get("/fails")
            #expect(failed.status == 500, "\(failed)")
            #expect(server.waitForStderr(containing: "handler broke", timeout: 5), "\(server.diagnostics)")
            let exited = try server.get("/exits")
            #expect(exited.status == 500, "\(exited)")
            #expect(try server.get("/string").status == 200)
            #expect(server.isRunning)
        }
    }

    @Test("timeouts by Thread#raise: loop {} and sleep 100 get 408 on time and the same process serves on",
          arguments: ["/spin", "/sleeps"])
    func timeouts(path: String) throws {
        let timeout = 1.0
        try Self.withRubyServer(env: ["FUNC_TIMEOUT": "\(timeout)", "FUNC_WORKERS": "0"]) { server in
            let port = try server.port()
            for attempt in 1...2 {
                let request = try TimedRequest.get(port: port, path: path)
                #expect(request.response.status == 408, "\(path) #\(attempt) → \(request.response)\n\(server.diagnostics)")
                #expect(request.elapsed >= timeout && request.elapsed < timeout + 3, "408 after \(request.elapsed) s")
                let after = try server.get("/string", timeout: 10)
                #expect(after.status == 200 && after.text == "plain text", "after \(path): \(after)\n\(server.diagnostics)")
            }
            #expect(server.isRunning, "\(server.diagnostics)")
        }
    }

    @Test("two handlers sleeping 1 s at once finish in about 1 s, not 2")
    func sleepsOverlap() throws {
        try Self.withRubyServer { server in
            let port = try server.port()
            let started = Deadline.now
            let calls = (0..<2).map { _ in BackgroundCall { try TimedRequest.get(port: port, path: "/nap") } }
            for call in calls {
                let request = try call.wait(timeout: 30)
                #expect(request.response.status == 200 && request.response.text == "rested", "\(request.response)")
            }
            let elapsed = Deadline.now - started
            #expect(elapsed < 1.8, "two 1 s sleeps took \(elapsed) s together")
        }
    }

    @Test(
        "start-up errors: exit 1 and one funcd: error: line naming the file and the cause",
        arguments: [
            ("syntax", "def handler(event, context)\n  1 +\nend\n", "SyntaxError"),
            ("missing handler", "def other(event, context)\nend\n", "no function 'handler'"),
            ("raises at load", "raise 'no config'\n", "no config"),
            ("missing gem", "require 'does_not_exist'\n", "does_not_exist"),
        ])
    func startupErrors(name: String, source: String, cause: String) throws {
        try Funcd.expectStartupFailure(name, file: "broken.rb", source: source, runtime: "ruby3.1", cause: cause)
    }

    @Test("funcd invoke runs a .rb handler once")
    func invoke() throws {
        let code = try CodeDirectory(copyingFixtureFolder: "ruby")
        defer { code.remove() }
        let outcome = try Funcd.run(arguments: ["invoke", code.file("app.rb"), "--handler", "event", "--data", #"{"n":1}"#])
        #expect(outcome.exitCode == 0, "\(outcome)")
        #expect(outcome.stdout.contains(#""data":{"n":1}"#), "\(outcome)")
    }

    @Test("SIGTERM: Ruby does not take it over; the in-flight call finishes and the process exits 0")
    func sigterm() throws {
        try Self.withRubyServer(env: ["FUNC_WORKERS": "0"]) { server in
            let port = try server.port()
            let call = BackgroundCall { try TimedRequest.get(port: port, path: "/nap") }
            Thread.sleep(forTimeInterval: 0.3)
            kill(server.pid, SIGTERM)
            let request = try call.wait(timeout: 30)
            #expect(request.response.status == 200 && request.response.text == "rested", "\(request.response)")
            let code = try server.waitForExit(timeout: 15)
            #expect(code == 0, "exit code \(code)\n\(server.diagnostics)")
        }
    }
}
