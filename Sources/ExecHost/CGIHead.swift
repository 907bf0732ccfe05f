/// The head a program may write before its answer when `FUNC_EXEC_CGI` is on, as a CGI script
/// does (RFC 3875 §6): header fields, one per line, then a blank line. `Status: 404 Not Found`
/// sets the status, `Content-Type` the type, any other field goes out as it is; a `Location`
/// without a status means 302.
struct CGIHead: Equatable {
    var status: Int?
    var headers: [(String, String)] = []

    static func == (lhs: CGIHead, rhs: CGIHead) -> Bool {
        lhs.status == rhs.status && lhs.headers.elementsEqual(rhs.headers) { $0 == $1 }
    }

    enum Parse: Equatable {
        /// The head is not complete yet.
        case incomplete
        /// The head, and where the body starts in the bytes given.
        case complete(CGIHead, bodyStart: Int)
        /// Not a head: the reason.
        case invalid(String)
    }

    /// Reads the head at the start of `bytes` (all of stdout so far). Lines end with LF or CRLF.
    static func parse(_ bytes: [UInt8]) -> Parse {
        var head = CGIHead()
        var lineStart = 0
        while let newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            var line = bytes[lineStart..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            lineStart = newline + 1
            if line.isEmpty {
                if head.status == nil, head.headers.contains(where: { $0.0.lowercased() == "location" }) {
                    head.status = 302
                }
                return .complete(head, bodyStart: lineStart)
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                return .invalid("a CGI head line without a field name: \(String(decoding: line.prefix(80), as: UTF8.self).debugDescription)")
            }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }, as: UTF8.self)
            if name.lowercased() == "status" {
                let code = value.prefix { $0.isNumber }
                guard code.count == 3, let status = Int(code), (200...599).contains(status) else {
                    return .invalid("Status: \(value) is not a final HTTP status")
                }
                head.status = status
            } else {
                head.headers.append((name, value))
            }
        }
        return .incomplete
    }
}
