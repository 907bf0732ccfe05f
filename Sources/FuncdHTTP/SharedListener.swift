import FuncdCore
import FuncdSystem
import Logging
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
/// there" in its stride, and stops when draining: `stop` wakes it through a pipe of its own, so
/// an idle worker's accept thread sleeps until a connection or the stop comes. A connection
/// costs one accept and one hand-off; requests on it never come back here.
final class SharedListener: Sendable {
    private let descriptor: Int32
    private let group: any EventLoopGroup
    private let initializer: @Sendable (any Channel) -> EventLoopFuture<Void>
    private let writeBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark
    private let logger: Logger
    private let stopped = Atomic<Bool>(false)
    /// Set by the accept thread once it has left its loop and will not touch the descriptor again.
    private let left = Atomic<Bool>(false)
    /// A pipe whose read end the accept thread polls beside the socket: `stop` writes a byte.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    /// How long accepting pauses when the process or the system is out of descriptors (or
    /// memory): the connection waits in the kernel's backlog instead of the thread spinning on
    /// a socket that stays readable.
    static let exhaustedPause: Int32 = 100

    init(
        descriptor: Int32, group: any EventLoopGroup, writeBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark,
        logger: Logger, initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) {
        self.descriptor = descriptor
        self.group = group
        self.writeBufferWaterMark = writeBufferWaterMark
        self.logger = logger
        self.initializer = initializer
        // Without a pipe (no descriptors left) the thread looks at `stopped` every 100 ms.
        let wake = NonBlockingPipe.open()
        wakeRead = wake?.read ?? -1
        wakeWrite = wake?.write ?? -1
    }

    deinit {
        // The accept thread holds the listener until it leaves its loop: nobody polls these now.
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }

    func start() {
        NativeThread.start(stackSize: 512 * 1024) { [self] in
            acceptLoop()
            // Releasing, paired with the acquiring load in `stopAndWait`: the thread's last poll
            // and accept on the descriptor happen before whoever saw this closes it.
            left.store(true, ordering: .releasing)
        }
    }

    /// Stops accepting at once; connections already handed over are not touched.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        var byte: UInt8 = 1
        if wakeWrite >= 0 { _ = write(wakeWrite, &byte, 1) }
    }

    /// Stops accepting and waits, at most `limit`, until the accept thread has left its loop;
    /// true once it has. Only then may the descriptor be closed: closed under a thread still in
    /// `poll` or `accept`, its number could be reused by the next descriptor this process opens,
    /// and that one polled and accepted from. Waits by sleeping, not blocking a thread of the
    /// caller's executor; gives up (false) when the waiting task is cancelled.
    func stopAndWait(limit: Duration = .seconds(1)) async -> Bool {
        stop()
        let deadline = ContinuousClock.now + limit
        while !left.load(ordering: .acquiring) {
            guard ContinuousClock.now < deadline else { return false }
            do {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                return left.load(ordering: .acquiring)
            }
        }
        return true
    }

    private func acceptLoop() {
        // poll passes over a negative descriptor: without a wake pipe only the socket is polled.
        var pollers = [
            pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        let timeout: Int32 = wakeRead >= 0 ? -1 : 100
        var lastComplaint: UInt64 = 0
        while !stopped.load(ordering: .relaxed) {
            pollers[0].revents = 0
            pollers[1].revents = 0
            let ready = poll(&pollers, 2, timeout)
            guard ready > 0, pollers[0].revents != 0 else { continue }
            while !stopped.load(ordering: .relaxed) {
                // The supervisor made the shared socket non-blocking (accept4 is out of Swift's
                // reach); the new connection gets its flags right after.
                let connection = accept(descriptor, nil, nil)
                if connection < 0 {
                    let error = errno
                    if error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM {
                        let now = MonotonicClock.nanoseconds()
                        if now &- lastComplaint > 10_000_000_000 {
                            lastComplaint = now
                            logger.error(
                                "cannot accept connections: out of descriptors or memory; pausing accepts",
                                metadata: [LogKeys.error: "\(String(cString: strerror(error)))"])
                        }
                        poll(nil, 0, Self.exhaustedPause)
                    }
                    // EAGAIN: another worker took it. EINTR, ECONNABORTED: the next one.
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
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.writeBufferWaterMark, value: writeBufferWaterMark)
            .channelOption(.maxMessagesPerRead, value: 4)
            .channelInitializer(initializer)
            .withConnectedSocket(connection)
            .whenFailure { _ in close(connection) }
    }
}
