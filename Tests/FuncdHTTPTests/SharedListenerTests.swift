import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import FuncdHTTP

@Suite("SharedListener: stopping leaves the socket to its owner")
struct SharedListenerTests {
    final class Count: Sendable {
        let value = Atomic<Int>(0)
    }

    @Test("stopAndWait returns once the accept thread has left: a connection after it stays in the backlog")
    func stopAndWait() async throws {
        let (listening, port) = try #require(Self.listeningSocket())
        defer { close(listening) }
        let group = MultiThreadedEventLoopGroup.singleton
        let adopted = Count()
        let listener = SharedListener(
            descriptor: listening, group: group, writeBufferWaterMark: .init(low: 32 * 1024, high: 64 * 1024),
            logger: Logger(label: "test")
        ) { channel in
            adopted.value.add(1, ordering: .relaxed)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        listener.start()

        let first = try #require(Self.connect(port))
        defer { close(first) }
        let until = ContinuousClock.now + .seconds(5)
        while adopted.value.load(ordering: .relaxed) == 0 && ContinuousClock.now < until {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(adopted.value.load(ordering: .relaxed) == 1)

        let began = ContinuousClock.now
        #expect(await listener.stopAndWait())
        #expect(ContinuousClock.now - began < .seconds(1))

        let second = try #require(Self.connect(port))
        defer { close(second) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(adopted.value.load(ordering: .relaxed) == 1)
        // Still there for whoever owns the socket now.
        var poller = pollfd(fd: listening, events: Int16(POLLIN), revents: 0)
        #expect(poll(&poller, 1, 1000) == 1)
        let taken = accept(listening, nil, nil)
        #expect(taken >= 0)
        if taken >= 0 { close(taken) }
    }

    /// A non-blocking listening socket on 127.0.0.1 (as the supervisor's is) and its port.
    static func listeningSocket() -> (Int32, UInt16)? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && listen(descriptor, 16) == 0
                    && getsockname(descriptor, address, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            return nil
        }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        return (descriptor, UInt16(bigEndian: address.sin_port))
    }

    static func connect(_ port: UInt16) -> Int32? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                Glibc.connect(descriptor, address, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}
