import Foundation
import Testing

/// The event and context checks every language's `/event` fixture route answers the same way:
/// it echoes the event fields, the context, and the type of `data` under `kindKey` (each
/// language names its types its own way).
enum EventContract {
    /// A JSON body with every event-* header: data parsed, event fields and context as set.
    static func expectEventAndContext(
        _ server: FuncdProcess, kindKey: String, objectKind: String, runtime: String
    ) throws {
        let response = try server.request(
            "POST", "/event",
            headers: [
                "Content-Type": "application/json", "Event-Id": "id-1", "Event-Type": "application/json",
                "Event-Time": "2026-11-21 10:00:00 +0000 UTC", "Event-Namespace": "ns",
            ],
            body: #"{"a":[1,2],"b":"ü"}"#)
        #expect(response.status == 200, "\(response)\n\(server.diagnostics)")
        let event = try #require(response.jsonObject, "\(response)")
        #expect(event[kindKey] as? String == objectKind)
        let data = event["data"] as? [String: Any]
        #expect(data?["b"] as? String == "ü" && (data?["a"] as? [Int]) == [1, 2], "\(event)")
        #expect(event["event-id"] as? String == "id-1")
        #expect(event["event-type"] as? String == "application/json")
        #expect(event["event-time"] as? String == "2026-11-21 10:00:00 +0000 UTC")
        #expect(event["event-namespace"] as? String == "ns")
        let context = event["context"] as? [String: Any]
        #expect(context?["function-name"] as? String == "route", "\(event)")
        #expect(context?["timeout"] as? Double == 7)
        #expect(context?["runtime"] as? String == runtime)
        #expect(context?["memory-limit"] as? String == "128Mi")
    }

    /// A text body is a string, no body an empty one (an empty object where the original's
    /// body-parser left `{}`: Node), absent event headers null; invalid JSON 400.
    static func expectStringData(
        _ server: FuncdProcess, kindKey: String, stringKind: String, noBodyIsEmptyObject: Bool = false
    ) throws {
        let text = try server.request("POST", "/event", headers: ["Content-Type": "text/plain"], body: "héllo")
        #expect(text.jsonObject?["data"] as? String == "héllo", "\(text)")
        #expect(text.jsonObject?[kindKey] as? String == stringKind)
        #expect(text.jsonObject?["event-id"] is NSNull, "\(text)")
        let empty = try server.get("/event")
        if noBodyIsEmptyObject {
            #expect((empty.jsonObject?["data"] as? [String: Any])?.isEmpty == true, "\(empty)")
        } else {
            #expect(empty.jsonObject?["data"] as? String == "", "\(empty)")
        }
        let invalid = try server.request("POST", "/event", headers: ["Content-Type": "application/json"], body: "{nope")
        #expect(invalid.status == 400, "invalid JSON → \(invalid)")
    }
}
