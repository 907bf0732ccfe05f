import Foundation
import Testing

/// Request body limits: FUNC_MEMFILE_MAX (bytes) and REQ_MB_LIMIT (MB) reject larger bodies with
/// 413 before the handler runs, and the default (100 MB) does not get in the way of normal ones.
@Suite(.sharesMachine)
struct LimitsTests {
    private static var octetStream: KeyValuePairs<String, String> { ["Content-Type": "application/octet-stream"] }

    @Test("FUNC_MEMFILE_MAX=1024: a 5000-byte body answers 413, a 1000-byte body reaches the handler")
    func memfileMax() throws {
        try Funcd.withServer(env: ["FUNC_MEMFILE_MAX": "1024"]) { server in
            let tooBig = try server.request("POST", "/size", headers: Self.octetStream, body: [UInt8](repeating: 0x61, count: 5_000))
            #expect(tooBig.status == 413, "POST 5000 bytes over a 1024-byte limit → \(tooBig)\n\(server.diagnostics)")

            let small = try server.request("POST", "/size", headers: Self.octetStream, body: [UInt8](repeating: 0x61, count: 1_000))
            #expect(small.status == 200, "POST 1000 bytes under a 1024-byte limit → \(small)\n\(server.diagnostics)")
            #expect(JSONObject(small)?.int("length") == 1_000, "the handler saw the whole body: \(small)")
        }
    }

    @Test("REQ_MB_LIMIT=1: a 2 MiB body answers 413, a 512 KiB body reaches the handler")
    func requestMegabyteLimit() throws {
        try Funcd.withServer(env: ["REQ_MB_LIMIT": "1"]) { server in
            let tooBig = try server.request(
                "POST", "/size", headers: Self.octetStream, body: [UInt8](repeating: 0x62, count: 2 * 1_048_576))
            #expect(tooBig.status == 413, "POST 2 MiB over a 1 MB limit → \(tooBig)\n\(server.diagnostics)")

            let small = try server.request(
                "POST", "/size", headers: Self.octetStream, body: [UInt8](repeating: 0x62, count: 524_288))
            #expect(small.status == 200, "POST 512 KiB under a 1 MB limit → \(small)\n\(server.diagnostics)")
            #expect(JSONObject(small)?.int("length") == 524_288, "the handler saw the whole body: \(small)")
        }
    }

    @Test("the default limit accepts a 5 MB body")
    func defaultLimitAcceptsOrdinaryBodies() throws {
        try Funcd.withServer { server in
            let count = 5 * 1_000_000
            let response = try server.request(
                "POST", "/size", headers: Self.octetStream, body: [UInt8](repeating: 0x63, count: count), timeout: 60)
            #expect(response.status == 200, "POST 5 MB with the default 100 MB limit → \(response)\n\(server.diagnostics)")
            #expect(JSONObject(response)?.int("length") == count, "the handler saw the whole body: \(response)")
        }
    }
}
