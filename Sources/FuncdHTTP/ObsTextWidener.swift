import FuncdCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the bytes 0x80–0xFF of header fields ("obs-text", RFC 9110 §5.5) from being lost.
///
/// NIO's HTTP decoder turns each field value into a `String` by decoding it as UTF-8 with
/// replacement, so `caf\xE9` arrives as `caf\u{FFFD}` and the byte is gone. The frameworks funcd
/// replaces hand those bytes over: WSGI and node's `http` as Latin-1 characters, Rack as a binary
/// string. So before the decoder sees them, each obs-text byte of a header or trailer line is
/// written as the UTF-8 encoding of the Latin-1 character of the same value (0xE9 → C3 A9,
/// "é"); the decoder's `String` then holds exactly the Latin-1 reading of the wire bytes, which
/// the glue passes on (Python, Node) or turns back into bytes (Ruby).
///
/// To know which bytes are header bytes it follows the framing of each message: the head up to
/// its blank line, then a `Content-Length` body skipped by count or a chunked body followed chunk
/// by chunk (trailers are fields too). The request line is left alone (NIO keeps its own reading
/// of the target). Anything it cannot follow — a second `Content-Length`, a transfer coding that
/// is not chunked, a malformed chunk size, a framing line longer than it keeps — makes it stop
/// widening (``isLost``), and the connection guard then takes no further request on that
/// connection: the decoder refuses almost all such messages anyway. Where it does follow, it
/// agrees with the decoder on where each message ends, so it widens header bytes only, and the
/// widened bytes (0xC2/0xC3 then 0x80–0xBF) are never CR, LF or a colon.
struct ObsTextWidener {
    private enum Position: Equatable {
        /// Before or inside the request line (blank lines before it are allowed, RFC 9112 §2.2).
        case requestLine(sawByte: Bool)
        /// Inside the header lines of a head (`trailers`: of a chunked body's end).
        case fields(trailers: Bool)
        /// Inside a body of known length: this many bytes are left.
        case body(remaining: Int)
        /// Inside a chunk-size line: the size so far, and whether an extension began.
        case chunkSize(size: Int, digits: Int, extensionBegan: Bool)
        /// Inside a chunk's data: this many bytes are left, then its CRLF.
        case chunkData(remaining: Int)
        /// After a chunk's data, up to the end of its line.
        case chunkDataEnd
        /// The framing could not be followed: bytes pass as they are.
        case lost
    }

    private var position = Position.requestLine(sawByte: false)
    /// The current field line, from its start: only as much as is needed to recognise the two
    /// framing fields and read their values.
    private var line: [UInt8] = []
    private var lineIsEmpty = true
    /// Whether the current field line may be a framing field (it starts with `c` or `t`) and so
    /// is kept in `line`; nil before its first byte.
    private var keepsLine: Bool?
    /// What the head read so far says about its body.
    private var contentLength: Int?
    private var chunked = false
    private var framingUnknown = false

    /// The longest field line kept; a framing line longer than this is not followed (it would
    /// be read cut short). Room for `transfer-encoding:` with a list of codings, or a
    /// `content-length:` padded with spaces.
    private static let keptLineBytes = 1024

    init() {
        line.reserveCapacity(64)
    }

    /// Whether it gave up following the connection's framing.
    var isLost: Bool { position == .lost }

