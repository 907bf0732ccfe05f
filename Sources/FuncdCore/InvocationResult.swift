/// What a handler produced, already encoded by the language's glue: a status, headers and the
/// body bytes. Hosts never build a JSON tree in Swift; the interpreter encodes.
public struct InvocationResult: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Set when the handler failed: the traceback (or the reason) for the log. The status then
    /// says how the caller is answered (500 for an exception, 400 for an unreadable body).
    public var error: String?
    /// Set when the handler streams its answer: `body` is then only its first bytes, and the
    /// rest follows through the stream (see ``Invoker/started(_:)``).
    public var stream: ResponseStream?

    public init(
        status: Int, headers: [(String, String)] = [], body: [UInt8] = [], error: String? = nil,
        stream: ResponseStream? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error
        self.stream = stream
    }

    /// True when the call counts as a failure in `function_failures_total`.
    public var isFailure: Bool { error != nil }
}
