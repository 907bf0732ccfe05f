#if canImport(Glibc)
import Glibc
#endif

/// How many CPUs this process may run on (its affinity mask: `taskset`, a cpuset cgroup). One
/// event loop per usable CPU: more loops than CPUs only adds context switches, and the handler
/// threads need CPU time too.
public enum CPUAffinity {
    public static var usableCPUs: Int {
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
