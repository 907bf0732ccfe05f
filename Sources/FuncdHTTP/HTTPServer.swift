import FuncdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The HTTP front as a service: binds, serves until graceful shutdown, then drains: stops
/// accepting, lets in-flight calls finish (up to `SHUTDOWN_TIMEOUT`), closes connections.
///
/// The request path is NIO channel handlers, not async sequences: a request costs a few
/// microseconds here, and an async hop per request would cost more than the call itself.
public final class HTTPServer: Service, Sendable {
    private let state: ServerState
    private let group: any EventLoopGroup
    private let onListening: @Sendable (String, Int) -> Void

    public init(
        configuration: Configuration,
        invoker: Invoker,
        group: any EventLoopGroup,
        logger: Logger,
        onListening: @escaping @Sendable (String, Int) -> Void
    ) {
        self.state = ServerState(configuration: configuration, invoker: invoker, logger: logger)
        self.group = group
        self.onListening = onListening
    }

    /// Makes /healthz answer 503 (the process is about to stop).
    public func markUnhealthy() { state.markUnhealthy() }

    public func run() async throws {
        let state = self.state
        var lanes: [ObjectIdentifier: EventLoopLane] = [:]
        for loop in group.makeIterator() {
            lanes[ObjectIdentifier(loop)] = EventLoopLane(
                eventLoop: loop, invoker: state.invoker,
                accessLog: AccessLog(format: state.configuration.accessLog, eventLoop: loop))
        }
        let laneTable = lanes
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                let lane = laneTable[ObjectIdentifier(channel.eventLoop)]!
                // NIO's outbound header validator is left out: FunctionHTTPHandler.isAllowed
                // already drops handler headers that could split a response, and the validator
                // would cost a pipeline step on each of a response's three writes.
                return channel.pipeline.configureHTTPServerPipeline(
                    withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: false
                ).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(FunctionHTTPHandler(lane: lane, server: state))
                }
            }
        let channel = try await bootstrap.bind(host: state.configuration.host, port: state.configuration.port).get()
        let port = channel.localAddress?.port ?? state.configuration.port
        onListening(state.configuration.host, port)

        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
        await drain()
    }

    /// Finishes what is in flight, then closes every connection.
    private func drain() async {
        state.startDraining()
        let deadline = ContinuousClock.now + .milliseconds(Int(state.configuration.shutdownTimeoutSeconds * 1000))
        closeIdleConnections()
        while state.invoker.inFlightCount > 0 && ContinuousClock.now < deadline {
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
