import FuncdCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Tells when the function's code changed. A ConfigMap update swaps the `..data` symlink of the
/// volume atomically, so its target names the version; with `--watch` (local work) the newest
/// modification time of the folder's files, in every subfolder, does. Polled: a second is soon
/// enough for a ConfigMap (the kubelet itself syncs every minute or so), and nothing else is
/// needed.
///
/// The walk skips hidden entries (`.git`, `.venv`, the ConfigMap's own `..` folders),
/// `__pycache__` and `node_modules` (an install writes thousands of files, and a reload halfway
/// through would load half of them), follows no symlinked folder (no loops), and looks at no
/// more than `FUNC_WATCH_MAX_FILES` entries: a home folder served by mistake costs a bounded
/// walk twice a second and one warning, not a stalled supervisor.
final class CodeWatcher {
    let directory: String
    let watchFiles: Bool
    let maximumEntries: Int
    private let logger: Logger
    private var warnedOfLimit = false

    init(directory: String, watchFiles: Bool, maximumEntries: Int, logger: Logger) {
        self.directory = directory
        self.watchFiles = watchFiles
        self.maximumEntries = maximumEntries
        self.logger = logger
    }

    /// The current version of the code; nil when it cannot be told (no `..data`, no --watch).
    func version() -> String? {
        var parts: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("\(directory)/..data", &buffer, buffer.count - 1)
        if length > 0 {
            parts.append(String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        if watchFiles {
            var walk = Walk(budget: maximumEntries)
            walk.visit(directory)
            parts.append(String(walk.newest))
            if walk.budget < 0 && !warnedOfLimit {
                warnedOfLimit = true
                logger.warning(
                    "--watch looks at the first FUNC_WATCH_MAX_FILES entries of the code folder only; later ones are not watched",
                    metadata: ["funcd.watch.max_files": "\(maximumEntries)", "funcd.code": "\(directory)"])
            }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "|")
    }

    /// One walk of the tree, breadth first so that the folder's own files are always within the
    /// budget: the newest modification time seen.
    private struct Walk {
        var budget: Int
        var newest = 0

        mutating func visit(_ top: String) {
            var folders = [top]
            var next = 0
            while next < folders.count, budget >= 0 {
                let folder = folders[next]
                next += 1
                guard let stream = opendir(folder) else { continue }
                defer { closedir(stream) }
                while let entry = readdir(stream) {
                    let name = withUnsafePointer(to: entry.pointee.d_name) {
                        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                    }
                    if name.hasPrefix(".") || name == "__pycache__" || name == "node_modules" { continue }
                    budget -= 1
                    guard budget >= 0 else { break }
                    let path = "\(folder)/\(name)"
                    var info = stat()
                    guard lstat(path, &info) == 0 else { continue }
                    if (info.st_mode & S_IFMT) == S_IFDIR {
                        folders.append(path)
                        continue
                    }
                    // A symlink counts by what it points to (a ConfigMap's files are symlinks);
                    // one to a folder is not followed, so the walk has no loops.
                    if (info.st_mode & S_IFMT) == S_IFLNK, stat(path, &info) != 0 || (info.st_mode & S_IFMT) == S_IFDIR {
                        continue
                    }
                    newest = max(newest, Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec))
                }
            }
        }
    }
}
