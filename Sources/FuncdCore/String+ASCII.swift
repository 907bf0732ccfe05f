extension String {
    /// ASCII case-insensitive equality against a lower-case literal, without allocating: header
    /// names are compared on every request.
    public func equalsIgnoringASCIICase(_ lowercased: String) -> Bool {
        guard utf8.count == lowercased.utf8.count else { return false }
        // Native strings (header names, literals) hold their UTF-8 contiguously: comparing the
        // two buffers avoids zip's walk of two string views (0.1-0.2 us a request in a profile).
        let contiguous = utf8.withContiguousStorageIfAvailable { mine in
            lowercased.utf8.withContiguousStorageIfAvailable { theirs in
                Self.foldedEqual(mine, theirs)
            }
        }
        if let contiguous, let result = contiguous { return result }
        return Self.foldedEqual(utf8, lowercased.utf8)
    }

    private static func foldedEqual<A: Sequence<UInt8>, B: Sequence<UInt8>>(_ mine: A, _ lowercased: B) -> Bool {
        for (a, b) in zip(mine, lowercased) {
            let folded = (a >= 65 && a <= 90) ? a + 32 : a
            if folded != b { return false }
        }
        return true
    }

    /// `%XX` escapes decoded (as Go's `URL.Path` has them for of-watchdog's `Http_Path`, and as
    /// CloudEvents' HTTP binding encodes attribute values); nil when an escape is malformed or the
    /// result is not UTF-8.
    public var percentDecoded: String? {
        guard utf8.contains(UInt8(ascii: "%")) else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next()?.hexDigitValue, let low = iterator.next()?.hexDigitValue else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension UInt8 {
    /// The value of this byte as an ASCII hexadecimal digit (`0`–`9`, `a`–`f`, `A`–`F`), or nil.
    public var hexDigitValue: UInt8? {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): self - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): self - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): self - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension StringProtocol {
    /// Whether this text starts with `lowercased` (a lower-case ASCII literal), in any case: the
    /// prefixes of media types and header names, compared without allocating.
    public func hasPrefixIgnoringASCIICase(_ lowercased: String) -> Bool {
        guard utf8.count >= lowercased.utf8.count else { return false }
        return zip(utf8, lowercased.utf8).allSatisfy { a, b in ((a >= 65 && a <= 90) ? a | 0x20 : a) == b }
    }
}

extension StringProtocol {
    /// This text without ASCII white space (space, tab, CR, LF) at either end: what a value read
    /// from the environment, a control line or an `invoke` file is compared by. Unicode spaces
    /// stay; they are not padding anyone types.
    public var trimmingASCIIWhitespace: String {
        let isSpace = { (scalar: Unicode.Scalar) in scalar == " " || scalar == "\t" || scalar == "\r" || scalar == "\n" }
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
            let last = scalars.lastIndex(where: { !isSpace($0) })
        else { return "" }
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars[first...last])
        return text
    }
}
