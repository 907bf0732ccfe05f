import Foundation

/// One response exactly as it was framed on the wire, parsed from raw bytes a test received.
///
/// The framing attacks (a 204 with a body, an injected header) are about where one response ends
/// and the next begins, so the parser follows HTTP/1.1's own rules strictly (RFC 9112 section 6.3)
/// and keeps what it cannot parse as ``Parsed/rest`` instead of guessing: a response smuggled
/// into a body shows up as an extra response or as unparsed bytes, never silently skipped.
struct WireResponse: CustomStringConvertible {
    var status: Int
    var reason: String
    /// Header fields in wire order.
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    /// The status line and header lines as received, for messages.
    var head: String

    /// Whether this is an interim (1xx) response, which another one follows.
    var isInterim: Bool { (100..<200).contains(status) && status != 101 }

    /// The first value of header `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    var description: String {
        "\(head.debugDescription) + \(body.count) body bytes \(String(text.prefix(200)).debugDescription)"
    }

    /// The responses found in some bytes, and what was left over.
    struct Parsed: CustomStringConvertible {
        /// Every response in order, interim ones included.
        var responses: [WireResponse]
        /// Bytes after the last complete response: an incomplete one, or bytes that are no
        /// response at all.
        var rest: ArraySlice<UInt8>

        /// The responses that are not interim: one per request.
        var finalResponses: [WireResponse] { responses.filter { !$0.isInterim } }

        var description: String {
            let rest = String(decoding: rest.prefix(600), as: UTF8.self)
            return "\(responses.count) responses: \(responses.map(\.description)); then \(self.rest.count) bytes \(rest.debugDescription)"
        }
    }

    /// Parses `bytes` into complete responses. `methods` are the methods of the requests these
    /// answer, in order (a response to HEAD has no body); missing ones count as GET. A response
    /// framed by the connection's end is complete only once the bytes end with it; here that
    /// means it is taken to run to the end of `bytes`.
    static func parse(_ bytes: [UInt8], methods: [String] = []) -> Parsed {
        var responses: [WireResponse] = []
        var position = bytes.startIndex
        var answered = 0
        while position < bytes.endIndex {
            guard let headEnd = find([13, 10, 13, 10], in: bytes, from: position) else { break }
            let headText = String(decoding: bytes[position..<headEnd], as: UTF8.self)
            let lines = headText.components(separatedBy: "\r\n")
            let statusParts = lines[0].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), statusParts[1].count == 3,
                let status = Int(statusParts[1])
            else { break }
            var headers: [(name: String, value: String)] = []
            var malformed = false
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else {
                    malformed = true
                    break
                }
                headers.append(
                    (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
            }
            if malformed { break }
            var response = WireResponse(
                status: status, reason: statusParts.count > 2 ? String(statusParts[2]) : "", headers: headers, body: [],
                head: headText)
            let method = answered < methods.count ? methods[answered] : "GET"
            var next = headEnd + 4
            if method == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 {
                // No body, whatever the headers say.
            } else if response.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
                guard let (body, end) = dechunk(bytes, from: next) else { break }
                response.body = body
                next = end
            } else if let lengthText = response.header("Content-Length") {
                guard let length = Int(lengthText), length >= 0, next + length <= bytes.endIndex else { break }
                response.body = Array(bytes[next..<(next + length)])
                next += length
            } else {
                response.body = Array(bytes[next...])
                next = bytes.endIndex
            }
            responses.append(response)
            if !response.isInterim { answered += 1 }
            position = next
        }
        return Parsed(responses: responses, rest: bytes[position...])
    }

    /// The body of a chunked message starting at `start`, and where the message ends; nil while
    /// incomplete or malformed.
    private static func dechunk(_ bytes: [UInt8], from start: Int) -> ([UInt8], Int)? {
        var body: [UInt8] = []
        var position = start
        while true {
            guard let lineEnd = find([13, 10], in: bytes, from: position) else { return nil }
            let sizeText = String(decoding: bytes[position..<lineEnd], as: UTF8.self)
                .split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let size = Int(sizeText, radix: 16), size >= 0 else { return nil }
            position = lineEnd + 2
            if size == 0 {
                // Trailers, up to an empty line.
                while true {
                    guard let end = find([13, 10], in: bytes, from: position) else { return nil }
                    let empty = end == position
                    position = end + 2
                    if empty { return (body, position) }
                }
            }
            guard position + size + 2 <= bytes.endIndex else { return nil }
            body += bytes[position..<(position + size)]
            guard bytes[position + size] == 13, bytes[position + size + 1] == 10 else { return nil }
            position += size + 2
        }
    }

    /// The index of the first occurrence of `needle` in `bytes` at or after `start`.
    static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard needle.count <= bytes.count - start else { return nil }
        var index = start
        while index + needle.count <= bytes.endIndex {
            if bytes[index] == needle[0] && bytes[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }
}

extension Array where Element == UInt8 {
    /// Whether these bytes contain `text`'s UTF-8 bytes.
    func contains(text: String) -> Bool {
        WireResponse.find(Array(text.utf8), in: self, from: startIndex) != nil
    }
}
