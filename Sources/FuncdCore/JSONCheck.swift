/// Whether bytes are one JSON value (RFC 8259), without building it: the kafka-trigger sent a
/// JSON content type only for values that parse, and the interpreters parse them themselves.
public enum JSONCheck {
    public static func isJSON(_ bytes: [UInt8]) -> Bool {
        var index = 0
        var depth = 0
        guard value(bytes, &index, &depth) else { return false }
        skipSpace(bytes, &index)
        return index == bytes.count
    }

    private static func skipSpace(_ bytes: [UInt8], _ index: inout Int) {
        while index < bytes.count, [32, 9, 10, 13].contains(bytes[index]) { index += 1 }
    }

    private static func value(_ bytes: [UInt8], _ index: inout Int, _ depth: inout Int) -> Bool {
        skipSpace(bytes, &index)
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = bytes[index] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let object = close == UInt8(ascii: "}")
            depth += 1
            guard depth < 512 else { return false }
            index += 1
            skipSpace(bytes, &index)
            if index < bytes.count, bytes[index] == close {
                index += 1
                depth -= 1
                return true
            }
            while true {
                if object {
                    skipSpace(bytes, &index)
                    guard string(bytes, &index) else { return false }
                    skipSpace(bytes, &index)
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
                    index += 1
                }
                guard value(bytes, &index, &depth) else { return false }
                skipSpace(bytes, &index)
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == close else { return false }
                index += 1
                depth -= 1
                return true
            }
        case UInt8(ascii: "\""):
            return string(bytes, &index)
        case UInt8(ascii: "t"): return literal(bytes, &index, "true")
        case UInt8(ascii: "f"): return literal(bytes, &index, "false")
        case UInt8(ascii: "n"): return literal(bytes, &index, "null")
        default:
            return number(bytes, &index)
        }
    }

    private static func literal(_ bytes: [UInt8], _ index: inout Int, _ word: String) -> Bool {
        let expected = Array(word.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<index + expected.count]) == expected else {
            return false
        }
        index += expected.count
        return true
    }

    private static func string(_ bytes: [UInt8], _ index: inout Int) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return true
            }
            if byte < 0x20 { return false }
            index += 1
            guard byte == UInt8(ascii: "\\") else { continue }
            // An escape is one of the eight letters, or `u` and four hex digits: a parser
            // refuses `\x`, so the check must too.
            guard index < bytes.count else { return false }
            let escaped = bytes[index]
            index += 1
            if escaped == UInt8(ascii: "u") {
                guard bytes.count - index >= 4, bytes[index..<index + 4].allSatisfy({ $0.hexDigitValue != nil }) else {
                    return false
                }
                index += 4
            } else if !Array(#""\/bfnrt"#.utf8).contains(escaped) {
                return false
            }
        }
        return false
    }

    private static func number(_ bytes: [UInt8], _ index: inout Int) -> Bool {
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let digitsStart = index
        while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
        guard index > digitsStart else { return false }
        // No leading zeros: `0`, `0.5` and `-0` are numbers, `01` is not.
        if bytes[digitsStart] == UInt8(ascii: "0") && index - digitsStart > 1 { return false }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fraction = index
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
            guard index > fraction else { return false }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let exponent = index
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }
            guard index > exponent else { return false }
        }
        return index > start
    }
}
