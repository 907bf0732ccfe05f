import Foundation

/// One HTTP response as the server sent it: status, headers in wire order, and the decoded body.
///
/// Kept as plain data (no Foundation URL loading types) so tests can assert on exactly what
/// crossed the socket, including duplicate headers and the raw body bytes.
struct HTTPResponse: Sendable, CustomStringConvertible {
    /// `HTTP/1.1` or `HTTP/1.0`, from the status line.
    var version: String
    var status: Int
    var reason: String
    /// Header fields in the order received; names keep the server's spelling.
    var headers: [(String, String)]
    /// The body after removing any chunked transfer coding.
    var body: [UInt8]

    /// The value of the first header named `name`, compared case-insensitively.
    func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.0.lowercased() == wanted }?.1
    }

    /// The values of every header named `name`, compared case-insensitively.
    func headerValues(_ name: String) -> [String] {
        let wanted = name.lowercased()
        return headers.filter { $0.0.lowercased() == wanted }.map(\.1)
    }

    /// The body decoded as UTF-8 (invalid sequences become U+FFFD).
    var text: String {
        String(decoding: body, as: UTF8.self)
    }

    /// The body parsed as JSON, or nil when it is not JSON.
    var json: Any? {
        try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
    }

    /// The body parsed as a JSON object, or nil.
    var jsonObject: [String: Any]? {
        json as? [String: Any]
    }

    /// Whether the server announced that it closes the connection after this response.
    var announcesClose: Bool {
        let connection = headerValues("Connection").joined(separator: ",").lowercased()
        if connection.contains("close") { return true }
        return version == "HTTP/1.0" && !connection.contains("keep-alive")
    }

    var description: String {
        let shownHeaders = headers.map { "\($0.0): \($0.1)" }.joined(separator: "; ")
        let shownBody = text.count > 600 ? String(text.prefix(600)) + "… (\(body.count) bytes)" : text
        return "\(version) \(status) \(reason) [\(shownHeaders)] \(shownBody)"
    }
}
