import Foundation
import FuncdCore
import NIOHTTP1
import Testing

@testable import FuncdHTTP

/// The access log's two line formats, built from a request head as the server has it; the
/// escaping is what keeps a client from writing lines of its own into the log.
@Suite("Access log lines: combined as nginx escapes it, JSON as a parser reads it")
struct AccessLogLineTests {
    func head(_ uri: String, userAgent: String?, referer: String? = nil) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        if let userAgent { headers.add(name: "User-Agent", value: userAgent) }
        if let referer { headers.add(name: "Referer", value: referer) }
        return HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: headers)
    }

    func line(_ format: Configuration.AccessLogFormat, _ head: HTTPRequestHead, trace: CallTrace? = nil) -> String {
        var buffer: [UInt8] = []
        AccessLog.appendLine(
            format, time: "06/Dec/2026:22:00:00 +0000", remote: "10.1.2.3", head: head, status: 201, bytes: 17,
            nanoseconds: 1_234_567, trace: trace, to: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    @Test("combined: the Apache line, with - for missing fields")
    func combined() {
        #expect(
            line(.combined, head("/p?q=1", userAgent: "curl/8", referer: "http://r/"))
                == "10.1.2.3 - - [06/Dec/2026:22:00:00 +0000] \"POST /p?q=1 HTTP/1.1\" 201 17 \"http://r/\" \"curl/8\"\n")
        #expect(line(.combined, head("/", userAgent: nil)).hasSuffix("\"-\" \"-\"\n"))
    }

    @Test("combined: quotes, backslashes, control and non-ASCII bytes become \\xHH, so a field cannot end early or start a line")
    func combinedEscaping() {
        let text = line(.combined, head("/a\"b", userAgent: "x\"\n10.0.0.1 - - [forged] \\ é"))
        #expect(text.filter { $0 == "\n" }.count == 1)
        #expect(text.contains("/a\\x22b"))
        #expect(text.contains("\"x\\x22\\x0A10.0.0.1 - - [forged] \\x5C \\xC3\\xA9\"\n"))
    }

    @Test("JSON: one object per line that a parser reads back field for field, trace ids included")
    func json() throws {
        let trace = CallTrace.start()
        let agent = "agent \"quoted\"\n\u{1}\u{2028} é"
        let text = line(.json, head("/x?y=\"z\"", userAgent: agent), trace: trace)
        #expect(text.hasSuffix("}\n") && text.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "06/Dec/2026:22:00:00 +0000")
        #expect(object["remote"] as? String == "10.1.2.3")
        #expect(object["method"] as? String == "POST")
        #expect(object["path"] as? String == "/x?y=\"z\"")
        #expect(object["status"] as? Int == 201)
        #expect(object["bytes"] as? Int == 17)
        #expect(object["duration_ms"] as? Double == 1.234)
        #expect(object["user_agent"] as? String == agent)
        #expect(object["trace_id"] as? String == trace.traceIDText)
        #expect(object["span_id"] as? String == trace.spanIDText)
        let untraced = try #require(
            try JSONSerialization.jsonObject(with: Data(line(.json, head("/", userAgent: nil)).utf8)) as? [String: Any])
        #expect(untraced["trace_id"] == nil && untraced["user_agent"] as? String == "")
    }
}
