#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one client can make a worker spend through the HTTP front: time, bytes and descriptors.
/// Each bound has a variable and a flag; the README's "Limits and timeouts" table repeats this.
///
/// | variable | flag | bound | default |
/// |---|---|---|---|
/// | `FUNC_HEADER_TIMEOUT` | `--header-timeout` | seconds from a connection's start (or a request's first byte) to its complete head | 10 |
/// | `FUNC_BODY_TIMEOUT` | `--body-timeout` | seconds without progress while a body arrives or an answer waits for the client | 30 |
/// | `FUNC_IDLE_TIMEOUT` | `--idle-timeout` | seconds a keep-alive connection may wait for its next request | 620 |
/// | `FUNC_LINGER_TIMEOUT` | `--linger-timeout` | seconds an early 413/503 keeps reading what the client still sends | 10 |
/// | `FUNC_MAX_CONNECTIONS` | `--max-connections` | open connections per worker | ¾ of the descriptor limit, at most 10000 |
/// | `FUNC_BODY_BUDGET` | `--body-budget` | request-body bytes buffered per worker at once | 128 MiB |
/// | `FUNC_MAX_HEADERS` | `--max-headers` | header fields per request (431 beyond) | 100 |
/// | `FUNC_MAX_HEADER_BYTES` | `--max-header-bytes` | bytes of a request's target and header fields (431 beyond) | 32768 |
/// | `FUNC_MAX_PIPELINED` | `--max-pipelined` | requests read ahead on one connection before reading pauses | 16 |
/// | `FUNC_SEND_BUFFER` | `--send-buffer` | answer bytes waiting for one client before reading pauses | 65536 |
public struct HTTPLimits: Sendable, Equatable {
    public var headerTimeoutSeconds: Double
    public var bodyTimeoutSeconds: Double
    /// Longer than the upstream keep-alive of the common ingresses and load balancers (nginx 60 s,
    /// AWS ALB 60 s, Google's 600 s), so a proxy never sends into a connection funcd is closing.
    public var idleTimeoutSeconds: Double
    public var lingerTimeoutSeconds: Double
    public var maxConnections: Int
    public var bodyBudgetBytes: Int
    public var maxHeaders: Int
    public var maxHeaderBytes: Int
    public var maxPipelined: Int
    public var sendBufferBytes: Int

    public static let defaultBodyBudgetBytes = 128 * 1024 * 1024

    /// The defaults, with the connection cap taken from this process's descriptor limit.
    public init() {
        headerTimeoutSeconds = 10
        bodyTimeoutSeconds = 30
        idleTimeoutSeconds = 620
        lingerTimeoutSeconds = 10
        maxConnections = Self.defaultMaxConnections()
        bodyBudgetBytes = Self.defaultBodyBudgetBytes
        maxHeaders = 100
        maxHeaderBytes = 32768
        maxPipelined = 16
        sendBufferBytes = 65536
    }

    /// Reads the variables through `value` (flags already merged in by the caller).
    init(value: (String) -> String?) throws {
        self.init()
        func seconds(_ name: String, _ current: Double) throws -> Double {
            guard let text = value(name) else { return current }
            guard let number = Double(text), number.isFinite, number > 0 else {
                throw FuncdError(.configuration, "\(name)=\(text) is not a positive number of seconds")
            }
            return number
        }
        func count(_ name: String, _ current: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let text = value(name) else { return current }
            guard let number = Int(text), range.contains(number) else {
                throw FuncdError(
                    .configuration, "\(name)=\(text) is not a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }
        headerTimeoutSeconds = try seconds("FUNC_HEADER_TIMEOUT", headerTimeoutSeconds)
        bodyTimeoutSeconds = try seconds("FUNC_BODY_TIMEOUT", bodyTimeoutSeconds)
        idleTimeoutSeconds = try seconds("FUNC_IDLE_TIMEOUT", idleTimeoutSeconds)
        lingerTimeoutSeconds = try seconds("FUNC_LINGER_TIMEOUT", lingerTimeoutSeconds)
        maxConnections = try count("FUNC_MAX_CONNECTIONS", maxConnections, 1...1_000_000)
        bodyBudgetBytes = try count("FUNC_BODY_BUDGET", bodyBudgetBytes, 0...Int(Int32.max))
        maxHeaders = try count("FUNC_MAX_HEADERS", maxHeaders, 1...10_000)
        maxHeaderBytes = try count("FUNC_MAX_HEADER_BYTES", maxHeaderBytes, 256...1_048_576)
        maxPipelined = try count("FUNC_MAX_PIPELINED", maxPipelined, 1...1024)
        sendBufferBytes = try count("FUNC_SEND_BUFFER", sendBufferBytes, 1024...64 * 1024 * 1024)
    }

    /// Three quarters of the soft descriptor limit, leaving the rest to the interpreter, the
    /// handler's own files and sockets, and Kafka; at most 10000.
    public static func defaultMaxConnections() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
            return 10000
        }
        return max(8, min(10000, Int(clamping: limit.rlim_cur) * 3 / 4))
    }
}
