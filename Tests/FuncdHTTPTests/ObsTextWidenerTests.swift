import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import FuncdHTTP

/// Header bytes 0x80–0xFF reach the decoder as Latin-1 characters, while bodies, the request
/// line and message boundaries stay exactly as sent, however the stream is cut into reads.
@Suite struct ObsTextWidenerTests {
    /// The stream with every byte ≥ 0x80 of `fieldBytes` positions widened: built by hand from
    /// parts, so the expectation does not share the widener's framing logic.
    private struct Stream {
        var wire: [UInt8] = []
        var expected: [UInt8] = []

        /// Bytes that pass unchanged (request lines, bodies, chunk sizes).
        mutating func plain(_ bytes: [UInt8]) {
            wire += bytes
            expected += bytes
        }

        mutating func plain(_ text: String) { plain(Array(text.utf8)) }

        /// Header or trailer bytes: obs-text is widened.
        mutating func field(_ bytes: [UInt8]) {
            wire += bytes
            for byte in bytes {
                if byte < 0x80 {
                    expected.append(byte)
                } else {
                    expected += Array(String(UnicodeScalar(byte)).utf8)
                }
            }
        }
    }

    private static func latin1(_ text: String) -> [UInt8] {
        text.unicodeScalars.map { UInt8($0.value) }
    }

    /// Three pipelined requests: a Content-Length body full of high bytes, a chunked body with
    /// an extension and a trailer, and a GET; headers with Latin-1 bytes in each.
    private static func pipelined() -> Stream {
        var stream = Stream()
        let body: [UInt8] = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7 + 0x80) }
        stream.plain("POST /a HTTP/1.1\r\n")
        stream.field(latin1("Host: x\r\nX-Name: caf\u{E9} \u{FC}ber\r\nContent-Length: \(body.count)\r\n\r\n"))
        stream.plain(body)
        stream.plain("\r\n")  // an empty line before a request line is allowed
        stream.plain("PUT /b HTTP/1.1\r\n")
        stream.field(latin1("Transfer-Encoding: gzip, Chunked\r\nX-Second: \u{C4}\u{FF}\r\n\r\n"))
        stream.plain("0005;name=\"v\"\r\n")  // leading zeros are not significant digits
        stream.plain([0xE9, 0xE9, 0x0D, 0x0A, 0xFF])
        stream.plain("\r\nA\r\n")
        stream.plain(Array(repeating: 0x81, count: 10))
        stream.plain("\r\n0\r\n")
        stream.field(latin1("X-Trailer: \u{E0}\r\n\r\n"))
        stream.plain("GET /c?q=%E9 HTTP/1.1\r\n")
        stream.field(latin1("Host: x\r\nX-Last: \u{A0}\u{FE}\r\n\r\n"))
        return stream
    }

    private static func run(_ wire: [UInt8], cuts: [Int]) -> (output: [UInt8], lost: Bool) {
        var widener = ObsTextWidener()
        var output: [UInt8] = []
        var start = 0
        for end in cuts + [wire.count] where end > start {
            let read = ByteBuffer(bytes: wire[start..<end])
            let passed = widener.widen(read) ?? read
            output += passed.readableBytesView
            start = end
        }
        return (output, widener.isLost)
    }

    @Test("in one read, header bytes are widened and nothing else changes")
    func oneRead() {
        let stream = Self.pipelined()
        let (output, lost) = Self.run(stream.wire, cuts: [])
        #expect(!lost)
        #expect(output == stream.expected)
    }

    @Test("cut into reads at every byte boundary, the result is the same")
    func everySplit() {
        let stream = Self.pipelined()
        for cut in 1..<stream.wire.count {
            let (output, lost) = Self.run(stream.wire, cuts: [cut])
            #expect(!lost && output == stream.expected, "cut at \(cut)")
        }
        let (output, _) = Self.run(stream.wire, cuts: Array(1..<stream.wire.count))
        #expect(output == stream.expected, "one byte per read")
    }

    @Test("a read with no header obs-text is passed on as it is, not copied")
    func noCopy() {
        var widener = ObsTextWidener()
        #expect(widener.widen(ByteBuffer(bytes: Self.latin1("GET /\u{E9} HTTP/1.1\r\n"))) == nil, "the request line")
        let head = ByteBuffer(string: "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
        #expect(widener.widen(head) == nil)
        #expect(widener.widen(ByteBuffer(bytes: [0xE9, 0xFF, 0x80])) == nil, "body bytes")
    }

    @Test("framing it cannot follow stops the widening for the connection, and only that")
    func lostFraming() {
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: x3\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            // Spaces are allowed before the value: a line longer than the widener keeps is not
            // read cut short (it would take this for a length of 1).
            "POST / HTTP/1.1\r\nContent-Length:" + String(repeating: " ", count: 1100) + "12345\r\n\r\n",
        ] {
            let wire = Array(head.utf8) + Self.latin1("GET / HTTP/1.1\r\nX: \u{E9}\r\n\r\n")
            let (output, lost) = Self.run(wire, cuts: [])
            #expect(lost, "\(head)")
            #expect(output == wire, "passed unchanged: \(head)")
        }
    }

    @Test("through NIO's decoder a Latin-1 header value arrives as Latin-1 characters")
    func throughTheDecoder() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionGuard())
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
        let stream = Self.pipelined()
        try channel.writeInbound(ByteBuffer(bytes: stream.wire))
        var heads: [HTTPRequestHead] = []
        var bodyBytes = 0
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head): heads.append(head)
            case .body(let chunk): bodyBytes += chunk.readableBytes
            case .end: break
            }
        }
        #expect(heads.map(\.uri) == ["/a", "/b", "/c?q=%E9"])
        #expect(heads.first?.headers["x-name"] == ["caf\u{E9} \u{FC}ber"])
        #expect(heads.dropFirst().first?.headers["x-second"] == ["\u{C4}\u{FF}"])
        #expect(heads.last?.headers["x-last"] == ["\u{A0}\u{FE}"])
        #expect(bodyBytes == 300 + 15, "bodies pass untouched")
    }
}
