import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

/// One running call of the exec runtime: its process, the funcd ends of its three pipes, and
/// what it has written so far. Touched only on the host's reactor thread.
final class ExecCall {
    let id: Int
    let invocation: Invocation
    let pid: pid_t
    /// Readable once the process has exited; -1 once it has been reaped.
    var pidfd: Int32
    /// The write end of the program's stdin, the read ends of its stdout and stderr; -1 once
    /// closed.
    var input: Int32
    var output: Int32
    var errors: Int32
    /// Bytes of the body written to stdin so far.
    var written = 0
    /// Whether stdout goes to the client as it is written (streaming mode, not for Kafka).
    let streams: Bool
    /// stdout not yet answered: all of it in serializing mode, the part before the head in
    /// streaming mode.
    var buffered: [UInt8] = []
    /// The answer's stream once its head has gone out.
    var stream: ResponseStream?
    /// Reading stdout waits for the client to catch up.
    var paused = false
    /// Bytes read from one pipe since the program exited (see `ExecHost.drainLimit`).
    var drained = 0
    /// The current stderr line, until its end arrives.
    var errorLine: [UInt8] = []
    /// The raw wait status, once reaped.
    var waitStatus: Int32?
    /// Why the call failed even if the program exits 0 (too much output, a bad CGI head).
    var failure: String?
    /// When SIGKILL goes to the process group (after the SIGTERM of a timeout).
    var killAt: UInt64?

    init(id: Int, invocation: Invocation, pid: pid_t, pidfd: Int32, input: Int32, output: Int32, errors: Int32, streams: Bool) {
        self.id = id
        self.invocation = invocation
        self.pid = pid
        self.pidfd = pidfd
        self.input = input
        self.output = output
        self.errors = errors
        self.streams = streams
    }

    /// Whether nothing of the call is left to wait for: reaped, and its pipes read to the end.
    var isDone: Bool { pidfd < 0 && output < 0 && errors < 0 }

    /// Sends `signal` to every process of the call (its session's group, which the program and
    /// whatever it started share unless they left it).
    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// How the process ended, from its wait status; nil before it is reaped.
    enum Ending {
        case exited(Int32)
        case killed(signal: Int32)
    }

    var ending: Ending? {
        guard let status = waitStatus else { return nil }
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .killed(signal: signal)
    }

    /// How the process ended, for the log and the answer: nil when it exited 0.
    var exitProblem: String? {
        switch ending {
        case nil: "did not finish"
        case .exited(0): nil
        case .exited(let code): "exited with status \(code)"
        case .killed(let signal): "was killed by signal \(signal) (\(String(cString: strsignal(signal))))"
        }
    }

    /// The exit status (`"3"`) or the signal's name (`"SIGKILL"`), for the metrics; nil before
    /// the process is reaped.
    var exitOutcome: String? {
        switch ending {
        case nil: nil
        case .exited(let code): String(code)
        case .killed(let signal): Self.signalNames[Int(signal)] ?? "signal \(signal)"
        }
    }

    private static let signalNames: [Int: String] = [
        Int(SIGHUP): "SIGHUP", Int(SIGINT): "SIGINT", Int(SIGQUIT): "SIGQUIT", Int(SIGILL): "SIGILL",
        Int(SIGABRT): "SIGABRT", Int(SIGBUS): "SIGBUS", Int(SIGFPE): "SIGFPE", Int(SIGKILL): "SIGKILL",
        Int(SIGSEGV): "SIGSEGV", Int(SIGPIPE): "SIGPIPE", Int(SIGALRM): "SIGALRM", Int(SIGTERM): "SIGTERM",
        Int(SIGUSR1): "SIGUSR1", Int(SIGUSR2): "SIGUSR2", Int(SIGXCPU): "SIGXCPU", Int(SIGXFSZ): "SIGXFSZ",
    ]

    static func close(_ descriptor: inout Int32) {
        guard descriptor >= 0 else { return }
        _ = Glibc.close(descriptor)
        descriptor = -1
    }

    func closeAll() {
        Self.close(&input)
        Self.close(&output)
        Self.close(&errors)
        Self.close(&pidfd)
    }
}
