import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A raw, non-blocking loopback TCP connection for playing a hostile or broken client.
///
/// ``HTTPClient`` behaves like a polite client: it sends a request, reads its answer, and treats a
/// reset like a close. The hardening tests need the opposite: a tiny receive buffer that is never
/// read, a send that must not block the attack loop, a half-close (`shutdown(SHUT_WR)`), an abortive
/// close (RST), and telling a clean close from a reset, because "the client read the answer
/// instead of a reset" is exactly what some of them assert. Every wait is bounded by a deadline,
/// connecting included, so a server that stops accepting fails a test instead of hanging it.
///
/// Bytes received are kept in ``received``; ``WireResponse`` parses them.
/// Not thread-safe: one socket per thread.
final class AttackSocket {
    /// Why a socket call failed.
    enum Failure: Error, CustomStringConvertible {
        case system(String)
        case timedOut(String)

        var description: String {
            switch self {
            case .system(let text): return "socket error: \(text)"
            case .timedOut(let text): return "timed out: \(text)"
            }
        }
    }

    /// How the server's side of the connection looks from here.
    enum End: Equatable, CustomStringConvertible {
        /// Nothing seen yet: the server may still send.
        case open
        /// End-of-file: the server closed (or half-closed) cleanly.
        case closed
        /// The connection was reset (`ECONNRESET` or `EPIPE`): what a client sees as an error.
        case reset

        var description: String {
            switch self {
            case .open: return "open"
            case .closed: return "closed by the server"
            case .reset: return "reset"
            }
        }
    }

    /// How ``send(_:timeout:readingMeanwhile:)`` ended.
    enum SendOutcome: Equatable, CustomStringConvertible {
        case sent
        /// The server closed or reset the connection after `sent` bytes had been taken.
        case refused(sent: Int, errno: Int32)
        /// The socket stayed full until the deadline.
        case timedOut(sent: Int)

        var description: String {
            switch self {
            case .sent: return "sent"
            case .refused(let sent, let error):
                return "send failed after \(sent) bytes: \(String(cString: strerror(error)))"
            case .timedOut(let sent): return "send timed out after \(sent) bytes"
            }
        }
    }

    let port: Int
    private var descriptor: Int32
    /// Everything received so far, in order.
    private(set) var received: [UInt8] = []
    /// What has been seen of the server's side.
    private(set) var end: End = .open

    /// Connects to `127.0.0.1:port` within `timeout` seconds.
    ///
    /// - Parameter receiveBuffer: `SO_RCVBUF` in bytes, set before connecting so that the window
    ///   the handshake announces is already small (the kernel doubles the value for bookkeeping).
    init(port: Int, receiveBuffer: Int? = nil, timeout: Double = 5) throws {
        self.port = port
        let descriptor = socket(AF_INET, attackSocketType, 0)
        guard descriptor >= 0 else { throw Failure.system("socket: \(String(cString: strerror(errno)))") }
        self.descriptor = descriptor
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        address.sin_addr = in_addr(s_addr: in_addr_t(0x7F00_0001).bigEndian)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                attackConnect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            guard errno == EINPROGRESS || errno == EINTR else {
                let error = errno
                close()
                throw Failure.system("connect to 127.0.0.1:\(port): \(String(cString: strerror(error)))")
            }
            guard try wait(for: Int16(POLLOUT), deadline: Deadline(in: timeout)) else {
                close()
                throw Failure.timedOut("connecting to 127.0.0.1:\(port) for \(timeout) s")
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else {
                close()
                throw Failure.system("connect to 127.0.0.1:\(port): \(String(cString: strerror(error)))")
            }
        }
    }

    deinit {
        close()
    }

    /// Closes the socket normally (FIN); safe to call more than once.
    func close() {
        if descriptor >= 0 {
            _ = attackClose(descriptor)
            descriptor = -1
        }
    }

