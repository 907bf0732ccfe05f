import FuncdSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Giving back the pages only start-up touched")
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