    /// Follows `buffer`, the next bytes of the connection, and returns a copy with every obs-text
    /// byte of a header field widened, or nil when there was none (so nothing is copied).
    mutating func widen(_ buffer: ByteBuffer) -> ByteBuffer? {
        if position == .lost { return nil }
        var wide: [Int] = []
        buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count {
                switch position {
                case .body(let remaining):
                    // Skipped by count: most of a connection's bytes pass here.
                    let skip = min(remaining, bytes.count - index)
                    index += skip
                    position = remaining == skip ? .requestLine(sawByte: false) : .body(remaining: remaining - skip)
                case .chunkData(let remaining):
                    let skip = min(remaining, bytes.count - index)
                    index += skip
                    position = remaining == skip ? .chunkDataEnd : .chunkData(remaining: remaining - skip)
                case .lost:
                    return
                case .requestLine(let sawByte):
                    // Up to the request line's end, which starts the head; blank lines before it
                    // are skipped. Its bytes are NIO's to read, never widened.
                    let end = Self.lineEnd(bytes, from: index)
                    let seen = sawByte || bytes[index..<end].contains { $0 != UInt8(ascii: "\r") }
                    if end < bytes.count {
                        index = end + 1
                        position = .requestLine(sawByte: false)
                        if seen { startHead() }
                    } else {
                        index = end
                        position = .requestLine(sawByte: seen)
                    }
                case .fields(let trailers):
                    // A field line, or as much of it as this read holds: its obs-text bytes are
                    // the ones widened.
                    let end = Self.lineEnd(bytes, from: index)
                    if end > index {
                        let first = bytes[index]
                        if keepsLine == nil { keepsLine = first | 0x20 == UInt8(ascii: "c") || first | 0x20 == UInt8(ascii: "t") }
                        for offset in index..<end where bytes[offset] >= 0x80 { wide.append(offset) }
                        if lineIsEmpty { lineIsEmpty = bytes[index..<end].allSatisfy { $0 == UInt8(ascii: "\r") } }
                        if keepsLine == true && line.count < Self.keptLineBytes {
                            line.append(contentsOf: bytes[index..<min(end, index + Self.keptLineBytes - line.count)])
                        }
                    }
                    if end < bytes.count {
                        index = end + 1
                        endFieldLine(trailers: trailers)
                    } else {
                        index = end
                    }
                default:
                    step(bytes[index])
                    index += 1
                }
            }
        }
        return wide.isEmpty ? nil : Self.widened(buffer, at: wide)
    }

    /// The offset of the next LF at or after `start`, or the end of `bytes`.
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard let found = memchr(bytes.baseAddress! + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else {
            return bytes.count
        }
        return UnsafeRawPointer(found) - bytes.baseAddress!
    }

    /// Advances over one byte of a chunked body's framing (sizes, extensions, line ends).
    private mutating func step(_ byte: UInt8) {
        switch position {
        case .chunkSize(let size, let digits, let extensionBegan):
            if byte == UInt8(ascii: "\n") {
                if digits == 0 {
                    position = .lost
                } else if size == 0 {
                    startFields(trailers: true)
                } else {
                    position = .chunkData(remaining: size)
                }
            } else if !extensionBegan, let digit = byte.hexDigitValue.map(Int.init) {
                // Leading zeros aside, 15 hex digits keep the size below Int.max; nobody sends
                // a chunk that large.
                let significant = size == 0 && digit == 0 ? 0 : (size == 0 ? 1 : significantDigits(size) + 1)
                position = significant <= 15 ? .chunkSize(size: size << 4 | digit, digits: digits + 1, extensionBegan: false) : .lost
            } else if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                position = .chunkSize(size: size, digits: digits, extensionBegan: true)
            } else if byte != UInt8(ascii: "\r") && !extensionBegan {
                position = .lost
            }
        case .chunkDataEnd:
            if byte == UInt8(ascii: "\n") { position = .chunkSize(size: 0, digits: 0, extensionBegan: false) }
        case .requestLine, .fields, .body, .chunkData, .lost:
            break
        }
    }

    private mutating func startHead() {
        contentLength = nil
        chunked = false
        framingUnknown = false
        startFields(trailers: false)
    }

    private mutating func startFields(trailers: Bool) {
        position = .fields(trailers: trailers)
        line.removeAll(keepingCapacity: true)
        lineIsEmpty = true
        keepsLine = nil
    }

    private mutating func endFieldLine(trailers: Bool) {
        if lineIsEmpty {
            position = trailers ? .requestLine(sawByte: false) : bodyStart()
            return
        }
        if !trailers && keepsLine == true { noteFraming() }
        line.removeAll(keepingCapacity: true)
        lineIsEmpty = true
        keepsLine = nil
    }

    /// Reads `Content-Length` and `Transfer-Encoding` from the line just ended.
    private mutating func noteFraming() {
        let cut = line.count >= Self.keptLineBytes
        if let value = Self.value(of: "content-length", in: line) {
            if cut {
                framingUnknown = true
                return
            }
            let digits = value.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\r") }
            if contentLength != nil || digits.isEmpty || digits.count > 18
                || !digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                framingUnknown = true
            } else {
                contentLength = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            }
        } else if let value = Self.value(of: "transfer-encoding", in: line) {
            // Only a chunked last coding frames a request body (RFC 9112 §6.3); and a line cut
            // short by `keptLineBytes` cannot be judged.
            let last = value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).last ?? []
            let coding = last.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") && $0 != UInt8(ascii: "\r") }
            if cut || coding.map({ $0 | 0x20 }) != Array("chunked".utf8) {
                framingUnknown = true
            }
            chunked = true
        }
    }

    private func bodyStart() -> Position {
        if framingUnknown || (chunked && contentLength != nil) { return .lost }
        if chunked { return .chunkSize(size: 0, digits: 0, extensionBegan: false) }
        if let contentLength, contentLength > 0 { return .body(remaining: contentLength) }
        return .requestLine(sawByte: false)
    }

    /// The value of a field line whose name is `name` (ASCII, lower case), or nil.
    private static func value(of name: StaticString, in line: [UInt8]) -> ArraySlice<UInt8>? {
        let count = name.utf8CodeUnitCount
        guard line.count > count, line[count] == UInt8(ascii: ":") else { return nil }
        let matches = name.withUTF8Buffer { expected in
            for index in 0..<count where line[index] | 0x20 != expected[index] { return false }
            return true
        }
        return matches ? line[(count + 1)...] : nil
    }

    private func significantDigits(_ size: Int) -> Int {
        (Int.bitWidth - size.leadingZeroBitCount + 3) / 4
    }

    /// A copy of `buffer` with the bytes at `offsets` (obs-text, so 0x80–0xFF) written as the
    /// two bytes of their Latin-1 character's UTF-8 encoding.
    private static func widened(_ buffer: ByteBuffer, at offsets: [Int]) -> ByteBuffer {
        var output = ByteBufferAllocator().buffer(capacity: buffer.readableBytes + offsets.count)
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            for offset in offsets {
                output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<offset]))
                let byte = bytes[offset]
                output.writeInteger(0xC0 | byte >> 6)
                output.writeInteger(0x80 | byte & 0x3F)
                start = offset + 1
            }
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start...]))
        }
        return output
    }
}
