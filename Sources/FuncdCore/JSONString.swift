/// A JSON string literal for `text` (also a valid JavaScript one): how hosts hand configuration
/// to their glue, which parses it with the language's own JSON.
public func jsonStringLiteral(_ text: String) -> String {
    var literal = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": literal += "\\\""
        case "\\": literal += "\\\\"
        case "\u{2028}", "\u{2029}": literal += "\\u\(String(scalar.value, radix: 16))"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                literal += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                literal.unicodeScalars.append(scalar)
            }
        }
    }
    return literal + "\""
}
