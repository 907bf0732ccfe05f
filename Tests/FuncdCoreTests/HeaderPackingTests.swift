import Testing

@testable import FuncdCore

@Suite("Header packing: length-prefixed fields between Swift and the glue")
struct HeaderPackingTests {
    /// Unpacks through the same pointer type the hosts hand over.
    func unpack(_ bytes: [UInt8]) -> [(String, String)] {
        bytes.withUnsafeBytes { HeaderPacking.unpack($0) }
    }

    func pack(_ headers: [(String, String)]) -> [UInt8] {
        var buffer: [UInt8] = []
        HeaderPacking.pack(headers, into: &buffer)
        return buffer
    }

    /// Packs raw byte fields the way the glue does, for bytes a Swift String cannot hold.
    func packRaw(_ fields: [[UInt8]]) -> [UInt8] {
        var buffer: [UInt8] = []
        for field in fields {
            let length = UInt32(field.count)
            buffer += [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24)]
            buffer += field
        }
        return buffer
    }

    func same(_ left: [(String, String)], _ right: [(String, String)]) -> Bool {
        left.count == right.count && zip(left, right).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    @Test func wireBytesAreLengthPrefixedLittleEndian() {
        // The same vector is checked by runtimes/ruby/test/test_headers.rb.
        let expected: [UInt8] =
            [2, 0, 0, 0] + Array("x-".utf8) + [3, 0, 0, 0] + [0x61, 0x00, 0x62]
            + [0, 0, 0, 0] + [0, 0, 0, 0]
        #expect(pack([("X-", "a\0b"), ("", "")]) == expected)
    }

    @Test func namesAreLowerCasedAndValuesKeptAsTheyAre() {
        let packed = pack([("Content-TYPE", "Text/HTML"), ("X-Ünïcode", "ÄÖ")])
        #expect(same(unpack(packed), [("content-type", "Text/HTML"), ("x-Ünïcode", "ÄÖ")]))
    }

    @Test func separatorsInsideValuesStayInside() {
        // The redirect of the review's finding 7: with NUL separators this became a Set-Cookie.
        let headers = [
            ("location", "/home\0Set-Cookie\0session=attacker"),
            ("x-crlf", "a\r\nSet-Cookie: b=c\r\n"),
            ("x-ff", "\u{FF}\u{FF}"),
            ("x-nul\0name", "\0"),
            ("x-empty", ""),
        ]
        #expect(same(unpack(pack(headers)), headers))
    }

    @Test func arbitraryBytesKeepTheirFieldBoundaries() {
        var random = SplitMix(seed: 7)
        for _ in 0..<200 {
            let count = Int(random.next() % 6) * 2
            let fields: [[UInt8]] = (0..<count).map { _ in
                let length = Int(random.next() % 40)
                return (0..<length).map { _ in
                    // Mostly the bytes that used to split fields, and invalid UTF-8.
                    let pick = random.next() % 8
                    return pick < 4 ? [0x00, 0x0D, 0x0A, 0xFF][Int(pick)] : UInt8(truncatingIfNeeded: random.next())
                }
            }
            let decoded = unpack(packRaw(fields))
            #expect(decoded.count == count / 2)
            for (index, (name, value)) in decoded.enumerated() {
                #expect(name == String(decoding: fields[2 * index], as: UTF8.self))
                #expect(value == String(decoding: fields[2 * index + 1], as: UTF8.self))
            }
        }
    }

    @Test func arbitraryTextRoundTrips() {
        var random = SplitMix(seed: 11)
        let scalars: [Unicode.Scalar] = [
            "\0", "\r", "\n", "\u{FF}", "\u{7F}", "a", "Z", ":", " ", "é", "\u{10FFFF}", "\u{FFFD}",
        ]
        for _ in 0..<200 {
            func text() -> String {
                var result = String.UnicodeScalarView()
                for _ in 0..<Int(random.next() % 12) {
                    result.append(scalars[Int(random.next() % UInt64(scalars.count))])
                }
                return String(result)
            }
            // Names already lower-case: packing lower-cases them.
            let headers = (0..<Int(random.next() % 5)).map { _ in (text().lowercased(), text()) }
            #expect(same(unpack(pack(headers)), headers))
        }
    }

    @Test func emptyAndTruncatedInputs() {
        #expect(unpack([]).isEmpty)
        #expect(unpack([1, 0, 0]).isEmpty)
        let whole = pack([("a", "1"), ("b", "2")])
        // A cut anywhere inside the second field keeps the first and drops the rest.
        for cut in 10..<whole.count {
            #expect(same(unpack(Array(whole[0..<cut])), [("a", "1")]))
        }
        // A length beyond the end is not read past.
        #expect(unpack(packRaw([[0x61]]) + [0xFF, 0xFF, 0xFF, 0xFF, 0x62]).isEmpty)
    }

    @Test func appendsToWhatTheBufferHolds() {
        var buffer: [UInt8] = [9]
        HeaderPacking.pack([("a", "b")], into: &buffer)
        #expect(buffer == [9, 1, 0, 0, 0, 0x61, 1, 0, 0, 0, 0x62])
    }

    @Test("Latin-1 values: a character up to U+00FF is one byte, beyond it UTF-8; names unchanged")
    func latin1Values() {
        var buffer: [UInt8] = []
        HeaderPacking.pack([("X-\u{E9}", "caf\u{E9}\u{FF}"), ("y", "a\u{FFFD}"), ("z", "plain")], into: &buffer, values: .latin1)
        let expected: [[UInt8]] = [
            [0x78, 0x2D, 0xC3, 0xA9], [0x63, 0x61, 0x66, 0xE9, 0xFF],
            [0x79], [0x61, 0xEF, 0xBF, 0xBD],
            [0x7A], Array("plain".utf8),
        ]
        #expect(buffer == packRaw(expected))
    }

    final class NoSink: InvocationSink {
        func deliver(_ batch: [Invocation]) {}
    }

    @Test("a call packed for Node and Ruby: headers, the peer when asked, then the facts, which start where it says")
    func packCall() {
        let invocation = Invocation(
            method: "POST", target: "/p?q=1", headers: [("content-type", "text/plain"), ("x-caf\u{e9}", "caf\u{e9}")],
            body: [1, 2, 3], sink: NoSink(), reply: nil, remoteAddress: "10.0.0.7")
        var buffer: [UInt8] = [9, 9, 9]  // emptied first
        let withPeer = HeaderPacking.packCall(invocation, into: &buffer, peerField: true)
        let fields = unpack(buffer)
        #expect(fields.map(\.0) == ["content-type", "x-caf\u{e9}", "funcd-peer", "traceparent", "tracestate"])
        #expect(fields[2].1 == "10.0.0.7")
        #expect(unpack(Array(buffer[withPeer...])).map(\.1) == [invocation.trace.traceparent, ""])
        // HTTP values go as Latin-1 bytes: é is one byte 0xE9.
        #expect(buffer.contains(0xE9))
        let withoutPeer = HeaderPacking.packCall(invocation, into: &buffer, peerField: false)
        #expect(!unpack(buffer).contains { $0.0 == "funcd-peer" })
        #expect(withoutPeer < withPeer)

        let lent = CallBuffers.lend(invocation, fields: buffer) { call in
            (
                String(decoding: UnsafeRawBufferPointer(call.method), as: UTF8.self),
                String(decoding: UnsafeRawBufferPointer(call.target), as: UTF8.self), call.fields.count, Array(call.body)
            )
        }
        #expect(lent.0 == "POST" && lent.1 == "/p?q=1" && lent.2 == buffer.count && lent.3 == [1, 2, 3])
    }
}

/// A small seeded generator, so that a failure can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
