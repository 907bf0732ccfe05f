import NIOCore
import NIOHTTP1

/// HTTP/1.x answers written straight into the buffer that goes to the socket.
///
/// NIO's `HTTPResponseEncoder` takes an answer as three writes (head, body, end), each a trip
/// through every outbound handler, after the handler has built an `HTTPHeaders` and an
/// `HTTPResponseHead` for it. funcd knows an answer whole when it writes it, so the handler puts
/// status line, fields and body into one buffer and writes that once. The bytes are the ones
/// NIO's encoder would write for the same answer (`AnswerEncodingTests` compares them); the
/// framing rules (which answers carry a body, `Content-Length` or chunks) stay with the handler.
extension ByteBuffer {
    /// `HTTP/1.1 200 OK\r\n`. A status made from a code NIO does not name has an empty reason
    /// phrase, and NIO writes it so too.
    mutating func writeStatusLine(version: HTTPVersion, status: HTTPResponseStatus) {
        writeStaticString("HTTP/")
        writeDecimal(Int(version.major))
        writeInteger(UInt8(ascii: "."))
        writeDecimal(Int(version.minor))
        writeInteger(UInt8(ascii: " "))
        writeDecimal(Int(status.code))
        writeInteger(UInt8(ascii: " "))
        writeString(status.reasonPhrase)
        writeStaticString("\r\n")
    }

    /// One header field. The caller has checked that neither part can split the head
    /// (``FunctionHTTPHandler/answerProblem(status:headers:)``).
    mutating func writeHeaderField(_ name: String, _ value: String) {
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    mutating func writeHeaderField(_ name: StaticString, _ value: StaticString) {
        writeStaticString(name)
        writeStaticString(": ")
        writeStaticString(value)
        writeStaticString("\r\n")
    }

    mutating func writeContentLength(_ length: Int) {
        writeStaticString("Content-Length: ")
        writeDecimal(length)
        writeStaticString("\r\n")
    }

    /// One chunk of a chunked body: its size in hex, the bytes, CRLF. Empty chunks are the
    /// caller's to skip: an empty one would end the body.
    mutating func writeChunk(_ bytes: [UInt8]) {
        writeString(String(bytes.count, radix: 16))
        writeStaticString("\r\n")
        writeBytes(bytes)
        writeStaticString("\r\n")
    }

    /// The zero-size chunk that ends a chunked body, with no trailers.
    mutating func writeLastChunk() {
        writeStaticString("0\r\n\r\n")
    }

    /// A non-negative integer in decimal, without making a `String` of it.
    mutating func writeDecimal(_ value: Int) {
        forEachDecimalDigit(of: value) { writeInteger($0) }
    }
}

/// The ASCII digits of a non-negative integer, most significant first: `String(value)` would
/// build a string on each call of a per-request path.
@inline(__always)
func forEachDecimalDigit(of value: Int, _ body: (UInt8) -> Void) {
    precondition(value >= 0, "only counts and status codes are written in decimal")
    var divisor = 1
    while divisor <= value / 10 { divisor *= 10 }
    var rest = value
    while divisor > 0 {
        body(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest / divisor))
        rest %= divisor
        divisor /= 10
    }
}
