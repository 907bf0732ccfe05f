extension String {
    /// ASCII case-insensitive equality against a lower-case literal, without allocating: header
    /// names are compared on every request.
    public func equalsIgnoringASCIICase(_ lowercased: String) -> Bool {
        guard utf8.count == lowercased.utf8.count else { return false }
        for (a, b) in zip(utf8, lowercased.utf8) {
            let folded = (a >= 65 && a <= 90) ? a + 32 : a
            if folded != b { return false }
        }
        return true
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
