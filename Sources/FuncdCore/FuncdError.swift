/// The one error type of FuncdCore and of the language hosts: a code that says what kind of
/// failure it is, a message for the operator, and where it was raised.
///
/// Start-up errors are printed as one line (`funcd: error: <message>`) and end the process with
/// exit code 1, so the message must name the file and the cause on its own.
public struct FuncdError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in the terms an operator acts on.
    public enum Code: Sendable, Equatable {
        /// The environment or the flags are wrong (missing MOD_NAME, bad number, ...).
        case configuration
        /// The function's code could not be loaded (missing file, syntax error, no handler).
        case functionLoad
        /// The interpreter itself could not be started.
        case interpreter
        /// The handler raised; the message carries the traceback.
        case handler
    }

    public var code: Code
    public var message: String
    public var file: String
    public var line: Int

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String { message }
}
