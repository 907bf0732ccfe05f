import Foundation
import Testing

/// The access log on stdout: Apache combined format by default, JSON lines with
/// `FUNC_ACCESS_LOG=json`, nothing with `off`. One line per request.
@Suite(.sharesMachine)
struct AccessLogTests {
    @Test("default: one Apache combined format line per request on stdout")
    func combinedByDefault() throws {
        try Funcd.withServer { server in
            for _ in 0..<3 {
                let response = try server.get(
                    "/fast", headers: ["User-Agent": "funcd-e2e-agent", "Referer": "http://referer.example/page"])
                #expect(response.status == 200, "GET /fast → \(response)\n\(server.diagnostics)")
            }
            let marker = #""GET /fast HTTP/1.1" 200"#
            let logged = Deadline.poll(timeout: 10) { Self.lines(server.stdoutText, containing: marker).count >= 3 }
            #expect(logged, "three lines containing \(marker) on stdout\n\(server.diagnostics)")

            let lines = Self.lines(server.stdoutText, containing: marker)
            #expect(lines.count == 3, "one line per request, got \(lines.count)\n\(server.diagnostics)")
            // host ident user [time] "request" status bytes "referer" "user agent"
            let combined = #/\S+ \S+ \S+ \[[^\]]+\] "GET /fast HTTP/1\.1" 200 \S+ "[^"]*" "[^"]*"/#
            for line in lines {
                let isCombined = line.wholeMatch(of: combined) != nil
                #expect(isCombined, "not Apache combined format: \(line)")
                #expect(line.contains(#""funcd-e2e-agent""#), "the user agent is logged: \(line)")
                #expect(line.contains(#""http://referer.example/page""#), "the referer is logged: \(line)")
            }
        }
    }

    @Test("FUNC_ACCESS_LOG=json: one JSON object per request with method, path and status")
    func jsonLines() throws {
        try Funcd.withServer(env: ["FUNC_ACCESS_LOG": "json"]) { server in
            let fast = try server.get("/fast")
            #expect(fast.status == 200, "GET /fast → \(fast)\n\(server.diagnostics)")
            let failing = try server.request("POST", "/raise")
            #expect(failing.status == 500, "POST /raise → \(failing)\n\(server.diagnostics)")

            let logged = Deadline.poll(timeout: 10) { Self.jsonRecords(server.stdoutText).count >= 2 }
            #expect(logged, "two JSON access-log lines on stdout\n\(server.diagnostics)")

            let records = Self.jsonRecords(server.stdoutText)
            let fastLogged = records.contains {
                $0.string("method") == "GET" && $0.string("path") == "/fast" && $0.int("status") == 200
            }
            let failureLogged = records.contains {
                $0.string("method") == "POST" && $0.string("path") == "/raise" && $0.int("status") == 500
            }
            #expect(fastLogged, "a record for GET /fast 200 in \(records)")
            #expect(failureLogged, "a record for POST /raise 500 in \(records)")
            #expect(records.count == 2, "one record per request: \(records)")
            #expect(!server.stdoutText.contains(#""GET /fast HTTP/1.1""#), "no combined-format lines in json mode\n\(server.diagnostics)")
        }
    }

    @Test("FUNC_ACCESS_LOG=off: no access-log lines")
    func off() throws {
        try Funcd.withServer(env: ["FUNC_ACCESS_LOG": "off"]) { server in
            let fast = try server.get("/fast")
            #expect(fast.status == 200, "GET /fast → \(fast)\n\(server.diagnostics)")
            // The handler's print comes after /fast was answered and logged (if it were), so once
            // it shows up on stdout a log line for /fast would have too.
            let printed = try server.get("/print")
            #expect(printed.status == 200, "GET /print → \(printed)\n\(server.diagnostics)")
            #expect(server.waitForStdout(containing: "hello-from-handler"), "\(server.diagnostics)")

            let stdout = server.stdoutText
            #expect(!stdout.contains("/fast"), "an access-log line with FUNC_ACCESS_LOG=off\n\(server.diagnostics)")
            #expect(Self.jsonRecords(stdout).isEmpty, "an access-log record with FUNC_ACCESS_LOG=off\n\(server.diagnostics)")
        }
    }

    private static func lines(_ text: String, containing needle: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.contains(needle) }
    }

    /// The stdout lines that are JSON objects with a `method` key (access-log records).
    private static func jsonRecords(_ text: String) -> [JSONObject] {
        text.split(separator: "\n").compactMap { JSONObject(text: String($0)) }.filter { $0["method"] != nil }
    }
}
