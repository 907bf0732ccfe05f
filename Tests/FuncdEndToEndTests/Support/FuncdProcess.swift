import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One real `funcd` (or `funcd-python`) child process, with its output captured as it is written.
///
/// The end-to-end tests treat the binary as a black box, the way a user or Kubernetes does: they
/// start it, read what it prints, talk HTTP to it and send it signals. This type owns that child:
///
/// - stdout and stderr are drained continuously by one reading thread each into thread-safe
///   buffers, so the child never blocks on a full pipe and the tests can poll for a line (the
///   start-up line, a traceback, an access-log line) while the process is still running;
/// - the child gets a clean environment: the runner's own `FUNC_*`/`MOD_*`/... variables and
///   `PYTHONUNBUFFERED` are removed so that only what a test sets reaches the server (the last one
///   would hide a missing stdout flush in the server);
/// - ``stop()`` (also run by `deinit`) SIGKILLs the child and its process group, so a failing test
///   never leaks a server. Foundation spawns every child in its own process group, which also
///   catches anything the child started itself.
///
/// Tests should call ``stop()`` from a `defer` (or use the scoped helpers in ``Funcd``): Swift may
/// release an object right after its last use, so relying on `deinit` alone could kill the
/// server while the test is still talking to it.
final class FuncdProcess: @unchecked Sendable {
    /// What a finished process left behind.
    struct Outcome: Sendable, CustomStringConvertible {
        /// The exit status; `128 + signal` when the process was killed by a signal.
        var exitCode: Int32
        var stdout: String
        var stderr: String

        var description: String {
            "exit code \(exitCode)\n\(FuncdProcess.tails(stdout: stdout, stderr: stderr))"
        }
    }

    /// Why starting, or waiting for, the process failed. The description carries the process's
    /// output, so a thrown error alone explains a failing test.
    enum Failure: Error, CustomStringConvertible {
        case executableMissing(path: String)
        case exitedBeforeListening(exitCode: Int32, output: String)
        case notListening(seconds: Double, output: String)
        case stillRunning(seconds: Double, output: String)
        case notStarted

        var description: String {
            switch self {
            case .executableMissing(let path):
                return "no executable at \(path): build the package first (swift build) or set FUNCD_BIN_DIR"
            case .exitedBeforeListening(let code, let output):
                return "the process exited with code \(code) before printing its listening line\n\(output)"
            case .notListening(let seconds, let output):
                return "no 'listening on http://HOST:PORT' line on stderr after \(seconds) s\n\(output)"
            case .stillRunning(let seconds, let output):
                return "the process was still running after \(seconds) s\n\(output)"
            case .notStarted:
                return "the server's port is unknown: call waitForListening() first"
            }
        }
    }

    /// Environment variables of the runner that must not leak into the child: each is part of the
    /// configuration under test, so it must come from the test or not at all.
    static let strippedEnvironment: Set<String> = [
        "MOD_NAME", "MOD_ROOT_PATH", "KUBELESS_INSTALL_VOLUME", "REQ_MB_LIMIT", "SHUTDOWN_TIMEOUT",
        "PYTHONUNBUFFERED",
    ]

    let executableURL: URL
    let arguments: [String]

    private let process = Process()
    private let stdoutBuffer = OutputBuffer()
    private let stderrBuffer = OutputBuffer()
    private let exitState = ExitState()
    private let lock = NSLock()
    private var listening: (host: String, port: Int)?

    /// Starts `executable` (a file name in ``TestPaths/binDirectory``) with `arguments`.
    ///
    /// - Parameters:
    ///   - environment: added to the runner's environment (after removing the variables in
    ///     ``strippedEnvironment`` and every `FUNC_*`).
    ///   - standardInput: bytes written to the child's stdin, which is then closed; without it the
    ///     child's stdin is `/dev/null`.
    ///   - currentDirectory: where the child starts (a relative path on its command line is read
    ///     from there); without it, the runner's.
    convenience init(
        executable: String = "funcd",
        arguments: [String],
        environment: [String: String] = [:],
        standardInput: Data? = nil,
        currentDirectory: URL? = nil
    ) throws {
        try self.init(
            executableURL: TestPaths.executable(executable), arguments: arguments, environment: environment,
            standardInput: standardInput, currentDirectory: currentDirectory)
    }

