import NIOCore

/// The first handler of a connection, before the HTTP decoder: it sees the raw bytes, so it can
/// tell the connection's handler that a request has begun or a body made progress (what the
/// head and body timeouts measure), it keeps the obs-text bytes of header fields from the
/// decoder's UTF-8 reading (``ObsTextWidener``), and it drops everything once the connection
/// lingers after an early answer (the decoder would otherwise take a refused body's bytes for
/// requests).
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Set by the handler it reports to, on the same event loop.
    weak var connection: FunctionHTTPHandler?
    /// Once set, input is read and dropped.
    var dropsInput = false
    private var widener = ObsTextWidener()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if dropsInput { return }
        if widener.isLost {
            // Its framing could not be followed (the decoder refuses nearly every such message
            // first): no further request is taken whose header bytes might be read wrong.
            context.close(promise: nil)
            return
        }
        connection?.bytesArrived()
        if let widened = widener.widen(unwrapInboundIn(data)) {
            context.fireChannelRead(wrapInboundOut(widened))
        } else {
            context.fireChannelRead(data)
        }
    }
}
