import FuncdCore
import FuncdSystem

#if canImport(Glibc)
import Glibc
#endif

/// One worker process (`funcd-python` ...) and the supervisor's end of its control pair. What
/// the supervisor decides about it goes by ``SupervisorStateMachine``'s record of the same pid.
final class WorkerProcess {
    let pid: pid_t
    let control: Int32
    /// What it said after `ready` (its runtime), for the listening line.
    var description = ""
    var pending: [UInt8] = []
    /// The Kafka messages it has with its handler (when it consumes Kafka).
    var inFlight: KafkaInFlightTable?

    init(pid: pid_t, control: Int32) {
        self.pid = pid
        self.control = control
    }

    /// Starts `executable arguments` with the listening socket as fd 3 and its end of a fresh
    /// socket pair as fd 4 (and `inFlight`'s memfd as fd 5), the signals the supervisor handles
    /// back at their defaults, and `FUNCD_LISTEN_FD`/`FUNCD_CONTROL_FD`/`FUNCD_WORKER` (and
    /// `FUNCD_KAFKA_INFLIGHT_FD`) added to the environment.
    static func spawn(
        executable: String, arguments: [String], environment: [String: String], listen: Int32,
        slot: Int, inFlight: KafkaInFlightTable? = nil
    ) throws -> WorkerProcess {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw FuncdError(.interpreter, "socketpair: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, listen, 3)
        posix_spawn_file_actions_adddup2(&actions, pair[1], 4)
        if let inFlight { posix_spawn_file_actions_adddup2(&actions, inFlight.descriptor, 5) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGCHLD, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environment = environment
        environment[WorkerEnvironment.listenDescriptor] = "3"
        environment[WorkerEnvironment.controlDescriptor] = "4"
        environment[WorkerEnvironment.slot] = String(slot)
        if inFlight != nil { environment[WorkerEnvironment.kafkaInFlightDescriptor] = "5" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(pair[1])
        inFlight?.closeDescriptor()
        guard status == 0 else {
            close(pair[0])
            throw FuncdError(.interpreter, "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
        let worker = WorkerProcess(pid: pid, control: pair[0])
        worker.inFlight = inFlight
        return worker
    }

    /// Sends one message line; a worker that cannot take it is gone or about to be.
    func send(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            _ = Glibc.send(control, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
    }

    /// Reads what the worker said; returns complete lines, or nil when its end is closed.
    func readLines() -> [String]? {
        var buffer = [UInt8](repeating: 0, count: 1024)
        var closed = false
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(control, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                pending.append(contentsOf: buffer[0..<count])
                continue
            }
            if count == 0 { closed = true }
            if count < 0 && errno == EINTR { continue }
            break
        }
        var lines: [String] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(String(decoding: pending[..<newline], as: UTF8.self))
            pending.removeSubrange(...newline)
        }
        return closed && lines.isEmpty ? nil : lines
    }
}
