import Foundation
import Testing

/// Bytes 0x80–0xFF in a header value (obs-text: Latin-1 from old clients, UTF-8 from new ones)
/// reach each language as the framework funcd replaces gave them, sent raw over loopback:
/// WSGI's and node's Latin-1 characters, Rack's binary string.
@Suite(.sharesMachine)
struct HeaderBytesTests {
    /// "café über" in Latin-1, then "né" in UTF-8: one byte per character, then two.
    static let value: [UInt8] = Array("caf".utf8) + [0xE9, 0x20, 0xFC] + Array("ber ".utf8) + [0x6E, 0xC3, 0xA9]
    /// The value read as Latin-1, which WSGI and node's http both do.
    static let latin1 = String(value.map { Character(UnicodeScalar($0)) })

    /// Sends GET `path` with header `name: value` raw and returns the one answer.
    static func rawGet(_ server: FuncdProcess, path: String, header name: String) throws -> WireResponse {
        let socket = try AttackSocket(port: try server.port())
        defer { socket.close() }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: x\r\n\(name): ".utf8) + value
            + Array("\r\nConnection: close\r\n\r\n".utf8)
        _ = socket.send(request, timeout: 5)
        let parsed = socket.readResponses(1, timeout: 30)
        return try #require(parsed.finalResponses.first, "\(parsed)")
    }

    @Test("Python: request.headers gives the bytes read as Latin-1, as WSGI and bottle do")
    func python() throws {
        try Funcd.withServer { server in
            let response = try Self.rawGet(server, path: "/headers", header: "X-Foo")
            let event = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response)")
            #expect(event["header_exact"] as? String == Self.latin1, "\(event)")
            #expect(event["get_header"] as? String == Self.latin1, "\(event)")
        }
    }

    @Test("Node: req.get gives the bytes read as Latin-1, as node's http does")
    func node() throws {
        try Funcd.withFixtureFolderServer("node", runtime: "nodejs18", handler: "route") { server in
            let response = try Self.rawGet(server, path: "/request", header: "X-Custom")
            let request = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response)")
            #expect(request["header"] as? String == Self.latin1, "\(request)")
            #expect(request["headers"] as? String == Self.latin1, "\(request)")
        }
    }

    @Test("Ruby: env['HTTP_*'] holds the raw bytes as a binary string, as Rack servers give it")
    func ruby() throws {
        try Funcd.withFixtureFolderServer("ruby", runtime: "ruby3.1", handler: "route") { server in
            let response = try Self.rawGet(server, path: "/header_bytes", header: "X-Custom")
            let header = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response)")
            #expect(header["bytes"] as? [Int] == Self.value.map(Int.init), "\(header)")
            #expect(header["encoding"] as? String == "ASCII-8BIT", "\(header)")
        }
    }
}
