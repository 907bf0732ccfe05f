/// What a handler produced, already encoded by the language's glue: a status, headers and the
/// body bytes. Hosts never build a JSON tree in Swift; the interpreter encodes.
public struct InvocationResult: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Set when the handler failed: the traceback (or the reason) for the log. The status then
    /// says how the caller is answered (500 for an exception, 400 for an unreadable body).
    public var error: String?

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], error: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error
    }

    /// True when the call counts as a failure in `function_failures_total`.
    public var isFailure: Bool { error != nil }
}
