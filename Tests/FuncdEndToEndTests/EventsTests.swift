import Foundation
import Testing

/// W3C Trace Context and CloudEvents over the real binary, in each language: the fixture
/// (`events_app.*`) answers with what its handler got.
@Suite(.sharesMachine)
struct EventsTests {
    enum Language: String, CaseIterable, CustomTestStringConvertible {
        case python = "py"
        case node = "js"
        case ruby = "rb"

        var file: String { "events_app.\(rawValue)" }
        var testDescription: String { "\(self)" }
    }

    static let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    static let binaryEvent: KeyValuePairs<String, String> = [
        "ce-id": "ev-42", "ce-source": "/orders/eu", "ce-specversion": "1.0", "ce-type": "com.example.order.created",
        "ce-time": "2026-12-06T10:00:00Z", "ce-subject": "order%2F7%20%C3%A9", "ce-tenant": "acme",
        "Content-Type": "application/json",
    ]

    static func withServer(_ language: Language, arguments: [String] = [], _ body: (FuncdProcess) throws -> Void) throws {
        try Funcd.withRunServer(
            fixtures: [language.file], file: language.file,
            arguments: ["--handler", "handler", "--access-log", "json"] + arguments, body)
    }

    /// What the handler saw, from its JSON answer.
    static func seen(_ response: HTTPResponse) throws -> JSONObject {
        try #require(JSONObject(response), "\(response)")
    }

    /// `data` as bytes: a string's UTF-8, or the fixture's `{"bytes": [...]}` for binary data.
    static func dataBytes(_ seen: JSONObject) -> [UInt8]? {
        if let text = seen.string("data") { return Array(text.utf8) }
        return (seen.object("data")?["bytes"] as? [Any])?.compactMap { JSONObject.number($0).map { UInt8($0) } }
    }

    static func parts(_ traceparent: String?) -> [Substring] {
        traceparent?.split(separator: "-", omittingEmptySubsequences: false) ?? []
    }

    // MARK: - Trace context

