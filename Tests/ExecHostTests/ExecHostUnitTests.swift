import FuncdCore
import Testing

@testable import ExecHost

/// The exec runtime's values: the calls' environment, the CGI head, the `#!` line.
@Suite struct ChildEnvironmentTests {
    static func configuration(_ extra: [String: String] = [:]) throws -> Configuration {
        try Configuration(
            environment: ["MOD_NAME": "hello", "FUNC_HANDLER": "sh", "FUNC_RUNTIME": "exec", "FUNC_TIMEOUT": "7"].merging(extra) { $1 },
            fileExists: { _ in false })
    }

    static func table(_ entries: [[UInt8]]) -> [String: [UInt8]] {
        var table: [String: [UInt8]] = [:]
        for entry in entries {
            let equals = entry.firstIndex(of: UInt8(ascii: "="))!
            #expect(table[String(decoding: entry[..<equals], as: UTF8.self)] == nil, "one entry per name")
            table[String(decoding: entry[..<equals], as: UTF8.self)] = Array(entry[(equals + 1)...])
        }
        return table
    }

    @Test("the request as the watchdogs describe it, the kubeless variables, no secrets")
    func requestVariables() throws {
        let environment = ChildEnvironment(
            environment: ["PATH=/usr/bin", "KAFKA_PASSWORD=secret", "FUNCD_SUPERVISOR_FD=3", "Http_Method=forged", "HOME=/tmp"],
            configuration: try Self.configuration())
        let entries = environment.entries(
            method: "POST", target: "/a%20b/c?x=1&y=%20",
            headers: [
                ("X-Request-Id", "r1"), ("content-type", "text/plain"), ("Accept", "a"), ("accept", "b"),
                ("Method", "GET"), ("X-Latin", "caf\u{E9}"), ("Content-Length", "999"), ("event-id", "e1"),
            ],
            bodyCount: 5, values: .latin1)
        let table = Self.table(entries)
        func value(_ name: String) -> String? { table[name].map { String(decoding: $0, as: UTF8.self) } }
        #expect(value("PATH") == "/usr/bin" && value("HOME") == "/tmp")
        #expect(table["KAFKA_PASSWORD"] == nil && table["FUNCD_SUPERVISOR_FD"] == nil)
        #expect(value("Http_Method") == "POST", "the call's own, after a forged one and a Method header")
        #expect(value("Http_Path") == "/a b/c")
        #expect(value("Http_Query") == "x=1&y=%20")
        #expect(value("Http_X_Request_Id") == "r1")
        #expect(value("Http_Content_Type") == "text/plain")
        #expect(value("Http_Accept") == "a, b")
        #expect(table["Http_X_Latin"] == [0x63, 0x61, 0x66, 0xE9], "the wire's byte, not UTF-8")
        #expect(value("Http_Content_Length") == "5" && value("Http_ContentLength") == "5", "the body's length")
        #expect(value("EVENT_ID") == "e1" && value("Http_Event_Id") == "e1")
        #expect(value("FUNC_HANDLER") == "sh" && value("FUNC_TIMEOUT") == "7" && value("FUNC_RUNTIME") == "exec")
        let noQuery = Self.table(
            environment.entries(method: "GET", target: "/", headers: [("Query", "forged"), ("Path", "/etc")], bodyCount: 0, values: .latin1))
        #expect(noQuery["Http_Query"] == nil, "a Query header does not pass for the query")
        #expect(noQuery["Http_Path"] == Array("/".utf8))
    }

    @Test("a Kafka message's facts are Kafka_* variables, not Http_*")
    func kafkaVariables() throws {
        let environment = ChildEnvironment(environment: [], configuration: try Self.configuration())
        let table = Self.table(
            environment.entries(
                method: "POST", target: "/",
                headers: [
                    ("funcd-kafka-topic", "orders"), ("funcd-kafka-offset", "42"), ("funcd-kafka-header-reply-to", "answers"),
                    ("funcd-kafka-key", "cl\u{E9}"), ("funcd-kafka-header-a=b", "v"),
                ],
                bodyCount: 0, values: .utf8))
        #expect(table["Kafka_Topic"] == Array("orders".utf8))
        #expect(table["Kafka_Offset"] == Array("42".utf8))
        #expect(table["Kafka_Header_Reply_To"] == Array("answers".utf8))
        #expect(table["Http_Funcd_Kafka_Topic"] == nil)
        #expect(table["Kafka_Key"] == Array("cl\u{E9}".utf8), "a Kafka value's UTF-8, not Latin-1")
        #expect(table["Kafka_Header_A_B"] == Array("v".utf8), "a name's = cannot start another variable")
        #expect(table["Http_Query"] == nil, "no query, no variable")
    }
}

@Suite struct CGIHeadTests {
    @Test("status, type and other fields, LF or CRLF, then the body")
    func complete() {
        let bytes = Array("Status: 404 Not Found\r\nContent-Type: text/plain\nX-A:  b\n\nbody".utf8)
        guard case .complete(let head, let start) = CGIHead.parse(bytes) else {
            Issue.record("not complete")
            return
        }
        #expect(head.status == 404)
        #expect(head.headers.map(\.0) == ["Content-Type", "X-A"] && head.headers.map(\.1) == ["text/plain", "b"])
        #expect(Array(bytes[start...]) == Array("body".utf8))
    }

    @Test("a Location without a status is a redirect; unfinished and malformed heads")
    func edges() {
        guard case .complete(let head, _) = CGIHead.parse(Array("Location: /x\n\n".utf8)) else {
            Issue.record("not complete")
            return
        }
        #expect(head.status == 302)
        #expect(CGIHead.parse(Array("Status: 200\nX: y\n".utf8)) == .incomplete)
        if case .invalid = CGIHead.parse(Array("hello world\n\n".utf8)) {} else { Issue.record("a line without a field name taken") }
        if case .invalid = CGIHead.parse(Array("Status: 99\n\n".utf8)) {} else { Issue.record("status 99 taken") }
    }
}

@Suite struct ShebangTests {
    @Test("interpreter and one argument, split as Linux splits them")
    func shebang() {
        #expect(ExecProgram.parseShebang(Array("#!/bin/sh".utf8))! == ("/bin/sh", nil))
        #expect(ExecProgram.parseShebang(Array("#! /usr/bin/env  python3 -u \r".utf8))! == ("/usr/bin/env", "python3 -u"))
        #expect(ExecProgram.parseShebang(Array("#!".utf8)) == nil)
        #expect(ExecProgram.parseShebang(Array("echo hi".utf8)) == nil)
    }
}
