/// A JSON string literal for `text` (also a valid JavaScript one): how hosts hand configuration
/// to their glue, which parses it with the language's own JSON.
public func jsonStringLiteral(_ text: String) -> String {
    var literal = ""
    appendJSONString(text, to: &literal)
    return literal
}

/// Appends `text` as a JSON string literal: `"` and `\` escaped, control characters as their
/// short escapes or `\u00XX`, and U+2028/U+2029 escaped too, so the literal is also valid
/// JavaScript (the access log's JSON lines and the glue's boot objects share it).
public func appendJSONString(_ text: String, to literal: inout String) {
    literal += "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": literal += "\\\""
        case "\\": literal += "\\\\"
        case "\n": literal += "\\n"
        case "\r": literal += "\\r"
        case "\t": literal += "\\t"
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
    literal += "\""
}
