import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

/// The pod's one listening socket: bound by the supervisor and inherited by every worker, so
/// that all workers accept from one queue and a worker that stops accepting (draining, dying)
/// leaves no connection behind in a queue of its own (as one socket per worker with
/// SO_REUSEPORT would).
struct ListeningSocket {
    let descriptor: Int32
    let port: Int

    static func bind(host: String, port: Int) throws -> ListeningSocket {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>? = nil
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let info = result else {
            throw FuncdError(.configuration, "cannot resolve the address \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        let descriptor = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Self.error("socket", host, port) }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard Glibc.bind(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let error = Self.error("bind", host, port)
            close(descriptor)
            throw error
        }
        // Non-blocking: every worker polls and accepts from it, and the losers of each race must
        // get EAGAIN rather than block.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        guard listen(descriptor, 1024) == 0 else {
            let error = Self.error("listen", host, port)
            close(descriptor)
            throw error
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        var actualPort = port
        if bound == 0 {
            let family = address.ss_family
            actualPort = withUnsafePointer(to: &address) { pointer -> Int in
                if family == sa_family_t(AF_INET6) {
                    return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
                }
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        }
        return ListeningSocket(descriptor: descriptor, port: actualPort)
    }

    private static func error(_ call: String, _ host: String, _ port: Int) -> FuncdError {
        FuncdError(.configuration, "cannot listen on \(host):\(port): \(call): \(String(cString: strerror(errno)))")
    }
}
