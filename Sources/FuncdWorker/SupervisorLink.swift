import FuncdCore
import FuncdSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A worker's line to the supervisor that started it (the `funcd` process).
///
/// The supervisor hands each worker two descriptors: the listening socket every worker accepts
/// from (`FUNCD_LISTEN_FD`), and one end of a socket pair (`FUNCD_CONTROL_FD`). Over the pair
/// the worker says `ready` (serving) and `stuck` (a handler cannot be interrupted: replace me),
/// and the supervisor sends its own counters as Prometheus text so that any worker's /metrics
/// shows them, and `kafka-death <count> <partition> <offset> <topic>` when a worker died while
/// running a Kafka message (see `KafkaWorkerDeaths`). Protocol: one message per line; counters
/// arrive as `m <line>` lines closed by `end`.
public final class SupervisorLink: Sendable {
    public let listenDescriptor: Int32
    private let controlDescriptor: Int32
    /// The Kafka messages workers died running, as the supervisor counts them.
    public let kafkaDeaths: KafkaWorkerDeaths
    private let counters = Mutex<[UInt8]>([])

    /// Why the environment's link cannot be this worker's, if it cannot: both variables or
    /// neither, a listening socket and a socket. Someone who sets them by hand, or a program that
    /// passes on a worker's environment, would otherwise get a worker that serves nothing and
    /// leaves without a word, or one that takes someone else's descriptors for its own.
    public static func problem(in environment: [String: String]) -> String? {
        let listenText = environment[WorkerEnvironment.listenDescriptor]
        let controlText = environment[WorkerEnvironment.controlDescriptor]
        if listenText == nil && controlText == nil { return nil }
        let (listenName, controlName) = (WorkerEnvironment.listenDescriptor, WorkerEnvironment.controlDescriptor)
        let advice =
            "\(listenName) and \(controlName) are how funcd's supervisor hands a worker its sockets; unset them to run this program on its own"
        guard let listen = listenText.flatMap(Int32.init), let control = controlText.flatMap(Int32.init),
            listen >= 0, control >= 0
        else {
            return "\(listenName)=\(listenText ?? "(unset)") and \(controlName)=\(controlText ?? "(unset)") do not name two descriptors: \(advice)"
        }
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(listen, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting != 0 else {
            return "\(listenName)=\(listen) is not a listening socket: \(advice)"
        }
        var status = stat()
        guard fstat(control, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else {
            return "\(controlName)=\(control) is not a socket: \(advice)"
        }
        return nil
    }

    /// The link when this process is a supervised worker, else nil.
    public static func fromEnvironment(_ environment: [String: String]) -> SupervisorLink? {
        guard let listen = environment[WorkerEnvironment.listenDescriptor].flatMap(Int32.init),
            let control = environment[WorkerEnvironment.controlDescriptor].flatMap(Int32.init)
        else { return nil }
        return SupervisorLink(listen: listen, control: control, kafkaDeaths: KafkaWorkerDeaths.inherited(environment))
    }

    private init(listen: Int32, control: Int32, kafkaDeaths: KafkaWorkerDeaths) {
        self.listenDescriptor = listen
        self.controlDescriptor = control
        self.kafkaDeaths = kafkaDeaths
        // Close-on-exec: a handler's subprocess must not keep the pod's socket or the pair open.
        _ = fcntl(listen, F_SETFD, FD_CLOEXEC)
        _ = fcntl(control, F_SETFD, FD_CLOEXEC)
    }

    /// Tells the supervisor something (`ready`, `stuck`). Never blocks for long: one short line.
    public func send(_ message: String) {
        var line = message + "\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.send(controlDescriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }

    /// The supervisor's counters, ready to append to /metrics.
    public var supervisorMetrics: [UInt8] { counters.withLock { $0 } }

    /// Reads the supervisor's messages on a thread of its own. When the supervisor goes away
    /// (its end closes) `onLost` runs: a worker must not outlive its supervisor.
    public func startReading(onLost: @escaping @Sendable () -> Void) {
        NativeThread.start(stackSize: 256 * 1024) { [self] in
            var pending: [UInt8] = []
            var metrics: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(controlDescriptor, $0.baseAddress, $0.count, 0) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                pending.append(contentsOf: buffer[0..<count])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[..<newline]
                    if line.starts(with: Array("m ".utf8)) {
                        metrics.append(contentsOf: line.dropFirst(2))
                        metrics.append(UInt8(ascii: "\n"))
                    } else if Array(line) == Array("end".utf8) {
                        let complete = metrics
                        counters.withLock { $0 = complete }
                        metrics.removeAll()
                    } else if line.starts(with: Array("kafka-death ".utf8)) {
                        kafkaDeaths.learn(Substring(decoding: line.dropFirst("kafka-death ".utf8.count), as: UTF8.self))
                    }
                    pending.removeSubrange(...newline)
                }
            }
            onLost()
        }
    }
}
