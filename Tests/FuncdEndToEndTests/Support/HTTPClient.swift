import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking HTTP/1.1 client connection to `127.0.0.1`, written directly on POSIX sockets.
///
/// The tests need control that URLSession does not give: reusing one connection for several
/// requests and proving it stayed open, sending malformed bytes, sending a body larger than the
/// server accepts, and seeing that the server closed the connection. Every wait is bounded by a
/// deadline (`poll(2)` before each read and write), so a misbehaving server fails a test instead
/// of hanging it. Writes use `MSG_NOSIGNAL`, so a server that hangs up is an error, not a SIGPIPE.
///
/// Not thread-safe: use one client per thread.
final class HTTPClient {
    /// What went wrong on the connection. Descriptions are written for test failure messages.
    enum Failure: Error, CustomStringConvertible {
        case system(String)
        case timedOut(String)
        case closed(String)
        case malformed(String)

        var description: String {
            switch self {
            case .system(let text): return "socket error: \(text)"
            case .timedOut(let text): return "timed out: \(text)"
            case .closed(let text): return "connection closed by the server: \(text)"
            case .malformed(let text): return "malformed response: \(text)"
            }
        }
    }

    let port: Int
    /// The timeout, in seconds, for each request (sending it and reading the whole response).
    let timeout: Double
    private var descriptor: Int32
    /// Received bytes not consumed yet start at `start`.
    private var buffer: [UInt8] = []
    private var start = 0
    /// Set once a read saw end-of-file or a reset, or a write saw the peer gone.
    private(set) var serverClosed = false

    /// Connects to `127.0.0.1:port`.
    init(port: Int, timeout: Double = 30) throws {
        self.port = port
        self.timeout = timeout
        descriptor = try Self.openConnection(port: port)
    }

    deinit {
        close()
    }

    /// Closes the connection; safe to call more than once.
    func close() {
        if descriptor >= 0 {
            _ = posixClose(descriptor)
            descriptor = -1
        }
    }

    // MARK: Requests

    /// Opens a fresh connection, sends one request, reads the response and closes the connection.
    static func request(
        port: Int,
        method: String = "GET",
        path: String,
        headers: KeyValuePairs<String, String> = [:],
        body: [UInt8] = [],
        timeout: Double = 30
    ) throws -> HTTPResponse {
        let client = try HTTPClient(port: port, timeout: timeout)
        defer { client.close() }
        return try client.request(method: method, path: path, headers: headers, body: body)
    }

    /// ``request(port:method:path:headers:body:timeout:)`` with a UTF-8 text body.
    static func request(
        port: Int,
        method: String = "POST",
        path: String,
        headers: KeyValuePairs<String, String> = [:],
        body: String,
        timeout: Double = 30
    ) throws -> HTTPResponse {
        try request(port: port, method: method, path: path, headers: headers, body: Array(body.utf8), timeout: timeout)
    }

    /// Sends one request on this connection and reads its response.
    ///
    /// `Host` is added unless given, and `Content-Length` is added for a non-empty body (and for
    /// an empty one on POST/PUT/PATCH) unless `Content-Length` or `Transfer-Encoding` is given.
    /// If the server hangs up while the request is still being sent (a body over its limit), the
    /// response it sent before hanging up is still read and returned.
    func request(
        method: String = "GET",
        path: String,
        headers: KeyValuePairs<String, String> = [:],
        body: [UInt8] = []
    ) throws -> HTTPResponse {
        let bytes = Self.encodeRequest(
            method: method, path: path, port: port, headers: headers.map { ($0.key, $0.value) }, body: body)
        var sendError: (any Error)?
        do {
            try send(bytes)
        } catch {
            sendError = error
        }
        do {
            return try readResponse(requestMethod: method)
        } catch {
            throw sendError ?? error
        }
    }

    /// ``request(method:path:headers:body:)`` with a UTF-8 text body.
    func request(
        method: String = "POST",
        path: String,
        headers: KeyValuePairs<String, String> = [:],
        body: String
    ) throws -> HTTPResponse {
        try request(method: method, path: path, headers: headers, body: Array(body.utf8))
    }

