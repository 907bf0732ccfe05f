/// How headers cross to a language's C side and back: one buffer of fields, each a name and a
/// value, each of those written as its length (a `UInt32`, little-endian) followed by its bytes:
///
///     [name length][name bytes][value length][value bytes] [name length]...
///
/// Lengths rather than separators, so that any byte (NUL, CR, LF, 0xFF) inside a name or value
/// stays inside it: a separator inside a value once split one field into two, which let a
/// redirect target or a Kafka key inject headers. One buffer, so no per-header allocation is
/// needed on either side. Names going to a handler are lower-cased (node's and Rack's
/// conventions start from that). The C shims and the glue (`runtimes/node`, `runtimes/ruby`)
/// read and write the same format.
public enum HeaderPacking {
    /// The size of a length prefix.
    public static let lengthSize = 4

    /// Appends one field, `name` as it is (ASCII, lower case) and `value` as UTF-8: one of funcd's
    /// own fields beside a request's, without building a list for it.
    public static func append(name: StaticString, value: String, into buffer: inout [UInt8]) {
        appendLength(name.utf8CodeUnitCount, to: &buffer)
        name.withUTF8Buffer { buffer.append(contentsOf: $0) }
        appendLength(value.utf8.count, to: &buffer)
        buffer.append(contentsOf: value.utf8)
    }

    /// How a value's characters become bytes.
    public enum ValueBytes: Sendable {
        /// Its UTF-8 encoding: Kafka header values, which are UTF-8 text here.
        case utf8
        /// One byte per character up to U+00FF, UTF-8 beyond: an HTTP request's field values,
        /// whose characters are the wire's bytes read as Latin-1 (see FuncdHTTP's
        /// `ObsTextWidener`), so the glue gets the bytes the client sent, as node's `http` and
        /// Rack servers hand them to their frameworks.
        case latin1
    }

    /// Appends `headers` to `buffer`, names lower-cased (ASCII only).
    public static func pack(_ headers: [(String, String)], into buffer: inout [UInt8], values: ValueBytes = .utf8) {
        var needed = 0
        for (name, value) in headers { needed += 2 * lengthSize + name.utf8.count + value.utf8.count }
        buffer.reserveCapacity(buffer.count + needed)
        for (name, value) in headers {
            appendLength(name.utf8.count, to: &buffer)
            for byte in name.utf8 {
                buffer.append(byte >= 65 && byte <= 90 ? byte | 0x20 : byte)
            }
            if values == .latin1 && value.utf8.contains(where: { $0 >= 0x80 }) {
                appendLatin1(value, to: &buffer)
            } else {
                appendLength(value.utf8.count, to: &buffer)
                buffer.append(contentsOf: value.utf8)
            }
        }
    }

    /// Writes `value` as ``ValueBytes/latin1`` says, after its length.
    private static func appendLatin1(_ value: String, to buffer: inout [UInt8]) {
        let bytes = valueBytes(value, .latin1)
        appendLength(bytes.count, to: &buffer)
        buffer.append(contentsOf: bytes)
    }

    /// The bytes of a header value as `mode` says: for `.latin1`, one byte per character up to
    /// U+00FF and UTF-8 beyond (only a value the widening could not follow holds a character
    /// above U+00FF, the decoder's U+FFFD).
    public static func valueBytes(_ value: String, _ mode: ValueBytes) -> [UInt8] {
        guard mode == .latin1, value.utf8.contains(where: { $0 >= 0x80 }) else { return Array(value.utf8) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            if scalar.value <= 0xFF {
                bytes.append(UInt8(scalar.value))
            } else {
                bytes.append(contentsOf: UTF8.encode(scalar)!)
            }
        }
        return bytes
    }

    /// The fields of `bytes` as written by `pack` (or by the glue), names as they are. Bytes that
    /// are not valid UTF-8 are replaced (U+FFFD), as `String(decoding:)` does. A truncated last
    /// field, which no correct writer produces, is dropped.
    public static func unpack(_ bytes: UnsafeRawBufferPointer) -> [(String, String)] {
        guard bytes.count >= 2 * lengthSize else { return [] }
        var headers: [(String, String)] = []
        var offset = 0
        while let name = field(bytes, at: &offset), let value = field(bytes, at: &offset) {
            headers.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return headers
    }

    /// Everything Node's and Ruby's glue get of a call but its body, into `buffer` (emptied
    /// first): the request headers (HTTP values as Latin-1 bytes, Kafka's as UTF-8), the peer's
    /// address as `funcd-peer` when asked, then the facts (``appendFacts(of:into:)``). Returns
    /// where the facts start.
    public static func packCall(_ invocation: Invocation, into buffer: inout [UInt8], peerField: Bool) -> Int {
        buffer.removeAll(keepingCapacity: true)
        pack(invocation.headers, into: &buffer, values: invocation.kafka == nil ? .latin1 : .utf8)
        if peerField, let peer = invocation.remoteAddress {
            // REMOTE_ADDR, as a field of funcd's own (the front drops any a client sends).
            append(name: "funcd-peer", value: peer, into: &buffer)
        }
        let factsStart = buffer.count
        appendFacts(of: invocation, into: &buffer)
        return factsStart
    }

    /// Appends a call's facts for the Node and Ruby shims: `traceparent`, `tracestate` (empty
    /// when there is none), then a binary-mode CloudEvent's attributes. The shims read them by
    /// place, so an attribute cannot pass for the trace.
    public static func appendFacts(of invocation: Invocation, into buffer: inout [UInt8]) {
        append(name: "traceparent", value: invocation.trace.traceparent, into: &buffer)
        append(name: "tracestate", value: invocation.trace.tracestate ?? "", into: &buffer)
        if case .binary(let attributes) = invocation.cloudEvent {
            pack(attributes, into: &buffer)
        }
    }

    // MARK: - Lengths

    @inline(__always)
    private static func appendLength(_ count: Int, to buffer: inout [UInt8]) {
        // A header is bounded by the HTTP parser's limits and a Kafka message by the broker's:
        // neither comes near 4 GiB, so a larger field is a bug, not data.
        precondition(count <= Int(UInt32.max), "a header field of 4 GiB or more")
        let length = UInt32(truncatingIfNeeded: count)
        buffer.append(UInt8(truncatingIfNeeded: length))
        buffer.append(UInt8(truncatingIfNeeded: length >> 8))
        buffer.append(UInt8(truncatingIfNeeded: length >> 16))
        buffer.append(UInt8(truncatingIfNeeded: length >> 24))
    }

    /// The next length-prefixed field at `offset`, moving `offset` past it; nil when what is left
    /// is too short to hold it.
    @inline(__always)
    private static func field(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) -> UnsafeRawBufferPointer? {
        guard bytes.count - offset >= lengthSize else { return nil }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        let start = offset + lengthSize
        guard bytes.count - start >= length else { return nil }
        offset = start + length
        return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }
}
