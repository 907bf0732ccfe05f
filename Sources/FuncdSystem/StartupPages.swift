#if canImport(Glibc)
import Glibc
#endif

/// Gives back the pages of code and data that only start-up touched.
///
/// An interpreter's start-up (V8's bootstrap, ICU, CPython's imports) runs through far more of
/// its shared libraries than serving does, and the kernel maps file pages in 64 KiB runs around
/// each fault. Those clean, file-backed pages stay resident, and counted in the pod's RSS, until
/// memory runs short. Once the worker serves, they leave its page tables (see `release`); the
/// ones serving needs fault back in on first use, from the page cache.
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
        trimAllocator()
        let includeWritable = !machineHasSwap()
        var released = 0
        for mapping in fileMappings() {
            // Shared writable mappings write back to their file: never theirs to drop.
            guard !mapping.writable || (includeWritable && mapping.isPrivate) else { continue }
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            let length = Int(mapping.end - mapping.start)
            // A read-only mapping with no anonymous (copied-on-write) page holds only the file's
            // own pages: dropping them from this process's page tables takes them out of its RSS
            // and leaves them in the page cache, where the next start of the same binary (a
            // worker the supervisor replaces, the next pod on the node) finds them. MADV_PAGEOUT
            // would have evicted them: a bench cold start of funcd-node read back 4.6 MiB of
            // libnode the previous one had paged out, and took 100-210 ms against 98-157. It
            // also skips a large folio it would have to split, which readahead makes.
            if !mapping.writable && mapping.anonymousKiB == 0 {
                if madvise(address, length, MADV_DONTNEED) == 0 { released += 1 }
                continue
            }
            // Elsewhere (such as the relocated RELRO segment, whose pages would come back
            // unrelocated) only reclaiming the clean file pages is safe.
            if madvise(address, length, pageOut) == 0 { released += 1 }
        }
        return released
    }

    /// One file-backed mapping of this process, from /proc/self/smaps.
    struct FileMapping {
        var start: UInt
        var end: UInt
        var writable: Bool
        var isPrivate: Bool
        var anonymousKiB: Int
    }

    /// This process's file-backed mappings, with how much of each is anonymous.
    static func fileMappings() -> [FileMapping] {
        var mappings: [FileMapping] = []
        var current: FileMapping?
        MappingLine.forEachLine(of: "/proc/self/smaps") { text in
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { return true }
            if !first.hasSuffix(":") {
                // A mapping's first line: start-end perms offset dev inode path
                if let done = current { mappings.append(done) }
                current = nil
                guard let mapping = MappingLine(text), mapping.path != nil else { return true }
                current = FileMapping(
                    start: mapping.start, end: mapping.end, writable: mapping.permissions.contains("w"),
                    isPrivate: mapping.permissions.hasSuffix("p"), anonymousKiB: 0)
            } else if first == "Anonymous:", fields.count >= 2, current != nil {
                // Unknown means "may have some": never dropped.
                current?.anonymousKiB = Int(fields[1]) ?? 1
            }
            return true
        }
        if let done = current { mappings.append(done) }
        return mappings
    }

    /// What start-up freed to the C allocator stays resident in the middle of its arenas (free()
    /// only gives back an arena's top); glibc's malloc_trim(0) returns those pages too. Looked up
    /// at run time: Swift's Glibc module leaves malloc.h out.
    static func trimAllocator() {
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(nil, "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
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
