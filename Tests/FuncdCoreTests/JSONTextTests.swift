import Foundation
import Testing

@testable import FuncdCore

/// The JSON funcd writes (string literals for the access log and the glue's boot objects, the
/// handler context) and the check of what it is given, each held against Foundation's parser.
@Suite("JSON: the check, string literals, the handler context")
struct JSONTextTests {
    @Test(
        "JSONCheck accepts every kind of value, with white space around",
        arguments: [
            "{}", "[]", " { \"a\" : [1, -2.5e+3, true, false, null, \"x\\u00e9\\n\"] } ", "\"text\"", "0", "-0.5",
            "1E9", "true", "null", "[[[]]]", "{\"\":{}}", "\t\r\n[1]\n",
        ])
    func accepts(_ text: String) {
        #expect(JSONCheck.isJSON(Array(text.utf8)))
        #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)) != nil)
    }

    @Test(
        "JSONCheck refuses what is not one JSON value",
        arguments: [
            "", " ", "{", "[1,]", "{\"a\"}", "{a:1}", "'x'", "01", "1.", ".5", "+1", "tru", "nul", "[1] [2]",
            "\"\\x\"", "\"unterminated", "{\"a\":1,}", "NaN", "\"tab\there\"",
        ])
    func refuses(_ text: String) {
        #expect(!JSONCheck.isJSON(Array(text.utf8)))
    }

    @Test("JSONCheck's nesting bound: 511 levels pass, 512 do not (no stack to exhaust)")
    func depth() {
        let deep = { (levels: Int) in Array((String(repeating: "[", count: levels) + String(repeating: "]", count: levels)).utf8) }
        #expect(JSONCheck.isJSON(deep(511)))
        #expect(!JSONCheck.isJSON(deep(512)))
        #expect(!JSONCheck.isJSON(deep(100_000)))
    }

    @Test("string literals read back as the same text through a real JSON parser")
    func literals() throws {
        let texts = [
            "plain", "quote \" and backslash \\", "controls \u{0}\u{1}\u{1f}\n\r\t", "line separators \u{2028}\u{2029}",
            "é, 漢字, 🙂", "",
        ]
        for text in texts {
            let literal = jsonStringLiteral(text)
            #expect(!literal.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{2028}" || $0 == "\u{2029}" })
            let parsed = try JSONSerialization.jsonObject(with: Data(literal.utf8), options: .fragmentsAllowed)
            #expect(parsed as? String == text)
        }
        var line = "{\"k\":"
        appendJSONString("v\"", to: &line)
        #expect(line == "{\"k\":\"v\\\"\"")
    }

    @Test("the handler context is one JSON object with kubeless's keys; absent values are null (or Node's undefined)")
    func context() throws {
        var configuration = try Configuration(environment: ["MOD_NAME": "handler", "FUNC_HANDLER": "hello", "FUNC_TIMEOUT": "7"])
        configuration.runtime = "python3.11"
        configuration.memoryLimit = nil
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(HandlerContext.literal(configuration).utf8)) as? [String: Any])
        #expect(object["function-name"] as? String == "hello")
        #expect(object["timeout"] as? Double == 7)
        #expect(object["runtime"] as? String == "python3.11")
        #expect(object["memory-limit"] is NSNull)
        #expect(HandlerContext.literal(configuration, absent: "undefined").hasSuffix("\"memory-limit\": undefined}"))
    }

    @Test("trimming ASCII white space keeps what is inside and other spaces")
    func trimming() {
        #expect("  a b \t\r\n".trimmingASCIIWhitespace == "a b")
        #expect(" \n ".trimmingASCIIWhitespace == "")
        #expect("\u{a0}x\u{a0}".trimmingASCIIWhitespace == "\u{a0}x\u{a0}")
        #expect("ready python 3.11".dropFirst(5).trimmingASCIIWhitespace == "python 3.11")
    }
}
