import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import FuncdHTTP

/// funcd writes its answers itself (``AnswerEncoding``); NIO's `HTTPResponseEncoder`, which it
/// replaced, is the reference: for the same head and body the bytes must be the same.
@Suite struct AnswerEncodingTests {
    struct Answer: CustomTestStringConvertible, Sendable {
        var version: HTTPVersion
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        var testDescription: String { "HTTP/\(version.major).\(version.minor) \(status) \(headers.map(\.0))" }
    }

    static let answers: [Answer] = [
        Answer(version: .http1_1, status: 200, headers: [("Content-Type", "text/plain")], body: Array("OK".utf8)),
        Answer(version: .http1_0, status: 200, headers: [("Connection", "keep-alive")], body: Array("hello".utf8)),
        Answer(version: .http1_1, status: 201, headers: [("Location", "/x/1"), ("X-Empty", "")], body: []),
        // A code NIO has no name for: an empty reason phrase, the space kept.
        Answer(version: .http1_1, status: 299, headers: [], body: Array("x".utf8)),
        Answer(version: .http1_1, status: 599, headers: [("Retry-After", "1")], body: []),
        Answer(version: .http1_1, status: 404, headers: [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], body: [1]),
        // Values beyond ASCII go out as their UTF-8 bytes; a tab inside a value is allowed.
        Answer(version: .http1_1, status: 200, headers: [("X-Name", "Zoë\tand 東京")], body: Array(repeating: 7, count: 70_000)),
        Answer(version: .http1_1, status: 503, headers: [("Connection", "close")], body: Array("Busy\n".utf8)),
    ]

    @Test("status line, fields and body are NIO's bytes", arguments: answers)
    func sameAsNIO(answer: Answer) throws {
        var ours = ByteBufferAllocator().buffer(capacity: 64)
        ours.writeStatusLine(version: answer.version, status: HTTPResponseStatus(statusCode: answer.status))
        for (name, value) in answer.headers { ours.writeHeaderField(name, value) }
        ours.writeContentLength(answer.body.count)
        ours.writeStaticString("\r\n")
        ours.writeBytes(answer.body)

        var headers = HTTPHeaders(answer.headers)
        headers.add(name: "Content-Length", value: String(answer.body.count))
        let head = HTTPResponseHead(
            version: answer.version, status: HTTPResponseStatus(statusCode: answer.status), headers: headers)
        let reference = try Self.nioEncoded([
            .head(head), .body(.byteBuffer(ByteBuffer(bytes: answer.body))), .end(nil),
        ])
        #expect(Array(ours.readableBytesView) == reference)
    }

    @Test("chunks and the last chunk are NIO's bytes", arguments: [1, 9, 15, 16, 255, 256, 4095, 65_536])
    func chunksSameAsNIO(size: Int) throws {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
        var ours = ByteBufferAllocator().buffer(capacity: size + 16)
        ours.writeChunk(bytes)
        ours.writeChunk(Array("tail".utf8))
        ours.writeLastChunk()

        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "chunked"])
        var reference = try Self.nioEncoded([
            .head(head), .body(.byteBuffer(ByteBuffer(bytes: bytes))), .body(.byteBuffer(ByteBuffer(string: "tail"))),
            .end(nil),
        ])
        // The head is not what this compares.
        reference.removeFirst("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8.count)
        #expect(Array(ours.readableBytesView) == reference)
    }

    @Test("decimals without a String", arguments: [0, 1, 9, 10, 99, 100, 101, 999, 1000, 65_536, 1_048_576, Int(Int32.max)])
    func decimals(value: Int) {
        var buffer = ByteBufferAllocator().buffer(capacity: 16)
        buffer.writeDecimal(value)
        #expect(String(buffer: buffer) == String(value))
    }

    /// What NIO's response encoder writes for `parts`, after a GET.
    static func nioEncoded(_ parts: [HTTPServerResponsePart]) throws -> [UInt8] {
        let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
        for part in parts { try channel.writeOutbound(part) }
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            bytes += buffer.readableBytesView
        }
        _ = try channel.finish()
        return bytes
    }
}
