import FuncdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The HTTP front as a service: binds, serves until graceful shutdown, then drains: stops
/// accepting, lets in-flight calls finish (up to `SHUTDOWN_TIMEOUT`), closes connections.
///
/// The request path is NIO channel handlers, not async sequences: a request costs a few
/// microseconds here, and an async hop per request would cost more than the call itself.
public final class HTTPServer: Service, Sendable {
    private let state: ServerState
    private let group: any EventLoopGroup
    private let listenDescriptor: Int32?
    private let onListening: @Sendable (String, Int) -> Void

    /// - Parameters:
    ///   - listenDescriptor: a listening socket inherited from the supervisor, shared by every
    ///     worker; nil to bind `configuration.host:port` here.
    ///   - extraMetrics: text appended to /metrics.
    public init(
        configuration: Configuration,
        invoker: Invoker,
        group: any EventLoopGroup,
        logger: Logger,
        listenDescriptor: Int32? = nil,
        extraMetrics: (@Sendable () -> [UInt8])? = nil,
        onListening: @escaping @Sendable (String, Int) -> Void
    ) {
        self.state = ServerState(
            configuration: configuration, invoker: invoker, logger: logger, extraMetrics: extraMetrics)
        self.group = group
        self.listenDescriptor = listenDescriptor
        self.onListening = onListening
    }

    /// Makes /healthz answer 503 (the process is about to stop).
    public func markUnhealthy() { state.markUnhealthy() }

    public func run() async throws {
        let state = self.state
        Self.warmUp(state)
        var lanes: [ObjectIdentifier: EventLoopLane] = [:]
        for loop in group.makeIterator() {
            lanes[ObjectIdentifier(loop)] = EventLoopLane(
                eventLoop: loop, invoker: state.invoker,
                accessLog: AccessLog(format: state.configuration.accessLog, eventLoop: loop),
                limits: state.configuration.limits)
        }
        let laneTable = lanes
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            let lane = laneTable[ObjectIdentifier(channel.eventLoop)]!
            do {
                try channel.pipeline.syncOperations.addFunctionHTTPHandlers(lane: lane, server: state)
                return channel.eventLoop.makeSucceededVoidFuture()
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        let sendBuffer = state.configuration.limits.sendBufferBytes
        let waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: sendBuffer / 2, high: sendBuffer)

        if let listenDescriptor {
            // A worker under the supervisor: accept from the shared socket until draining.
            let listener = SharedListener(
                descriptor: listenDescriptor, group: group, writeBufferWaterMark: waterMark, logger: state.logger,
                initializer: initializer)
            listener.start()
            onListening(state.configuration.host, state.configuration.port)
            await withGracefulShutdownHandler {
                try? await gracefulShutdown()
            } onGracefulShutdown: {
                listener.stop()
            }
            // `stop` wakes the accept thread; the descriptor is closed only once it has left,
            // else its number could be reused under the thread's poll.
            if await listener.stopAndWait() {
                close(listenDescriptor)
            } else {
                // Left open: it goes with the process, which is about to end.
                state.logger.warning("the accept thread did not stop in time; the shared socket stays open")
            }
        } else {
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 4)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.writeBufferWaterMark, value: waterMark)
                .serverChannelOption(.maxMessagesPerRead, value: 4)
                .serverChannelInitializer { channel in
                    // Out of descriptors, accepting pauses instead of spinning on a readable socket.
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            AcceptBackoffHandler(backoffProvider: { _ in .milliseconds(100) }))
                    }
                }
                .childChannelInitializer(initializer)
            let channel = try await bootstrap.bind(host: state.configuration.host, port: state.configuration.port).get()
            onListening(state.configuration.host, channel.localAddress?.port ?? state.configuration.port)
            await withGracefulShutdownHandler {
                try? await channel.closeFuture.get()
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        }
        await drain()
    }

    /// Finishes what is in flight, then closes every connection.
    ///
    /// A keep-alive connection is not closed the moment draining starts: a client may be
    /// sending its next request on it right then, and would see the connection drop under it.
    /// Requests that still arrive are answered with `Connection: close` (the client reconnects,
    /// to another worker when supervised); connections that stay idle for a short quiet period
    /// are closed then, and whatever is left at the deadline.
    private func drain() async {
        state.startDraining()
        let timeout = state.configuration.shutdownTimeoutSeconds
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        let quietUntil = ContinuousClock.now + .milliseconds(Int(min(1.0, timeout / 2) * 1000))
        while ContinuousClock.now < deadline {
            let idle = state.invoker.inFlightCount == 0
            if idle && state.connections.count == 0 { break }
            if idle && ContinuousClock.now >= quietUntil {
                closeIdleConnections()
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // Give the last answers a moment to reach their sockets before closing.
        try? await Task.sleep(for: .milliseconds(20))
        for channel in state.connections.all {
            try? await channel.close()
        }
    }

    private func closeIdleConnections() {
        for channel in state.connections.all {
            channel.eventLoop.execute {
                if let handler = try? channel.pipeline.syncOperations.handler(type: FunctionHTTPHandler.self),
                    let context = try? channel.pipeline.syncOperations.context(handlerType: FunctionHTTPHandler.self)
                {
                    handler.closeIfIdle(context: context)
                }
            }
        }
    }
}
