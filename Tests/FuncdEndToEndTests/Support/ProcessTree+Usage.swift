import Foundation

/// What a pod's processes use, from /proc: the bounds the hardening tests assert (resident and
/// peak memory of a worker, CPU time of the pod) are read here, never estimated.
extension ProcessTree {
    /// The worker of a supervisor that runs one (`FUNC_WORKERS=1`, the default): its first child,
    /// from `/proc/<pid>/task/<pid>/children` (falling back to a scan of /proc), or nil while
    /// there is none.
    static func worker(of supervisor: Int32) -> Int32? {
        let path = "/proc/\(supervisor)/task/\(supervisor)/children"
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let first = text.split(separator: " ").compactMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
                .first
        {
            return first
        }
        return children(of: supervisor).first
    }

    /// Waits up to `timeout` seconds for the supervisor's worker to exist.
    static func waitForWorker(of supervisor: Int32, timeout: Double = 10) -> Int32? {
        var found: Int32?
        Deadline.poll(timeout: timeout) {
            found = worker(of: supervisor)
            return found != nil
        }
        return found
    }

    /// The thread of `pid` named `name` (its `comm`), or nil.
    static func thread(named name: String, of pid: Int32) -> Int32? {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap(Int32.init).first { tid in
            let comm = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8)
            return comm?.trimmingCharacters(in: .whitespacesAndNewlines) == name
        }
    }

    /// How many times thread `tid` of `pid` went to sleep and was woken (its voluntary context
    /// switches) during `seconds`; every thread of `pid` together when `tid` is nil.
    static func wakeUps(_ pid: Int32, thread tid: Int32? = nil, over seconds: Double) -> Int {
        func switches(_ tid: Int32) -> Int {
            let path = "/proc/\(pid)/task/\(tid)/status"
            guard let status = try? String(contentsOfFile: path, encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("voluntary_ctxt_switches:") })
            else { return 0 }
            return Int(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
        }
        func total() -> Int {
            let tasks = tid.map { [$0] }
                ?? ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).compactMap(Int32.init)
            return tasks.map(switches).reduce(0, +)
        }
        let before = total()
        Thread.sleep(forTimeInterval: seconds)
        return total() - before
    }

    /// One `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, ...) in KiB; 0 when absent.
    static func statusKiB(_ pid: Int32, _ field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    /// Peak resident memory of `pid` in KiB (VmHWM), 0 when it is gone.
    static func peakResidentKiB(_ pid: Int32) -> Int {
        statusKiB(pid, "VmHWM")
    }

    /// User plus system CPU time `pid` has used, in seconds (fields 14 and 15 of /proc/<pid>/stat).
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm)": field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// CPU seconds of a supervisor and all its workers.
    static func podCPUSeconds(_ supervisor: Int32) -> Double {
        ([supervisor] + children(of: supervisor)).map(cpuSeconds).reduce(0, +)
    }

    /// Server-side TCP sockets on loopback `port` whose receive queue still holds bytes the
    /// server has not read (from /proc/net/tcp): 0 once the server has read all it was sent.
    static func unreadSockets(port: Int) -> Int {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return 0 }
        let local = String(format: ":%04X", port)
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // sl local_address rem_address st tx_queue:rx_queue ...
            guard fields.count > 4, fields[1].hasSuffix(local), fields[3] == "01" else { return false }
            let queues = fields[4].split(separator: ":")
            return queues.count == 2 && Int(queues[1], radix: 16) != 0
        }.count
    }
}
