import NIOCore
import NIOHTTP1

extension ChannelPipeline.SynchronousOperations {
    /// The handlers of one HTTP connection, in order:
    /// - ``ConnectionGuard`` sees the raw bytes first (for the head and body timeouts) and drops
    ///   them while the connection lingers after an early answer;
    /// - NIO's request decoder (llhttp);
    /// - `inspector`, if given (the fuzz check records the heads the handler is given);
    /// - ``FunctionHTTPHandler``, which writes its answers already encoded.
    ///
    /// None of NIO's outbound HTTP handlers is here: the response encoder, its error handler
    /// (``FunctionHTTPHandler`` answers a request it cannot read with the same 400), the header
    /// validator (``FunctionHTTPHandler/answerProblem(status:headers:)`` refuses what could split
    /// an answer) and the pipelining helper (the handler puts pipelined requests in order
    /// itself; see there why).
    func addFunctionHTTPHandlers(
        lane: EventLoopLane, server: ServerState,
        inspector: (any ChannelInboundHandler & RemovableChannelHandler)? = nil
    ) throws {
        let connectionGuard = ConnectionGuard()
        try addHandler(connectionGuard)
        try addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        if let inspector { try addHandler(inspector) }
        try addHandler(FunctionHTTPHandler(lane: lane, server: server, connectionGuard: connectionGuard))
    }
}
