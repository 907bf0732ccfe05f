import Foundation

/// The processes of a pod as /proc shows them: a supervisor's workers, and their memory.
enum ProcessTree {
    /// The PIDs whose parent is `parent`.
    static func children(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == parent
        }.sorted()
    }

    /// The state letter of `pid` (`R`, `S`, `Z` for a zombie, ...), or "" when it is gone.
    static func state(_ pid: Int32) -> String {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return "" }
        return stat[stat.index(after: close)...].split(separator: " ").first.map(String.init) ?? ""
    }

    /// Resident memory of `pid` in KiB (VmRSS), 0 when it is gone.
    static func residentKiB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    /// Resident memory of a supervisor and all its workers, in KiB.
    static func podResidentKiB(_ supervisor: Int32) -> Int {
        ([supervisor] + children(of: supervisor)).map(residentKiB).reduce(0, +)
    }
}
