#if canImport(Glibc)
import Glibc
#endif

/// One mapping of this process as /proc/self/maps lists it (and as the first line of each
/// mapping in /proc/self/smaps): `start-end perms offset device inode [path]`.
struct MappingLine {
    var start: UInt
    var end: UInt
    var permissions: Substring
    /// The mapped file, when the mapping is of one (an absolute path, spaces kept).
    var path: Substring?

    init?(_ line: String) {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5 else { return nil }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start
        else { return nil }
        self.start = start
        self.end = end
        permissions = fields[1]
        let file = fields.count == 6 ? fields[5].drop { $0 == " " }.prefix { $0 != "\n" } : ""
        path = file.hasPrefix("/") ? file : nil
    }

    /// Calls `body` with each line of the file at `path` (a /proc file) until it returns false.
    static func forEachLine(of path: String, _ body: (String) -> Bool) {
        guard let file = fopen(path, "r") else { return }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !body(text) { return }
        }
    }
}
