/// How the exec runtime (`FUNC_RUNTIME=exec`) runs its program per call. The README's exec
/// section repeats this table.
///
/// | variable | flag | meaning | default |
/// |---|---|---|---|
/// | `FUNC_EXEC_MODE` | `--exec-mode` | `serializing`: the answer is the whole of stdout, sent with a Content-Length once the program exits; `streaming`: stdout goes out as it is written, chunked | serializing |
/// | `FUNC_EXEC_CGI` | `--exec-cgi` | stdout begins with a CGI head (`Status:`, `Content-Type:`, other fields, a blank line) | off |
/// | `FUNC_EXEC_CONTENT_TYPE` | `--exec-content-type` | the answer's Content-Type when the program sets none | the request's, else `application/octet-stream` |
/// | `FUNC_EXEC_OUTPUT_LIMIT` | `--exec-output-limit` | bytes of stdout a serializing call may buffer (and of a CGI head); beyond, the call is stopped and answered 500 | 104857600 |
public struct ExecSettings: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case serializing
        case streaming
    }

    public var mode: Mode
    public var cgi: Bool
    public var contentType: String?
    public var outputLimitBytes: Int

    public static let defaultOutputLimitBytes = 100 * 1024 * 1024

    public init() {
        mode = .serializing
        cgi = false
        contentType = nil
        outputLimitBytes = Self.defaultOutputLimitBytes
    }

    init(value: (String) -> String?) throws {
        self.init()
        if let text = value("FUNC_EXEC_MODE") {
            guard let mode = Mode(rawValue: text.lowercased()) else {
                throw FuncdError(.configuration, "FUNC_EXEC_MODE=\(text) is not one of serializing, streaming")
            }
            self.mode = mode
        }
        if let text = value("FUNC_EXEC_CGI") {
            guard let cgi = Configuration.boolean(text) else {
                throw FuncdError(.configuration, "FUNC_EXEC_CGI=\(text) is not true or false")
            }
            self.cgi = cgi
        }
        contentType = value("FUNC_EXEC_CONTENT_TYPE")
        if let text = value("FUNC_EXEC_OUTPUT_LIMIT") {
            guard let bytes = Int(text), bytes >= 0 else {
                throw FuncdError(.configuration, "FUNC_EXEC_OUTPUT_LIMIT=\(text) is not a whole number of bytes")
            }
            outputLimitBytes = bytes
        }
    }
}
