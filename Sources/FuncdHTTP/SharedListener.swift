import FuncdCore
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Accepts connections from a listening socket that several worker processes share (the
/// supervisor's), and hands each one to an event loop.
///
/// NIO's own server channel is not used for a shared socket: every process is woken for each
/// connection and all but one find nothing to accept, which NIO treats as impossible (it asserts
/// in debug builds). Here a thread polls the socket, accepts without blocking, takes "nothing
/// there" in its stride, and stops within a tick when draining. A connection costs one accept
/// and one hand-off; requests on it never come back here.
final class SharedListener: Sendable {
    private let descriptor: Int32
    private let group: any EventLoopGroup
    private let initializer: @Sendable (any Channel) -> EventLoopFuture<Void>
    private let stopped = Atomic<Bool>(false)
    private let finished = Mutex<Bool>(false)

    init(
        descriptor: Int32, group: any EventLoopGroup,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) {
        self.descriptor = descriptor
        self.group = group
        self.initializer = initializer
    }

    func start() {
        NativeThread.start(stackSize: 512 * 1024) { [self] in
            acceptLoop()
        }
    }

    /// Stops accepting (within 100 ms); connections already handed over are not touched.
    func stop() { stopped.store(true, ordering: .relaxed) }

    private func acceptLoop() {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while !stopped.load(ordering: .relaxed) {
            poller.revents = 0
            let ready = poll(&poller, 1, 100)
            guard ready > 0 else { continue }
            while !stopped.load(ordering: .relaxed) {
                // The supervisor made the shared socket non-blocking (accept4 is out of Swift's
                // reach); the new connection gets its flags right after.
                let connection = accept(descriptor, nil, nil)
                if connection < 0 {
                    // EAGAIN: another worker took it. EINTR, ECONNABORTED, EMFILE: try again later.
                    break
                }
                _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) | O_NONBLOCK)
                adopt(connection)
            }
        }
    }

    private func adopt(_ connection: Int32) {
        let loop = group.next()
        ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer(initializer)
            .withConnectedSocket(connection)
            .whenFailure { _ in close(connection) }
    }
}