    /// The bytes of a request as ``request(method:path:headers:body:)`` sends them.
    static func encodeRequest(
        method: String,
        path: String,
        port: Int,
        headers: [(String, String)] = [],
        body: [UInt8] = []
    ) -> [UInt8] {
        let names = Set(headers.map { $0.0.lowercased() })
        var head = "\(method) \(path) HTTP/1.1\r\n"
        if !names.contains("host") {
            head += "Host: 127.0.0.1:\(port)\r\n"
        }
        for (name, value) in headers {
            head += "\(name): \(value)\r\n"
        }
        let framed = names.contains("content-length") || names.contains("transfer-encoding")
        if !framed && (!body.isEmpty || ["POST", "PUT", "PATCH"].contains(method)) {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    // MARK: Raw I/O

    /// Sends `bytes` as they are (for malformed requests, or a request split in parts).
    func send(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        let deadline = Deadline(in: timeout)
        var offset = 0
        while offset < bytes.count {
            guard descriptor >= 0 else { throw Failure.system("send on a closed client") }
            let sent = bytes.withUnsafeBytes { raw in
                posixSend(descriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if sent > 0 {
                offset += sent
                continue
            }
            let error = errno
            if sent < 0 && (error == EAGAIN || error == EWOULDBLOCK) {
                try waitFor(Int16(POLLOUT), deadline: deadline, doing: "sending (\(offset) of \(bytes.count) bytes sent)")
            } else if sent < 0 && error == EINTR {
                continue
            } else if sent < 0 && (error == EPIPE || error == ECONNRESET) {
                serverClosed = true
                throw Failure.closed("while sending, after \(offset) of \(bytes.count) bytes")
            } else {
                throw Failure.system("send: \(String(cString: strerror(error)))")
            }
        }
    }

    /// Sends `text` as UTF-8 bytes, as it is.
    func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    /// Reads one complete response. `requestMethod` matters for framing: a response to HEAD has
    /// no body whatever its `Content-Length` says.
    func readResponse(requestMethod: String = "GET") throws -> HTTPResponse {
        let deadline = Deadline(in: timeout)
        while true {
            var statusLine = try readLine(deadline)
            while statusLine.isEmpty {  // tolerate stray CRLFs between messages
                statusLine = try readLine(deadline)
            }
            let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
                throw Failure.malformed("status line \(statusLine.debugDescription)")
            }
            let headers = try readHeaders(deadline)
            if (100..<200).contains(status) && status != 101 {
                continue  // interim response (100 Continue): the real one follows
            }
            var response = HTTPResponse(
                version: String(parts[0]), status: status,
                reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: [])
            response.body = try readBody(of: response, requestMethod: requestMethod, deadline: deadline)
            return response
        }
    }

    /// Waits up to `timeout` seconds for the server to close the connection, discarding anything
    /// it still sends. Returns whether it closed (end-of-file or reset) in time.
    func waitForServerClose(timeout: Double) -> Bool {
        let deadline = Deadline(in: timeout)
        while !serverClosed {
            do {
                if try !fill(deadline) { return true }
            } catch Failure.timedOut(_) {
                return false
            } catch {
                return true  // any other socket error means the connection is gone too
            }
        }
        return true
    }

    // MARK: Parsing

    private func readHeaders(_ deadline: Deadline) throws -> [(String, String)] {
        var headers: [(String, String)] = []
        while true {
            let line = try readLine(deadline)
            if line.isEmpty { return headers }
            guard let colon = line.firstIndex(of: ":") else {
                throw Failure.malformed("header line \(line.debugDescription)")
            }
            let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            headers.append((name, value))
        }
    }

    private func readBody(of response: HTTPResponse, requestMethod: String, deadline: Deadline) throws -> [UInt8] {
        if requestMethod == "HEAD" || response.status == 204 || response.status == 304 {
            return []
        }
        if let coding = response.header("Transfer-Encoding"), coding.lowercased().contains("chunked") {
            return try readChunkedBody(deadline)
        }
        if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText), length >= 0 else {
                throw Failure.malformed("Content-Length \(lengthText.debugDescription)")
            }
            return try readExactly(length, deadline)
        }
        // No framing: the body runs until the server closes the connection.
        while try fill(deadline) {}
        return take(buffer.count - start)
    }

    private func readChunkedBody(_ deadline: Deadline) throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let sizeLine = try readLine(deadline)
            let sizeText = sizeLine.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw Failure.malformed("chunk size line \(sizeLine.debugDescription)")
            }
            if size == 0 {
                _ = try readHeaders(deadline)  // trailers, up to the final empty line
                return body
            }
            body += try readExactly(size, deadline)
            let end = try readLine(deadline)
            guard end.isEmpty else { throw Failure.malformed("no CRLF after a chunk, got \(end.debugDescription)") }
        }
    }

    /// One line without its line ending (CRLF, or a bare LF).
    private func readLine(_ deadline: Deadline) throws -> String {
        var searchFrom = start
        while true {
            if let newline = buffer[searchFrom...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = String(decoding: buffer[start..<end], as: UTF8.self)
                start = newline + 1
                compact()
                return line
            }
            searchFrom = buffer.count
            guard buffer.count - start < 1 << 20 else { throw Failure.malformed("a line longer than 1 MiB") }
            guard try fill(deadline) else {
                throw Failure.closed("in the middle of a response; unread: \(unreadDescription)")
            }
        }
    }

    private func readExactly(_ count: Int, _ deadline: Deadline) throws -> [UInt8] {
        while buffer.count - start < count {
            guard try fill(deadline) else {
                throw Failure.closed("after \(buffer.count - start) of \(count) body bytes")
            }
        }
        return take(count)
    }

    /// Reads raw bytes (without consuming them) until what has arrived contains `text`; false
    /// when the server closed first. For watching a streamed answer arrive piece by piece.
    func waitForRaw(containing text: String, timeout: Double) throws -> Bool {
        let deadline = Deadline(in: timeout)
        let wanted = Array(text.utf8)
        while true {
            let unread = buffer[start...]
            if unread.count >= wanted.count,
                (0...(unread.count - wanted.count)).contains(where: { unread.dropFirst($0).starts(with: wanted) })
            {
                return true
            }
            if try !fill(deadline) { return false }
        }
    }

    private func take(_ count: Int) -> [UInt8] {
        let bytes = Array(buffer[start..<(start + count)])
        start += count
        compact()
        return bytes
    }

    private func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65_536 {
            buffer.removeFirst(start)
            start = 0
        }
    }

    private var unreadDescription: String {
        String(decoding: buffer[start...].prefix(300), as: UTF8.self).debugDescription
    }

    // MARK: Socket

    /// Reads what is available into the buffer, waiting until the deadline for something to
    /// arrive. Returns false at end-of-file (or a reset: the server is gone either way).
    private func fill(_ deadline: Deadline) throws -> Bool {
        if serverClosed { return false }
        guard descriptor >= 0 else { throw Failure.system("read on a closed client") }
        try waitFor(Int16(POLLIN), deadline: deadline, doing: "waiting for the response; unread so far: \(unreadDescription)")
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { raw in
                recv(descriptor, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT))
            }
            if count > 0 {
                buffer += chunk[0..<count]
                return true
            }
            if count == 0 {
                serverClosed = true
                return false
            }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return true }  // spurious wake-up; caller loops
            if error == ECONNRESET || error == EPIPE {
                serverClosed = true
                return false
            }
            throw Failure.system("recv: \(String(cString: strerror(error)))")
        }
    }

    /// Blocks in `poll(2)` until the socket is ready for `events` or the deadline passes.
    private func waitFor(_ events: Int16, deadline: Deadline, doing activity: @autoclosure () -> String) throws {
        while true {
            let milliseconds = Int32(min(deadline.remaining * 1_000, 60_000).rounded(.up))
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return }
            if ready == 0 {
                if deadline.hasPassed { throw Failure.timedOut("after \(timeout) s \(activity())") }
                continue
            }
            if errno == EINTR { continue }
            throw Failure.system("poll: \(String(cString: strerror(errno)))")
        }
    }

    private static func openConnection(port: Int) throws -> Int32 {
        let descriptor = socket(AF_INET, streamSocketType, 0)
        guard descriptor >= 0 else {
            throw Failure.system("socket: \(String(cString: strerror(errno)))")
        }
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        address.sin_addr = in_addr(s_addr: in_addr_t(0x7F00_0001).bigEndian)  // 127.0.0.1
        var result: Int32
        repeat {
            result = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    posixConnect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } while result != 0 && errno == EINTR
        guard result == 0 else {
            let error = errno
            _ = posixClose(descriptor)
            throw Failure.system("connect to 127.0.0.1:\(port): \(String(cString: strerror(error)))")
        }
        return descriptor
    }
}

// File-scope wrappers: inside `HTTPClient` the names `close`, `send` and `connect` mean its own
// methods, and module-qualified calls (`Glibc.close`) would tie the file to one C library.

#if canImport(Glibc) || canImport(Musl)
/// `SOCK_STREAM`, close-on-exec so that no `funcd` child started meanwhile inherits the socket.
private let streamSocketType = Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)
/// Non-blocking (`poll(2)` does the waiting), and no SIGPIPE when the server has hung up.
private let sendFlags = Int32(MSG_NOSIGNAL | MSG_DONTWAIT)
#else
private let streamSocketType = SOCK_STREAM
private let sendFlags = Int32(MSG_DONTWAIT)  // SIGPIPE is ignored process-wide by FuncdProcess
#endif

private func posixClose(_ descriptor: Int32) -> Int32 {
    close(descriptor)
}

private func posixSend(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    send(descriptor, bytes, count, sendFlags)
}

private func posixConnect(_ descriptor: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(descriptor, address, length)
}
