import FuncdCore
import NIOCore
import NIOHTTP1

/// The way back from an invocation to the connection that asked for it.
///
/// `@unchecked Sendable`: created and used only on the connection's event loop; it crosses to
/// the host's threads as an opaque reference and comes back through the loop's lane.
final class PendingResponse: @unchecked Sendable {
    let handler: FunctionHTTPHandler
    let context: ChannelHandlerContext
    let head: HTTPRequestHead

    init(handler: FunctionHTTPHandler, context: ChannelHandlerContext, head: HTTPRequestHead) {
        self.handler = handler
        self.context = context
        self.head = head
    }

    func send(_ invocation: Invocation) {
        let result =
            invocation.result
            ?? InvocationResult(status: 500, body: Array("Internal Server Error\n".utf8), error: "no result")
        if let stream = result.stream {
            handler.startStream(context: context, head: head, invocation: invocation, result: result, stream: stream)
            stream.attach { [self] in context.eventLoop.execute { self.pump(stream) } }
        } else {
            handler.answer(context: context, head: head, invocation: invocation, result: result)
        }
    }

    /// Sends what the handler has streamed since the last time (on the event loop).
    func pump(_ stream: ResponseStream) {
        handler.continueStream(context: context, events: stream.take(), stream: stream)
    }
}
