import NIOCore
import NIOEmbedded

extension HTTPServer {
    /// Takes one `/healthz` request through a connection's handlers, on the calling thread,
    /// before any event loop serves.
    ///
    /// Swift's runtime builds the metadata of a generic type, checking its conformances, the
    /// first time the type is used. The first connections of a worker arrive on every event
    /// loop at once, and two loops building such types for the first time at the same moment
    /// crashed it here: SIGSEGV in `swift_conformsToProtocol`, under
    /// `ByteToMessageHandler<HTTPRequestDecoder>` on one loop while the other built
    /// `HTTPPart`'s metadata (Swift 6.3.1, twice in one day of parallel test runs; the
    /// runtime has had races of this kind before, swiftlang/swift#37656). Once built, the
    /// metadata is only read, so one request on one thread first leaves nothing to race.
    static func warmUp(_ state: ServerState) {
        let channel = EmbeddedChannel()
        let loop = channel.embeddedEventLoop
        let lane = EventLoopLane(
            eventLoop: loop, invoker: state.invoker, accessLog: AccessLog(format: .off, eventLoop: loop),
            limits: state.configuration.limits)
        do {
            try channel.pipeline.syncOperations.addFunctionHTTPHandlers(lane: lane, server: state)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: funcd\r\n\r\n"))
            loop.run()
            while try channel.readOutbound(as: ByteBuffer.self) != nil {}
            _ = try channel.finish()
        } catch {
            state.logger.debug("the request path's warm-up failed: \(error)")
        }
        // The pipeline comes down in a task of the loop once the channel has closed.
        loop.run()
    }
}
