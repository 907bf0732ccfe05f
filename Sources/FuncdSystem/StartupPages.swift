#if canImport(Glibc)
import Glibc
#endif

/// Gives back the pages of code and data that only start-up touched.
///
/// An interpreter's start-up (V8's bootstrap, ICU, CPython's imports) runs through far more of
/// its shared libraries than serving does, and the kernel maps file pages in 64 KiB runs around
/// each fault. Those clean, file-backed pages stay resident, and counted in the pod's RSS, until
/// memory runs short. Once the worker serves, `MADV_PAGEOUT` (Linux 5.4+) reclaims them; the
/// ones serving needs fault back in on first use.
///
/// The never-written pages of private writable file mappings (a binary's and each library's data
/// segments, about 1 MiB in each funcd process) go too, when the machine has no swap. Their
/// written pages are anonymous memory, which without swap cannot be paged out and is left
/// alone; with swap it would be written out, so then these mappings are skipped.
///
/// `MADV_RANDOM` (no readahead) before the page-out was tried: idle RSS came out the same, and
/// the first call after the release took 22–26 ms instead of 16–21 (each page read alone).
public enum StartupPages {
    /// `MADV_PAGEOUT` from linux/mman.h (Glibc's headers may lack it).
    static let pageOut: Int32 = 21

    /// Releases them a second from now, on a thread of its own: reclaiming takes milliseconds,
    /// and the first requests (which fault some pages back in) must not wait for it.
    public static func releaseSoon() {
        NativeThread.start(stackSize: 256 * 1024) {
            usleep(1_000_000)
            release()
        }
    }

    /// Asks the kernel to reclaim this process's file-backed mappings; returns how many mappings
    /// it asked for (0 where the kernel refuses, which is harmless).
    @discardableResult
    public static func release() -> Int {
        guard let file = fopen("/proc/self/maps", "r") else { return 0 }
        defer { fclose(file) }
        let includeWritable = !machineHasSwap()
        var line = [CChar](repeating: 0, count: 4096)
        var released = 0
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // start-end perms offset dev inode path
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5].hasPrefix("/") else { continue }
            let permissions = fields[1]
            // Shared writable mappings write back to their file: never theirs to drop.
            guard !permissions.contains("w") || (includeWritable && permissions.hasSuffix("p")) else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                end > start, let address = UnsafeMutableRawPointer(bitPattern: start)
            else { continue }
            if madvise(address, Int(end - start), pageOut) == 0 { released += 1 }
        }
        return released
    }

    /// Whether /proc/meminfo says the machine has swap (true when it cannot be read, to be safe).
    public static func machineHasSwap() -> Bool {
        guard let file = fopen("/proc/meminfo", "r") else { return true }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("SwapTotal:") else { continue }
            let kilobytes = text.dropFirst("SwapTotal:".count).split(separator: " ").first.flatMap { Int($0) }
            return kilobytes.map { $0 > 0 } ?? true
        }
        return true
    }
}