    /// Starts the program at `executableURL` (any program, e.g. `promtool`) the same way.
    init(
        executableURL: URL,
        arguments: [String],
        environment: [String: String] = [:],
        standardInput: Data? = nil,
        currentDirectory: URL? = nil
    ) throws {
        _ = Self.ignoreSIGPIPE
        self.executableURL = executableURL
        self.arguments = arguments
        guard FileManager.default.isExecutableFile(atPath: executableURL.path) else {
            throw Failure.executableMissing(path: executableURL.path)
        }

        var childEnvironment = ProcessInfo.processInfo.environment.filter { name, _ in
            !name.hasPrefix("FUNC_") && !Self.strippedEnvironment.contains(name)
        }
        childEnvironment.merge(environment) { _, new in new }

        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        let stdinPipe = standardInput == nil ? nil : Pipe()
        process.executableURL = executableURL
        process.arguments = arguments
        process.environment = childEnvironment
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        if let stdinPipe {
            process.standardInput = stdinPipe
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        let exitState = self.exitState
        process.terminationHandler = { finished in
            let status = finished.terminationStatus
            exitState.record(finished.terminationReason == .uncaughtSignal ? 128 + status : status)
        }

        try process.run()

        Self.startReading(stdoutPipe.fileHandleForReading.fileDescriptor, into: stdoutBuffer, echo: "stdout")
        Self.startReading(stderrPipe.fileHandleForReading.fileDescriptor, into: stderrBuffer, echo: "stderr")

        if let stdinPipe, let standardInput {
            let writer = stdinPipe.fileHandleForWriting
            // SIGPIPE is ignored, so a child that exits without reading makes this throw, not crash.
            try? writer.write(contentsOf: standardInput)
            try? writer.close()
        }
    }

    deinit {
        stop()
    }

    // MARK: Output

    /// Everything the child has written to stdout so far.
    var stdoutText: String { stdoutBuffer.text }

    /// Everything the child has written to stderr so far.
    var stderrText: String { stderrBuffer.text }

    /// The last part of stderr and stdout, for assertion messages.
    var diagnostics: String {
        let state = exitState.code.map { "exited with code \($0)" } ?? "still running"
        return "\(executableURL.lastPathComponent) \(arguments.joined(separator: " ")) (\(state))\n"
            + Self.tails(stdout: stdoutText, stderr: stderrText)
    }

    /// Polls stdout until it contains `text`; returns whether it did within `timeout` seconds.
    @discardableResult
    func waitForStdout(containing text: String, timeout: Double = 10) -> Bool {
        Deadline.poll(timeout: timeout) { stdoutText.contains(text) }
    }

    /// Polls stderr until it contains `text`; returns whether it did within `timeout` seconds.
    @discardableResult
    func waitForStderr(containing text: String, timeout: Double = 10) -> Bool {
        Deadline.poll(timeout: timeout) { stderrText.contains(text) }
    }

    // MARK: Listening

    /// Polls stderr for the start-up line and returns the port it names.
    ///
    /// Throws ``Failure/exitedBeforeListening(exitCode:output:)`` as soon as the process exits
    /// without it, and ``Failure/notListening(seconds:output:)`` after `timeout` seconds. The
    /// default timeout is generous: several tests start servers at once on a two-core machine.
    @discardableResult
    func waitForListening(timeout: Double = 60) throws -> Int {
        let deadline = Deadline(in: timeout)
        while true {
            if let found = Self.parseListening(stderrText) {
                lock.lock()
                listening = found
                lock.unlock()
                return found.port
            }
            if let code = exitState.code {
                drainOutput(timeout: 5)
                if let found = Self.parseListening(stderrText) {
                    // It did listen, then died: report that as a failure of this wait too, since
                    // a server that is gone is of no use to the caller.
                    throw Failure.exitedBeforeListening(exitCode: code, output: "(listened on port \(found.port) first)\n" + diagnostics)
                }
                throw Failure.exitedBeforeListening(exitCode: code, output: diagnostics)
            }
            if deadline.hasPassed {
                throw Failure.notListening(seconds: timeout, output: diagnostics)
            }
            usleep(10_000)
        }
    }

    /// The port from the start-up line; throws if ``waitForListening(timeout:)`` has not seen it.
    func port() throws -> Int {
        lock.lock()
        defer { lock.unlock() }
        guard let listening else { throw Failure.notStarted }
        return listening.port
    }

    /// The host from the start-up line, once seen.
    var listeningHost: String? {
        lock.lock()
        defer { lock.unlock() }
        return listening?.host
    }

    /// The (host, port) of the first start-up line in `text`, if any. The pattern is the one the
    /// spec gives (`listening on http://[^\s:]+:(\d+)`), with the host captured as well.
    static func parseListening(_ text: String) -> (host: String, port: Int)? {
        let pattern = #/listening on http://([^\s:]+):(\d+)/#
        guard let match = text.firstMatch(of: pattern), let port = Int(match.output.2) else {
            return nil
        }
        return (String(match.output.1), port)
    }

    // MARK: Lifetime

    /// The child's process id.
    var pid: Int32 { process.processIdentifier }

    /// The exit code once the process has exited (`128 + signal` after a signal), else nil.
    var exitCode: Int32? { exitState.code }

    /// Whether the process is still running.
    var isRunning: Bool { exitState.code == nil }

    /// When the process exited, in ``Deadline/now`` seconds (measured when Foundation reaped it).
    var exitedAt: Double? { exitState.time }

    /// Sends `signal` (e.g. `SIGTERM`) to the child only, not to its process group, as Kubernetes
    /// does to a container's main process.
    func sendSignal(_ signal: Int32) {
        let pid = process.processIdentifier
        guard pid > 1, exitState.code == nil else { return }
        kill(pid, signal)
    }

    /// Waits for the process to exit and returns its exit code (`128 + signal` after a signal).
    /// Also waits (briefly) until its stdout and stderr are drained, so the texts are complete.
    /// Throws ``Failure/stillRunning(seconds:output:)`` after `timeout` seconds.
    @discardableResult
    func waitForExit(timeout: Double) throws -> Int32 {
        guard let code = exitState.wait(timeout: timeout) else {
            throw Failure.stillRunning(seconds: timeout, output: diagnostics)
        }
        drainOutput(timeout: 5)
        return code
    }

    /// Waits for exit like ``waitForExit(timeout:)`` and returns everything the process printed.
    func finish(timeout: Double) throws -> Outcome {
        let code = try waitForExit(timeout: timeout)
        return Outcome(exitCode: code, stdout: stdoutText, stderr: stderrText)
    }

    /// Kills the child (SIGKILL to its process group and to itself) if it is still running, and
    /// waits for it to be gone. Safe to call more than once.
    func stop() {
        let pid = process.processIdentifier
        // Never signal pid 0 or 1 (-0 would be this runner's own process group).
        guard pid > 1, exitState.code == nil else { return }
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        _ = exitState.wait(timeout: 10)
        drainOutput(timeout: 2)
    }

    /// Waits until both reading threads have seen end-of-file (or the timeout passed).
    private func drainOutput(timeout: Double) {
        Deadline.poll(timeout: timeout) { stdoutBuffer.isClosed && stderrBuffer.isClosed }
    }

    // MARK: Helpers

    /// A one-time `signal(SIGPIPE, SIG_IGN)` for the test process: writing to a child or a socket
    /// that has gone away must be an error the test sees, not a signal that kills the runner.
    private static let ignoreSIGPIPE: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    /// The last lines of both streams, labelled, for messages; and where a process crashed, the
    /// backtrace of the thread that did, which a crash report prints before the other threads
    /// and so is rarely in the tail.
    static func tails(stdout: String, stderr: String) -> String {
        var text = ""
        if let crashed = stderr.range(of: " crashed:\n") {
            let start = stderr[..<crashed.lowerBound].lastIndex(of: "\n") ?? stderr.startIndex
            text += "--- the crashed thread ---\n\(String(stderr[start...].prefix(6_000)))\n"
        }
        return text
            + "--- stderr (tail) ---\n\(String(stderr.suffix(4_000)))\n--- stdout (tail) ---\n\(String(stdout.suffix(2_000)))"
    }

    /// Starts a thread that copies everything readable from `descriptor` into `buffer` until EOF.
    ///
    /// The thread works on its own duplicate of the descriptor (close-on-exec, so no other child
    /// inherits it) and closes it at EOF, so it can never read from a descriptor number that the
    /// `Pipe` object has closed and the system has reused. Set `FUNCD_E2E_ECHO=1` to also copy the
    /// child's output to the runner's stderr while debugging.
    private static func startReading(_ descriptor: Int32, into buffer: OutputBuffer, echo label: String) {
        let fd = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else {
            buffer.close()
            return
        }
        let echo = ProcessInfo.processInfo.environment["FUNCD_E2E_ECHO"] == "1"
        let thread = Thread {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    buffer.append(chunk[0..<count])
                    if echo {
                        FileHandle.standardError.write(Data("[\(label)] ".utf8) + Data(chunk[0..<count]))
                    }
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(fd)
            buffer.close()
        }
        thread.start()
    }
}

/// A growing byte buffer that one thread appends to and others read, guarded by a lock.
private final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private var closed = false

    func append(_ chunk: ArraySlice<UInt8>) {
        lock.lock()
        bytes.append(contentsOf: chunk)
        lock.unlock()
    }

    /// Marks end-of-file.
    func close() {
        lock.lock()
        closed = true
        lock.unlock()
    }

    var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }

    /// The bytes so far, decoded as UTF-8 (invalid sequences become U+FFFD).
    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The child's exit status, set once by Foundation's termination handler and awaited by tests.
private final class ExitState: @unchecked Sendable {
    private let condition = NSCondition()
    private var status: Int32?
    private var recordedAt: Double?

    func record(_ code: Int32) {
        let now = Deadline.now
        condition.lock()
        status = code
        recordedAt = now
        condition.broadcast()
        condition.unlock()
    }

    var code: Int32? {
        condition.lock()
        defer { condition.unlock() }
        return status
    }

    var time: Double? {
        condition.lock()
        defer { condition.unlock() }
        return recordedAt
    }

    /// The exit status, waiting up to `timeout` seconds for it; nil if still running then.
    func wait(timeout: Double) -> Int32? {
        let limit = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while status == nil {
            if !condition.wait(until: limit) { break }
        }
        return status
    }
}