    @Test("a valid traceparent is continued with a span of the call's own; tracestate passes; the access log names both", arguments: Language.allCases)
    func traceContinued(_ language: Language) throws {
        try Self.withServer(language) { server in
            let response = try server.request(
                "POST", "/", headers: ["traceparent": Self.parent, "tracestate": "congo=t61rcWkgMzE", "tracestate": "rojo=00f067aa0ba902b7"],
                body: "x")
            let seen = try Self.seen(response)
            let parts = Self.parts(seen.string("traceparent"))
            #expect(parts.count == 4, "\(seen)")
            #expect(parts.first == "00" && parts.dropFirst().first == "0af7651916cd43dd8448eb211c80319c", "\(seen)")
            #expect(parts.count == 4 && parts[2] != "b7ad6b7169203331" && parts[2].count == 16, "a new span: \(seen)")
            #expect(parts.last == "01", "the caller's sampling decision stands: \(seen)")
            #expect(seen.string("tracestate") == "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7", "\(seen)")
            let span = parts.count == 4 ? String(parts[2]) : "?"
            #expect(
                server.waitForStdout(containing: "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"span_id\":\"\(span)\""),
                "\(server.stdoutText)")
        }
    }

    @Test("without a traceparent, or with an invalid one, each call starts a trace of its own", arguments: Language.allCases)
    func traceStarted(_ language: Language) throws {
        try Self.withServer(language) { server in
            let first = try Self.seen(try server.request("POST", "/", body: "x"))
            let second = try Self.seen(try server.request("POST", "/", body: "x"))
            #expect(Self.parts(first.string("traceparent")).count == 4 && first.string("traceparent")?.hasSuffix("-03") == true, "\(first)")
            #expect(Self.parts(first.string("traceparent")).dropFirst().first != Self.parts(second.string("traceparent")).dropFirst().first)
            #expect(first.isNull("tracestate"), "\(first)")
            for invalid in [
                "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "00-00000000000000000000000000000000-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            ] {
                let seen = try Self.seen(try server.request("POST", "/", headers: ["traceparent": invalid, "tracestate": "rojo=1"], body: "x"))
                #expect(!(seen.string("traceparent") ?? "").contains("0af7651916cd43dd8448eb211c80319c"), "\(invalid): \(seen)")
                #expect(seen.isNull("tracestate"), "an invalid traceparent drops tracestate: \(seen)")
            }
            // Two traceparent fields: which one is meant cannot be told.
            let twice = try Self.seen(
                try server.request("POST", "/", headers: ["traceparent": Self.parent, "traceparent": Self.parent], body: "x"))
            #expect(!(twice.string("traceparent") ?? "").contains("0af7651916cd43dd8448eb211c80319c"), "\(twice)")
        }
    }

    @Test("tracestate is bounded: 512 bytes and 32 members at most, cut at whole members", arguments: Language.allCases)
    func traceStateBounded(_ language: Language) throws {
        try Self.withServer(language) { server in
            let long = (0..<60).map { "vendor\($0)=\(String(repeating: "v", count: 20))" }.joined(separator: ",")
            let client = try server.connect()
            defer { client.close() }
            let response = try client.request(
                method: "POST", path: "/", headers: ["traceparent": Self.parent, "tracestate": long], body: Array("x".utf8))
            let seen = try Self.seen(response)
            let state = try #require(seen.string("tracestate"), "\(seen)")
            let members = state.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(state.utf8.count <= 512 + members.count, "\(state.utf8.count) bytes")
            #expect(members.count <= 32 && members.count > 10, "\(members.count) members")
            #expect(members.first == "vendor0=\(String(repeating: "v", count: 20))", "the first members are kept: \(state)")
        }
    }

    // MARK: - CloudEvents

    @Test("binary mode: attributes from ce-* (percent-decoded), event-* filled, data from the body, extensions beside the core", arguments: Language.allCases)
    func binaryMode(_ language: Language) throws {
        try Self.withServer(language) { server in
            let seen = try Self.seen(try server.request("POST", "/", headers: Self.binaryEvent, body: "{\"order\":7}"))
            #expect(seen.string("event-id") == "ev-42", "\(seen)")
            #expect(seen.string("event-type") == "com.example.order.created", "\(seen)")
            #expect(seen.string("event-time") == "2026-12-06T10:00:00Z", "\(seen)")
            #expect(seen.string("event-namespace") == "/orders/eu", "\(seen)")
            #expect(seen.object("data")?.int("order") == 7, "\(seen)")
            let event = try #require(seen.object("cloudevent"), "\(seen)")
            #expect(event.string("source") == "/orders/eu" && event.string("specversion") == "1.0", "\(event)")
            #expect(event.string("subject") == "order/7 é", "\(event)")
            #expect(event.string("tenant") == "acme", "an extension beside the core attributes: \(event)")
            #expect(event.string("datacontenttype") == "application/json", "\(event)")
        }
    }

    @Test("binary mode: the kubeless headers a caller sends win over the event's", arguments: Language.allCases)
    func kubelessHeadersWin(_ language: Language) throws {
        try Self.withServer(language) { server in
            let seen = try Self.seen(
                try server.request(
                    "POST", "/",
                    headers: [
                        "event-id": "kubeless-1", "event-namespace": "caller", "ce-id": "ev-42", "ce-source": "/s",
                        "ce-specversion": "1.0", "ce-type": "t",
                    ], body: "x"))
            #expect(seen.string("event-id") == "kubeless-1" && seen.string("event-namespace") == "caller", "\(seen)")
            #expect(seen.string("event-type") == "t", "\(seen)")
            #expect(seen.object("cloudevent")?.string("id") == "ev-42", "\(seen)")
        }
    }

    @Test("an incomplete or foreign event is an ordinary kubeless request", arguments: Language.allCases)
    func notAnEvent(_ language: Language) throws {
        try Self.withServer(language) { server in
            let missing = try Self.seen(
                try server.request("POST", "/", headers: ["ce-id": "1", "ce-specversion": "1.0", "ce-type": "t"], body: "x"))
            #expect(missing.isNull("cloudevent") && missing.isNull("event-id"), "no ce-source: \(missing)")
            let old = try Self.seen(
                try server.request(
                    "POST", "/", headers: ["ce-id": "1", "ce-source": "s", "ce-specversion": "0.3", "ce-type": "t"], body: "x"))
            #expect(old.isNull("cloudevent"), "version 0.3: \(old)")
            for body in [
                "{\"specversion\":\"1.0\",\"id\":\"1\",\"type\":\"t\"}", "{\"specversion\":\"1.0\",\"id\":1,\"source\":\"s\",\"type\":\"t\"}",
                "not json at all", "[1,2]",
            ] {
                let seen = try Self.seen(
                    try server.request("POST", "/", headers: ["Content-Type": "application/cloudevents+json"], body: body))
                #expect(seen.isNull("cloudevent"), "\(body): \(seen)")
                #expect(Self.dataBytes(seen) == Array(body.utf8), "the body as kubeless gave it: \(seen)")
            }
        }
    }

    @Test("structured mode: data as JSON or from data_base64; a returned event answers in structured mode", arguments: Language.allCases)
    func structuredMode(_ language: Language) throws {
        try Self.withServer(language) { server in
            let json = try Self.seen(
                try server.request(
                    "POST", "/", headers: ["Content-Type": "application/cloudevents+json; charset=utf-8"],
                    body: "{\"specversion\":\"1.0\",\"id\":\"s-1\",\"source\":\"/s\",\"type\":\"t\",\"ext\":5,\"data\":{\"a\":[1,2]}}"))
            #expect(json.object("data")?.canonical("a") == "[1,2]", "\(json)")
            #expect(json.string("event-id") == "s-1" && json.string("event-namespace") == "/s", "\(json)")
            #expect(json.object("cloudevent")?.int("ext") == 5, "\(json)")
            #expect(json.object("cloudevent")?["data"] == nil, "data is not an attribute: \(json)")
            let binary = try Self.seen(
                try server.request(
                    "POST", "/", headers: ["Content-Type": "application/cloudevents+json"],
                    body: "{\"specversion\":\"1.0\",\"id\":\"s-2\",\"source\":\"/s\",\"type\":\"t\",\"data_base64\":\"AAH/\"}"))
            #expect(Self.dataBytes(binary) == [0, 1, 255], "\(binary)")
            let answer = try server.request(
                "POST", "/", headers: ["Content-Type": "application/cloudevents+json", "X-Answer": "structured"],
                body: "{\"specversion\":\"1.0\",\"id\":\"s-3\",\"source\":\"/s\",\"type\":\"t\"}")
            #expect(answer.header("Content-Type") == "application/cloudevents+json", "\(answer)")
            let event = try Self.seen(answer)
            #expect(event.string("specversion") == "1.0" && event.string("id") == "reply-1", "\(event)")
            #expect(event.object("data")?.string("event-id") == "s-3", "\(event)")
        }
    }

    @Test("structured mode: an event whose data cannot be read is a 400 that says why", arguments: Language.allCases)
    func structuredErrors(_ language: Language) throws {
        try Self.withServer(language) { server in
            for (body, reason) in [
                ("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data_base64\":\"!!!\"}", "not base64"),
                ("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data_base64\":\"AA==\",\"data\":1}", "both"),
            ] {
                let response = try server.request("POST", "/", headers: ["Content-Type": "application/cloudevents+json"], body: body)
                #expect(response.status == 400 && response.text.contains(reason), "\(body): \(response)")
            }
        }
    }

    @Test("batch mode is refused with 415; FUNC_CLOUDEVENTS=off makes every event an ordinary request", arguments: Language.allCases)
    func batchAndOff(_ language: Language) throws {
        try Self.withServer(language) { server in
            let batch = try server.request("POST", "/", headers: ["Content-Type": "application/cloudevents-batch+json"], body: "[]")
            #expect(batch.status == 415 && batch.header("Accept") == "application/cloudevents+json", "\(batch)")
        }
        try Self.withServer(language, arguments: ["--cloudevents", "off"]) { server in
            let batch = try server.request("POST", "/", headers: ["Content-Type": "application/cloudevents-batch+json"], body: "[]")
            #expect(batch.status == 200, "\(batch)")
            let binary = try Self.seen(try server.request("POST", "/", headers: Self.binaryEvent, body: "{}"))
            #expect(binary.isNull("cloudevent") && binary.isNull("event-id"), "\(binary)")
            let structured = try Self.seen(
                try server.request(
                    "POST", "/", headers: ["Content-Type": "application/cloudevents+json"],
                    body: "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"data\":1}"))
            #expect(structured.isNull("cloudevent"), "\(structured)")
            // The trace does not depend on CloudEvents.
            #expect(structured.string("traceparent") != nil, "\(structured)")
        }
    }

    @Test("a handler answers with an event in binary mode through its ce-* fields", arguments: Language.allCases)
    func binaryAnswer(_ language: Language) throws {
        try Self.withServer(language) { server in
            let response = try server.request("POST", "/", headers: ["X-Answer": "binary", "ce-id": "1", "ce-source": "s", "ce-specversion": "1.0", "ce-type": "t"], body: "x")
            #expect(response.status == 200, "\(response)")
            #expect(response.header("ce-id") == "reply-1" && response.header("ce-specversion") == "1.0", "\(response)")
            #expect(response.header("ce-type") == "com.example.reply", "\(response)")
        }
    }

    // MARK: - Exec and invoke

    @Test("an exec-runtime program gets the call's trace as TRACEPARENT and TRACESTATE")
    func execTrace() throws {
        let program = ExecTests.Program(
            name: "trace.sh", source: "#!/bin/sh\ncat >/dev/null\nprintf '%s %s' \"$TRACEPARENT\" \"${TRACESTATE:--}\"\n")
        try ExecTests.withExecServer(program) { server, _ in
            let continued = try server.request("POST", "/", headers: ["traceparent": Self.parent, "tracestate": "rojo=1"], body: "x")
            let words = continued.text.split(separator: " ")
            #expect(words.count == 2 && words[0].hasPrefix("00-0af7651916cd43dd8448eb211c80319c-"), "\(continued)")
            #expect(words.count == 2 && !words[0].contains("b7ad6b7169203331") && words[1] == "rojo=1", "\(continued)")
            let started = try server.request("POST", "/", body: "x")
            #expect(Self.parts(started.text.split(separator: " ").first.map(String.init)).count == 4, "\(started)")
            #expect(started.text.hasSuffix(" -"), "no TRACESTATE: \(started)")
        }
    }

    @Test("funcd invoke continues TRACEPARENT from its environment, as OpenTelemetry's environment carrier does")
    func invokeTrace() throws {
        let code = try CodeDirectory(fixtures: ["events_app.py"])
        defer { code.remove() }
        let outcome = try Funcd.run(
            arguments: ["invoke", code.file("events_app.py"), "--handler", "handler", "--data", "{}"],
            environment: ["TRACEPARENT": Self.parent])
        #expect(outcome.exitCode == 0, "\(outcome)")
        let seen = try #require(JSONObject(text: outcome.stdout), "\(outcome)")
        #expect(seen.string("traceparent")?.hasPrefix("00-0af7651916cd43dd8448eb211c80319c-") == true, "\(seen)")
    }
}

