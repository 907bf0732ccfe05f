#if canImport(Glibc)
import Glibc
#endif

/// How many CPUs this process may use: its affinity mask (`taskset`, a cpuset cgroup), and no
/// more than its cgroup's CPU quota allows (a pod's `limits.cpu`: one CPU's worth of time on a
/// 64-core node is one CPU, not 64). One event loop per usable CPU: more loops than CPUs only
/// adds context switches, and the handler threads need CPU time too.
public enum CPUAffinity {
    public static var usableCPUs: Int {
        let affinity = affinityCPUs
        guard let quota = quotaCPUs else { return affinity }
        return max(1, min(affinity, quota))
    }

    /// The quota in whole CPUs, rounded up: cgroup v2's `cpu.max`, else v1's quota and period;
    /// nil without a limit.
    static var quotaCPUs: Int? {
        if let v2 = read("/sys/fs/cgroup/cpu.max") { return quotaCPUs(cpuMax: v2) }
        if let quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), let period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us") {
            return quotaCPUs(cpuMax: "\(quota) \(period)")
        }
        return nil
    }

    /// `"<quota> <period>"` (microseconds; `max` or a negative quota: no limit) in whole CPUs.
    static func quotaCPUs(cpuMax: String) -> Int? {
        let fields = cpuMax.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let quota = Int(fields[0]), let period = Int(fields[1]), quota > 0, period > 0 else {
            return nil
        }
        return (quota + period - 1) / period
    }

    private static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        return String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static var affinityCPUs: Int {
        // `Cpus_allowed:` in /proc/self/status is the affinity mask in hex (comma-grouped);
        // sched_getaffinity itself is hidden behind _GNU_SOURCE from Swift's Glibc module.
        guard let file = fopen("/proc/self/status", "r") else { return 1 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 1024)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("Cpus_allowed:") else { continue }
            let count = text.dropFirst("Cpus_allowed:".count).reduce(0) { sum, character in
                sum + (character.hexDigitValue?.nonzeroBitCount ?? 0)
            }
            return max(1, count)
        }
        return 1
    }
}
