import FuncdSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Giving back the pages only start-up touched", .serialized)
struct StartupPagesTests {
    struct Probe { var name: String; var sizes: [Int] }

    /// Resident KiB of this process's file-backed mappings, read-only ones and private writable
    /// ones apart, from /proc/self/smaps.
    static func residentFileKiB() throws -> (readOnly: Int, writable: Int) {
        let file = try #require(fopen("/proc/self/smaps", "r"))
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 4096)
        var readOnly = 0
        var writable = 0
        var current: Bool?  // nil: not a file mapping; true: private writable
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5, first.first?.isHexDigit == true {
                let permissions = fields[1]
                if fields.count < 6 || !fields[5].hasPrefix("/") {
                    current = nil
                } else if permissions.contains("w") {
                    current = permissions.hasSuffix("p") ? true : nil  // shared writable: not counted
                } else {
                    current = false
                }
            } else if text.hasPrefix("Rss:"), let writableMapping = current {
                let kib = Int(fields[1]) ?? 0
                if writableMapping { writable += kib } else { readOnly += kib }
            }
        }
        return (readOnly, writable)
    }

    @Test("release() drops resident file pages (and the never-written data pages without swap), and the code runs on")
    func releaseDropsPages() throws {
        let before = try Self.residentFileKiB()
        let mappings = StartupPages.release()
        let after = try Self.residentFileKiB()
        #expect(mappings > 0)
        // The test runner's own code stays mapped by other test threads, so not all of it goes;
        // a test binary of tens of MiB keeps far less than it had.
        #expect(after.readOnly < before.readOnly, "read-only file pages: \(before.readOnly) KiB before, \(after.readOnly) KiB after")
        if try !Self.swapInUse() {
            #expect(after.writable < before.writable, "writable file pages: \(before.writable) KiB before, \(after.writable) KiB after")
        }
        // What was dropped faults back in, and what must not be dropped was not: the relocated
        // (read-only, copied-on-write) segments hold the metadata that printing a value and a
        // dynamic cast read, which would crash here had their pages come back from the file.
        #expect(String(repeating: "ab", count: 3).uppercased() == "ABABAB")
        let boxed: Any = Self.Probe(name: "p", sizes: [1, 2])
        #expect(String(describing: boxed) == #"Probe(name: "p", sizes: [1, 2])"#)
        #expect((boxed as? CustomStringConvertible) == nil)
    }

    /// How many pages of the file at `path` are in the page cache: mincore over a mapping of our
    /// own, whose page tables are empty, so that it answers for the cache.
    static func cachedPages(of path: String) throws -> Int {
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0, "open \(path)")
        defer { close(descriptor) }
        var status = stat()
        try #require(fstat(descriptor, &status) == 0)
        let length = Int(status.st_size)
        let mapping = try #require(mmap(nil, length, PROT_READ, MAP_SHARED, descriptor, 0))
        try #require(mapping != MAP_FAILED)
        defer { munmap(mapping, length) }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var resident = [UInt8](repeating: 0, count: (length + pageSize - 1) / pageSize)
        try #require(mincore(mapping, length, &resident) == 0, "mincore: \(String(cString: strerror(errno)))")
        return resident.reduce(0) { $0 + Int($1 & 1) }
    }

    @Test("release() takes a library's pages out of the process, not out of the page cache, for the next start")
    func releaseKeepsThePageCache() throws {
        // A file standing in for a shared library, its pages faulted in one by one (so that they
        // are cached as small folios, which MADV_PAGEOUT evicts; it skips the large ones that
        // readahead makes). Beside the test binary: /tmp may be a tmpfs, which has no page cache
        // to keep.
        let path = "\(try Self.folderOfThisBinary())/funcd-startup-pages-\(getpid())"
        let length = 4 << 20
        let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        try #require(descriptor >= 0)
        defer {
            close(descriptor)
            unlink(path)
        }
        let chunk = [UInt8](repeating: 0x5a, count: 64 << 10)
        for _ in 0..<(length / chunk.count) { try #require(write(descriptor, chunk, chunk.count) == chunk.count) }
        try #require(fsync(descriptor) == 0)
        try #require(posix_fadvise(descriptor, 0, off_t(length), POSIX_FADV_DONTNEED) == 0)
        let mapping = try #require(mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, 0))
        try #require(mapping != MAP_FAILED)
        defer { munmap(mapping, length) }
        try #require(madvise(mapping, length, MADV_RANDOM) == 0)
        var sum = 0
        for offset in stride(from: 0, to: length, by: 4096) { sum &+= Int(mapping.load(fromByteOffset: offset, as: UInt8.self)) }
        #expect(sum == 0x5a * (length / 4096))
        let before = try Self.cachedPages(of: path)

        StartupPages.release()

        let after = try Self.cachedPages(of: path)
        #expect(before == length / 4096)
        #expect(after == before, "\(before) pages cached before the release, \(after) after")
        #expect(mapping.load(fromByteOffset: length - 1, as: UInt8.self) == 0x5a)
    }

    static func folderOfThisBinary() throws -> String {
        let resolved = try #require(realpath("/proc/self/exe", nil))
        defer { free(resolved) }
        let path = String(cString: resolved)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }

    /// Whether /proc/swaps lists a swap area (a line past its header).
    static func swapInUse() throws -> Bool {
        let file = try #require(fopen("/proc/swaps", "r"))
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 1024)
        var lines = 0
        while fgets(&line, Int32(line.count), file) != nil { lines += 1 }
        return lines > 1
    }

    @Test("the swap check (/proc/meminfo) agrees with the swap areas in /proc/swaps")
    func swapCheck() throws {
        #expect(StartupPages.machineHasSwap() == (try Self.swapInUse()))
    }
}