    /// Closes the socket with a reset (`SO_LINGER` 0): a client that vanishes, unambiguously.
    func abort() {
        guard descriptor >= 0 else { return }
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    /// `shutdown(SHUT_WR)`: the client has nothing more to say but still reads.
    func shutdownWrite() throws {
        guard shutdown(descriptor, Int32(SHUT_WR)) == 0 else {
            throw Failure.system("shutdown: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: - Sending

    /// Sends as much of `bytes` as the socket takes right now, without waiting. Returns the count
    /// taken (0 when the socket is full), or nil when the server has closed or reset.
    func sendNow(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard descriptor >= 0, !bytes.isEmpty else { return 0 }
        while true {
            let sent = bytes.withUnsafeBytes { attackSend(descriptor, $0.baseAddress!, $0.count) }
            if sent >= 0 { return sent }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default:
                lastSendError = errno
                return nil
            }
        }
    }

    /// The errno of the last send that failed.
    private(set) var lastSendError: Int32 = 0

    /// Sends all of `bytes` within `timeout` seconds. With `readingMeanwhile`, whatever the
    /// server answers while the bytes go out is read into ``received`` (as curl does); without it,
    /// nothing is read until everything is sent (as Python's http.client and requests do).
    func send(_ bytes: ArraySlice<UInt8>, timeout: Double, readingMeanwhile: Bool = false) -> SendOutcome {
        let deadline = Deadline(in: timeout)
        var offset = 0
        while offset < bytes.count {
            guard let sent = sendNow(bytes.dropFirst(offset)) else {
                return .refused(sent: offset, errno: lastSendError)
            }
            offset += sent
            if offset == bytes.count { break }
            if deadline.hasPassed { return .timedOut(sent: offset) }
            if sent == 0 {
                let events = Int16(POLLOUT) | (readingMeanwhile && end == .open ? Int16(POLLIN) : 0)
                _ = try? wait(for: events, deadline: Deadline(in: min(0.05, deadline.remaining)))
            }
            if readingMeanwhile { readAvailable() }
        }
        return .sent
    }

    /// ``send(_:timeout:readingMeanwhile:)`` of a whole array.
    func send(_ bytes: [UInt8], timeout: Double, readingMeanwhile: Bool = false) -> SendOutcome {
        send(bytes[...], timeout: timeout, readingMeanwhile: readingMeanwhile)
    }

    /// ``send(_:timeout:readingMeanwhile:)`` of UTF-8 text.
    func send(_ text: String, timeout: Double = 5, readingMeanwhile: Bool = false) -> SendOutcome {
        send(Array(text.utf8), timeout: timeout, readingMeanwhile: readingMeanwhile)
    }

    /// Waits up to `timeout` seconds for room to send; false if there is still none.
    func waitUntilWritable(timeout: Double) -> Bool {
        (try? wait(for: Int16(POLLOUT), deadline: Deadline(in: timeout))) ?? true
    }

    // MARK: - Receiving

    /// Reads whatever has arrived, without waiting.
    func readAvailable() {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while end == .open && descriptor >= 0 {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                received += chunk[0..<count]
            } else if count == 0 {
                end = .closed
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                return
            } else {
                end = .reset
            }
        }
    }

    /// Reads until `enough(received)` holds, the server ends the connection, or `timeout` seconds
    /// pass. Returns whether `enough` held.
    @discardableResult
    func read(timeout: Double, until enough: ([UInt8]) -> Bool) -> Bool {
        let deadline = Deadline(in: timeout)
        while true {
            readAvailable()
            if enough(received) { return true }
            if end != .open || deadline.hasPassed { return false }
            _ = try? wait(for: Int16(POLLIN), deadline: Deadline(in: min(0.1, deadline.remaining)))
        }
    }

    /// Reads until the server closes or resets the connection, or `timeout` seconds pass.
    /// Returns how the server's side looks then (``End/open`` after a timeout).
    @discardableResult
    func readToEnd(timeout: Double) -> End {
        read(timeout: timeout) { _ in false }
        return end
    }

    /// Reads until ``received`` holds `count` complete responses (see ``WireResponse``), the
    /// server ends the connection, or `timeout` seconds pass. Returns the responses parsed.
    func readResponses(_ count: Int, methods: [String] = [], timeout: Double) -> WireResponse.Parsed {
        read(timeout: timeout) { WireResponse.parse($0, methods: methods).finalResponses.count >= count }
        return WireResponse.parse(received, methods: methods)
    }

    /// The bytes received so far as text, shortened, for messages.
    var receivedDescription: String {
        let text = String(decoding: received.prefix(1_500), as: UTF8.self)
        return "\(received.count) bytes, server side \(end): \(text.debugDescription)"
    }

    // MARK: - Polling

    /// Waits in `poll(2)` for `events`; false at the deadline.
    private func wait(for events: Int16, deadline: Deadline) throws -> Bool {
        while true {
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&entry, 1, Int32((deadline.remaining * 1_000).rounded(.up)))
            if ready > 0 { return true }
            if ready == 0 { return false }
            if errno != EINTR { throw Failure.system("poll: \(String(cString: strerror(errno)))") }
        }
    }
}

// File-scope wrappers: inside `AttackSocket`, `close`, `send` and `connect` name its own methods.

#if canImport(Glibc) || canImport(Musl)
private let attackSocketType = Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue)
private let attackSendFlags = Int32(MSG_NOSIGNAL | MSG_DONTWAIT)
#else
private let attackSocketType = SOCK_STREAM
private let attackSendFlags = Int32(MSG_DONTWAIT)
#endif

private func attackClose(_ descriptor: Int32) -> Int32 {
    close(descriptor)
}

private func attackSend(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    send(descriptor, bytes, count, attackSendFlags)
}

private func attackConnect(_ descriptor: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(descriptor, address, length)
}