/// The official CloudEvents SDK (PyPI `cloudevents` 2.x, from `.kafka/venv`: scripts/kafka-env)
/// builds the events and reads funcd's answers (Fixtures/cloudevents_sdk.py).
@Suite(.sharesMachine)
struct CloudEventsSDKTests {
    static func sdk(_ arguments: [String]) throws -> FuncdProcess.Outcome {
        let environment = try KafkaTests.Environment.find()
        return try FuncdProcess(
            executableURL: environment.python,
            arguments: [TestPaths.fixture("cloudevents_sdk.py").path] + arguments
        ).finish(timeout: 120)
    }

    @Test("HTTP: binary and structured events from the SDK; the handler's answers read back by the SDK", arguments: EventsTests.Language.allCases)
    func http(_ language: EventsTests.Language) throws {
        try EventsTests.withServer(language) { server in
            let outcome = try Self.sdk(["http", "\(try server.port())"])
            #expect(outcome.exitCode == 0, "\(outcome)\n\(server.diagnostics)")
        }
    }

    @Test("Kafka: events in either mode from the SDK; replies are events the SDK reads, carrying the trace; a dead letter carries the failed call's", arguments: EventsTests.Language.allCases)
    func kafka(_ language: EventsTests.Language) throws {
        try KafkaTests.withBroker { environment, broker in
            for topic in ["ce-in", "ce-out", "ce-dead"] { try KafkaTests.createTopic(environment, broker, topic, partitions: 1) }
            let produced = try Self.sdk(["kafka-produce", broker, "ce-in", "ce-out"])
            #expect(produced.exitCode == 0, "\(produced)")
            let code = try CodeDirectory(fixtures: [language.file])
            defer { code.remove() }
            let runtime = ["py": "python3.11", "js": "nodejs18", "rb": "ruby3.1"][language.rawValue]!
            let funcd = try KafkaTests.startFuncd(
                environment, broker, topic: "ce-in", group: "g-ce-\(language)", handler: "handler", code: code,
                env: [
                    "MOD_NAME": "events_app", "FUNC_RUNTIME": runtime, "KAFKA_MAX_RETRIES": "0", "KAFKA_DLQ_TOPIC": "ce-dead",
                ])
            defer { funcd.stop() }
            let read = try Self.sdk(["kafka-replies", broker, "ce-out"])
            #expect(read.exitCode == 0, "\(read)\n\(funcd.diagnostics)")
            let replies = read.stdout.split(separator: "\n").compactMap { JSONObject(text: String($0)) }
            #expect(replies.count == 2, "\(read)")
            guard replies.count == 2 else { return }
            let binary = replies[0]
            let seen = try #require(binary.object("data"), "\(binary)")
            #expect(binary.object("attributes")?.string("id") == "reply-1", "a binary-mode reply: \(binary)")
            #expect(seen.object("cloudevent")?.string("id") == "k-1", "\(seen)")
            #expect(seen.object("data")?.int("n") == 1, "\(seen)")
            // The call continued the message's trace; the reply's parent is the call's span.
            let callTrace = try #require(seen.string("traceparent"), "\(seen)")
            #expect(callTrace.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-") && !callTrace.contains("00f067aa0ba902b7"), "\(seen)")
            #expect(seen.string("tracestate") == "congo=t61rcWkgMzE", "\(seen)")
            #expect(binary.object("headers")?.string("traceparent") == callTrace, "\(binary)")
            let structured = replies[1]
            #expect(structured.object("headers")?.string("content-type") == "application/cloudevents+json", "\(structured)")
            #expect(structured.object("attributes")?.string("source") == "/funcd/test", "\(structured)")
            #expect(structured.object("data")?.object("cloudevent")?.string("id") == "k-2", "\(structured)")
            #expect(structured.object("data")?.object("data")?.int("n") == 2, "\(structured)")
            let letters = try KafkaTests.consume(environment, broker, "ce-dead", count: 1)
            let headers = letters.first?["headers"] as? [String: String] ?? [:]
            #expect(headers["funcd-error"]?.contains("asked to fail") == true, "\(letters)")
            let letterTrace = headers["traceparent"] ?? ""
            #expect(letterTrace.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-") && !letterTrace.contains("00f067aa0ba902b7"), "\(letters)")
            #expect(headers["ce_id"] == "k-1", "the event's own headers stay: \(letters)")
        }
    }
}
