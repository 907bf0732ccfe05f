import CExecSpawn
import FuncdCore
import FuncdSystem
import Logging
import Prometheus
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The exec runtime: each call is a process of the configured program, the request body on its
/// stdin, its stdout the answer, its stderr funcd's log, line by line.
///
/// One reactor thread owns every running call: it spawns them (at most `FUNC_CONCURRENCY` at
/// once), moves bytes through their pipes and waits for their exits, all in one `poll`, so a
/// call costs no thread and a slow program or a slow client holds nothing but its own pipes. At
/// the deadline (the Invoker has answered 408) the call's whole process group gets SIGTERM,
/// then SIGKILL after `FUNC_TIMEOUT_GRACE`; when the program itself exits, whatever it started
/// in its group is killed too, so no process outlives its call.
///
/// `@unchecked Sendable`: the inbox is a Mutex; everything else is the reactor thread's alone.
public final class ExecHost: FunctionHost, @unchecked Sendable {
    public let versionDescription: String
    /// SIGKILL ends any call the host interrupts; see ``FunctionHost/killsInterruptedCalls``.
    public var killsInterruptedCalls: Bool { true }

    private let configuration: Configuration
    private let settings: ExecSettings
    private let logger: Logger
    private let program: ExecProgram
    private let environment: ChildEnvironment
    /// The program's argv as C strings, made once.
    private let argv: [UnsafeMutablePointer<CChar>?]
    /// A pipe whose read end wakes the reactor.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    private struct Inbox {
        var submitted: [Invocation] = []
        var interrupted: [Invocation] = []
        var drained: [Int] = []
        var woken = false
    }
    private let inbox = Mutex(Inbox())
    /// The process groups of the running calls, for ``killAll()`` from another thread.
    private let groups = Mutex(Set<pid_t>())
    private var invoker: Invoker?

    // The reactor's own state.
    private var queue: [Invocation] = []
    private var queueHead = 0
    private var calls: [Int: ExecCall] = [:]
    private var callsByPID: [pid_t: ExecCall] = [:]
    private var nextID = 0
    private var scratch = [UInt8](repeating: 0, count: 64 * 1024)
    private var exitCounters: [String: Counter] = [:]
    private var startedBatch: [Invocation] = []
    private var finishedBatch: [Invocation] = []

    /// The longest stderr line logged as one; a longer one is logged in pieces of at least this
    /// size (what one read brings is split once it passes the mark).
    static let errorLineLimit = 16 * 1024
    /// The most read from each pipe of a call after its program exited: a pipe holds 64 KiB by
    /// default (1 MiB at most unless raised by root), and what a process that left the group
    /// writes after that is not the call's.
    static let drainLimit = 1024 * 1024
    /// The longest CGI head: one a decoder would take (`FUNC_MAX_HEADER_BYTES`' default).
    static let cgiHeadLimit = 32 * 1024

    /// Resolves the program (the one start-up error a bad one gets) and prepares the calls'
    /// environment from `environment`, funcd's own.
    public static func start(
        configuration: Configuration, environment: [String: String], logger: Logger
    ) throws(FuncdError) -> ExecHost {
        let program = try ExecProgram(path: configuration.modulePath)
        return ExecHost(configuration: configuration, program: program, environment: environment, logger: logger)
    }

    private init(configuration: Configuration, program: ExecProgram, environment: [String: String], logger: Logger) {
        self.configuration = configuration
        self.settings = configuration.exec
        self.logger = logger
        self.program = program
        self.environment = ChildEnvironment(
            environment: environment.map { "\($0.key)=\($0.value)" }, configuration: configuration)
        self.argv = program.arguments.map { strdup($0) } + [nil]
        var ends: [Int32] = [-1, -1]
        precondition(funcd_exec_pipe(&ends, 1) == 0, "pipe2 failed: \(errno)")
        wakeRead = ends[0]
        wakeWrite = ends[1]
        let mode = settings.mode == .streaming ? "streaming" : "serializing"
        versionDescription = "exec \(program.arguments.joined(separator: " ")), \(mode)\(settings.cgi ? ", CGI head" : "")"
    }

    public func attach(_ invoker: Invoker) {
        self.invoker = invoker
        NativeThread.start(stackSize: 1024 * 1024) { [self] in react() }
    }

    public func submit(_ batch: [Invocation]) {
        post { $0.submitted += batch }
    }

    public func interrupt(_ invocation: Invocation) {
        post { $0.interrupted.append(invocation) }
    }

    /// Kills every running call's process group. For the way out: programs run in sessions of
    /// their own, so nothing else would end them when funcd exits (after SHUTDOWN_TIMEOUT, say).
    public func killAll() {
        for group in groups.withLock({ $0 }) { kill(-group, SIGKILL) }
    }

    /// A streamed answer's client caught up: read its stdout again.
    private func drained(_ id: Int) {
        post { $0.drained.append(id) }
    }

    private func post(_ change: (inout Inbox) -> Void) {
        let wake = inbox.withLock { inbox in
            change(&inbox)
            defer { inbox.woken = true }
            return !inbox.woken
        }
        if wake {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
    }

    // MARK: - The reactor

    private enum Source {
        case wake
        case input(ExecCall)
        case output(ExecCall)
        case errors(ExecCall)
        case exit(ExecCall)
    }

    private func react() {
        Self.acceptChildSignals()
        var descriptors: [pollfd] = []
        var sources: [Source] = []
        while true {
            descriptors.removeAll(keepingCapacity: true)
            sources.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            sources.append(.wake)
            var nextKill: UInt64?
            for call in calls.values {
                if call.input >= 0 {
                    descriptors.append(pollfd(fd: call.input, events: Int16(POLLOUT), revents: 0))
                    sources.append(.input(call))
                }
                if call.output >= 0 && !call.paused {
                    descriptors.append(pollfd(fd: call.output, events: Int16(POLLIN), revents: 0))
                    sources.append(.output(call))
                }
                if call.errors >= 0 {
                    descriptors.append(pollfd(fd: call.errors, events: Int16(POLLIN), revents: 0))
                    sources.append(.errors(call))
                }
                if call.pidfd >= 0 {
                    descriptors.append(pollfd(fd: call.pidfd, events: Int16(POLLIN), revents: 0))
                    sources.append(.exit(call))
                }
                if let due = call.killAt { nextKill = min(nextKill ?? due, due) }
            }
            var timeout: Int32 = -1
            if let nextKill {
                let now = MonotonicClock.nanoseconds()
                timeout = nextKill <= now ? 0 : Int32(clamping: (nextKill - now + 999_999) / 1_000_000)
            }
            let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
            if ready > 0 {
                for (index, descriptor) in descriptors.enumerated() where descriptor.revents != 0 {
                    switch sources[index] {
                    case .wake: takeInbox()
                    case .input(let call): if call.input == descriptor.fd { writeInput(call) }
                    case .output(let call): if call.output == descriptor.fd { readOutput(call) }
                    case .errors(let call): if call.errors == descriptor.fd { readErrors(call) }
                    case .exit: reapExited()
                    }
                }
            }
            killOverdue()
            for call in calls.values where call.isDone { finish(call) }
            startQueued()
            if !startedBatch.isEmpty {
                invoker?.started(startedBatch)
                startedBatch.removeAll(keepingCapacity: true)
            }
            if !finishedBatch.isEmpty {
                invoker?.finished(finishedBatch)
                finishedBatch.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Unblocks SIGCHLD on the reactor thread, the parent of every call's process. The kernel
    /// drops a SIGCHLD left at its default (ignore) at once only when the parent thread does not
    /// block it; this thread inherits the mask of the Swift runtime's threads, which block it, so
    /// each exit stayed pending and woke the one thread that takes it (the main thread, parked in
    /// libdispatch's sigsuspend) for nothing: a context switch per call. Exits are watched
    /// through pidfds, never through the signal.
    private static func acceptChildSignals() {
        var childSignal = sigset_t()
        sigemptyset(&childSignal)
        sigaddset(&childSignal, SIGCHLD)
        pthread_sigmask(SIG_UNBLOCK, &childSignal, nil)
    }

    private func takeInbox() {
        var byte: UInt8 = 0
        while read(wakeRead, &byte, 1) > 0 {}
        let taken = inbox.withLock { inbox in
            defer { inbox = Inbox() }
            return inbox
        }
        if queueHead > 64 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        queue += taken.submitted
        for invocation in taken.interrupted {
            // A call still queued is skipped when its turn comes (tryStart fails after its 408).
            guard let call = calls.values.first(where: { $0.invocation === invocation }), call.killAt == nil else { continue }
            call.signalGroup(SIGTERM)
            call.killAt = MonotonicClock.nanoseconds() &+ UInt64(configuration.timeoutGraceSeconds * 1e9)
            if call.failure == nil { call.failure = "timed out after \(configuration.timeoutSeconds)s" }
        }
        for id in taken.drained {
            calls[id]?.paused = false
        }
    }

    private func killOverdue() {
        let now = MonotonicClock.nanoseconds()
        for call in calls.values {
            if let due = call.killAt, due <= now {
                call.signalGroup(SIGKILL)
                call.killAt = nil
            }
        }
    }

    // MARK: - Starting

    private func startQueued() {
        while calls.count < configuration.concurrency && queueHead < queue.count {
            let invocation = queue[queueHead]
            queueHead += 1
            guard invocation.tryStart() else { continue }
            start(invocation)
        }
    }

    private func start(_ invocation: Invocation) {
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        var errors: [Int32] = [-1, -1]
        var code = funcd_exec_pipe(&input, 0)
        if code == 0 { code = funcd_exec_pipe(&output, 0) }
        if code == 0 { code = funcd_exec_pipe(&errors, 0) }
        guard code == 0 else {
            closeEach(input + output + errors)
            return failToStart(invocation, code)
        }
        // funcd's ends never block the reactor; the program's stay blocking, as programs expect.
        for descriptor in [input[1], output[0], errors[0]] {
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        }
        let entries = environment.entries(
            method: invocation.method, target: invocation.target, headers: invocation.headers,
            bodyCount: invocation.body.count, values: invocation.kafka == nil ? .latin1 : .utf8, trace: invocation.trace)
        var pid: pid_t = 0
        var pidfd: Int32 = -1
        let result = Self.withCStrings(entries) { envp in
            funcd_exec_spawn(
                argv[0], argv, envp, input[0], output[1], errors[1], configuration.codeDirectory, &pid, &pidfd)
        }
        closeEach([input[0], output[1], errors[1]])
        guard result == 0 else {
            closeEach([input[1], output[0], errors[0]])
            return failToStart(invocation, result)
        }
        let call = ExecCall(
            id: nextID, invocation: invocation, pid: pid, pidfd: pidfd, input: input[1], output: output[0],
            errors: errors[0], streams: settings.mode == .streaming && invocation.kafka == nil)
        nextID += 1
        calls[call.id] = call
        callsByPID[pid] = call
        groups.withLock { _ = $0.insert(pid) }
        if invocation.body.isEmpty { ExecCall.close(&call.input) }
    }

    private func failToStart(_ invocation: Invocation, _ code: Int32) {
        let reason = "cannot start \(program.arguments[0]): \(String(cString: strerror(code)))"
        invocation.complete(with: Self.internalError(reason))
        finishedBatch.append(invocation)
    }

    private func closeEach(_ descriptors: [Int32]) {
        for descriptor in descriptors where descriptor >= 0 { _ = close(descriptor) }
    }

    /// Calls `body` with `entries` as a NULL-terminated array of C strings.
    private static func withCStrings<R>(_ entries: [[UInt8]], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        var storage: [CChar] = []
        storage.reserveCapacity(entries.reduce(0) { $0 + $1.count + 1 })
        var offsets: [Int] = []
        offsets.reserveCapacity(entries.count)
        for entry in entries {
            offsets.append(storage.count)
            // A NUL inside a value would end it early; the front refuses such headers already.
            for byte in entry { storage.append(CChar(bitPattern: byte == 0 ? 0x3F : byte)) }
            storage.append(0)
        }
        return storage.withUnsafeMutableBufferPointer { buffer in
            body(offsets.map { buffer.baseAddress! + $0 } + [nil])
        }
    }

    // MARK: - Pipes

    private func writeInput(_ call: ExecCall) {
        let body = call.invocation.body
        while call.written < body.count {
            let count = body.withUnsafeBytes { bytes in
                write(call.input, bytes.baseAddress! + call.written, min(bytes.count - call.written, 1 << 20))
            }
            if count > 0 {
                call.written += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                // EAGAIN: the pipe is full, poll says when to go on. EPIPE: the program does not
                // read its stdin (many do not), which is no error.
                if count < 0 && errno == EAGAIN { return }
                break
            }
        }
        ExecCall.close(&call.input)
    }

    /// Reads what stdout holds; at its end (or, `draining`, once it is empty) closes it.
    private func readOutput(_ call: ExecCall, draining: Bool = false) {
        let count = scratch.withUnsafeMutableBytes { read(call.output, $0.baseAddress, $0.count) }
        if count > 0 {
            took(Array(scratch[0..<count]), from: call)
            if draining { call.drained += count }
        } else if count == 0 || (errno != EAGAIN && errno != EINTR) || (draining && errno == EAGAIN) {
            ExecCall.close(&call.output)
        }
    }

    /// Logs what stderr holds line by line; at its end (or, `draining`, once it is empty) logs
    /// the unfinished line and closes it.
    private func readErrors(_ call: ExecCall, draining: Bool = false) {
        let count = scratch.withUnsafeMutableBytes { read(call.errors, $0.baseAddress, $0.count) }
        if count > 0 {
            if draining { call.drained += count }
            var start = 0
            for index in 0..<count where scratch[index] == UInt8(ascii: "\n") {
                call.errorLine += scratch[start..<index]
                logError(call)
                start = index + 1
            }
            call.errorLine += scratch[start..<count]
            while call.errorLine.count >= Self.errorLineLimit {
                let rest = Array(call.errorLine[Self.errorLineLimit...])
                call.errorLine.removeSubrange(Self.errorLineLimit...)
                logError(call)
                call.errorLine = rest
            }
        } else if count == 0 || (errno != EAGAIN && errno != EINTR) || (draining && errno == EAGAIN) {
            if !call.errorLine.isEmpty { logError(call) }
            ExecCall.close(&call.errors)
        }
    }

    private func logError(_ call: ExecCall) {
        var line = call.errorLine
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        call.errorLine.removeAll(keepingCapacity: true)
        logger.info(
            "\(String(decoding: line, as: UTF8.self))",
            metadata: call.invocation.logMetadata(["funcd.exec.pid": "\(call.pid)"]))
    }

    /// stdout bytes: into the stream once it has begun, else buffered (bounded), and in streaming
    /// mode the stream begins with the first bytes (after the CGI head, when there is one).
    private func took(_ bytes: [UInt8], from call: ExecCall) {
        if let stream = call.stream {
            if !stream.write(bytes) { call.paused = true }
            return
        }
        guard call.failure == nil else { return }
        call.buffered += bytes
        if call.buffered.count > settings.outputLimitBytes {
            stop(call, because: "wrote more than FUNC_EXEC_OUTPUT_LIMIT (\(settings.outputLimitBytes) bytes) to stdout")
            return
        }
        guard call.streams else { return }
        var head: CGIHead?
        var bodyStart = 0
        if settings.cgi {
            switch CGIHead.parse(call.buffered) {
            case .incomplete:
                if call.buffered.count > Self.cgiHeadLimit {
                    stop(call, because: "its CGI head is longer than \(Self.cgiHeadLimit) bytes")
                }
                return
            case .invalid(let reason): return stop(call, because: reason)
            case .complete(let parsed, let start): (head, bodyStart) = (parsed, start)
            }
        }
        let id = call.id
        let stream = ResponseStream { [weak self] in self?.drained(id) }
        call.stream = stream
        call.invocation.complete(
            with: InvocationResult(
                status: head?.status ?? 200, headers: answerHeaders(call.invocation, head),
                body: Array(call.buffered[bodyStart...]), stream: stream))
        call.buffered = []
        startedBatch.append(call.invocation)
    }

    /// Ends a call that broke a rule: its group is killed, and it is answered 500 once reaped.
    private func stop(_ call: ExecCall, because reason: String) {
        call.failure = reason
        call.buffered = []
        call.signalGroup(SIGKILL)
    }

    // MARK: - Exits

    /// Reaps every child that has exited. Orphans of an earlier call's group that ended up as
    /// this process's children (funcd is PID 1 in a container) are reaped here too.
    private func reapExited() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            guard let call = callsByPID.removeValue(forKey: pid) else { continue }
            groups.withLock { _ = $0.remove(pid) }
            call.waitStatus = status
            ExecCall.close(&call.pidfd)
            ExecCall.close(&call.input)
            // What the program started and left behind goes with it; then what is left in its
            // pipes is read, and nobody can write more.
            call.signalGroup(SIGKILL)
            call.killAt = nil
            // A streamed answer whose client is behind takes the rest past the stream's mark:
            // a pipe holds 64 KiB at most, and nobody writes more. A process that left the group
            // (its own setsid) and holds a pipe open is not waited for.
            // What a pipe held when the group died is at most its capacity; a process that left the
            // group and goes on writing is cut off past `drainLimit`.
            call.paused = false
            call.drained = 0
            while call.output >= 0 && call.drained < Self.drainLimit { readOutput(call, draining: true) }
            call.drained = 0
            while call.errors >= 0 && call.drained < Self.drainLimit { readErrors(call, draining: true) }
            ExecCall.close(&call.output)
            if !call.errorLine.isEmpty { logError(call) }
            ExecCall.close(&call.errors)
        }
    }

    private func finish(_ call: ExecCall) {
        calls[call.id] = nil
        call.closeAll()
        if let outcome = call.exitOutcome { countExit(outcome) }
        let invocation = call.invocation
        let problem = call.failure ?? call.exitProblem.map { "\(program.path) \($0)" }
        if call.stream != nil {
            invocation.endStream(error: problem)
        } else {
            invocation.complete(with: problem.map(Self.internalError) ?? answer(call))
        }
        finishedBatch.append(invocation)
    }

    /// `funcd_exec_exits_total{outcome}`: the exit status (`0`…`255`) or the signal (`SIGKILL`)
    /// of each call's program; at most 256 + 64 series.
    private func countExit(_ outcome: String) {
        if exitCounters[outcome] == nil, let registry = invoker?.metrics.registry {
            exitCounters[outcome] = registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "funcd_exec_exits", unitName: "total",
                    helpText: "How the exec runtime's programs ended: exit status, or the signal that killed them"),
                labels: [("outcome", outcome)])
        }
        exitCounters[outcome]?.increment()
    }

    /// The whole answer of a serializing call that exited 0.
    private func answer(_ call: ExecCall) -> InvocationResult {
        guard settings.cgi else {
            return InvocationResult(status: 200, headers: answerHeaders(call.invocation, nil), body: call.buffered)
        }
        switch CGIHead.parse(call.buffered) {
        case .complete(let head, let start):
            return InvocationResult(
                status: head.status ?? 200, headers: answerHeaders(call.invocation, head),
                body: Array(call.buffered[start...]))
        case .incomplete where call.buffered.isEmpty:
            return InvocationResult(status: 200, headers: answerHeaders(call.invocation, nil))
        case .incomplete:
            return Self.internalError("\(program.path): its CGI head has no blank line ending it (FUNC_EXEC_CGI is on)")
        case .invalid(let reason):
            return Self.internalError("\(program.path): \(reason)")
        }
    }

    /// The head's fields, with a Content-Type: the program's, else `FUNC_EXEC_CONTENT_TYPE`, else
    /// the request's (as the classic watchdog answers), else `application/octet-stream`.
    private func answerHeaders(_ invocation: Invocation, _ head: CGIHead?) -> [(String, String)] {
        var headers = head?.headers ?? []
        if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            let requested = invocation.kafka == nil ? invocation.headers.first { $0.0.lowercased() == "content-type" }?.1 : nil
            headers.append(("Content-Type", settings.contentType ?? requested ?? "application/octet-stream"))
        }
        return headers
    }

    private static func internalError(_ reason: String) -> InvocationResult {
        InvocationResult(
            status: 500, headers: [("Content-Type", "text/plain; charset=utf-8")],
            body: Array("Internal Server Error\n".utf8), error: reason)
    }
}
