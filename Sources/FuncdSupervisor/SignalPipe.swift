import FuncdSystem

#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGTERM, SIGINT and SIGCHLD into bytes on a pipe the supervisor's poll loop reads, the
/// one async-signal-safe way to hand a signal to ordinary code.
enum SignalPipe {
    nonisolated(unsafe) static var readDescriptor: Int32 = -1
    nonisolated(unsafe) static var writeDescriptor: Int32 = -1

    static func install() {
        let ends = NonBlockingPipe.open()
        readDescriptor = ends?.read ?? -1
        writeDescriptor = ends?.write ?? -1
        signal(SIGPIPE, SIG_IGN)
        // A process inherits the blocked-signal mask of whoever started it (a test runner, an
        // init script): the ones the supervisor lives by must get through.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for number in [SIGTERM, SIGINT, SIGCHLD] { sigaddset(&unblock, number) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        for number in [SIGTERM, SIGINT, SIGCHLD] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(SignalPipe.writeDescriptor, &byte, 1)
            }
            action.sa_flags = SA_RESTART | SA_NOCLDSTOP
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
    }

    /// The signals that arrived since the last call.
    static func drain() -> [Int32] {
        var signals: [Int32] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(readDescriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            signals.append(contentsOf: buffer[0..<count].map { Int32($0) })
        }
        return signals
    }
}
