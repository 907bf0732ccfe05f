#if canImport(Glibc)
import Glibc
#endif

/// Tells when the function's code changed. A ConfigMap update swaps the `..data` symlink of the
/// volume atomically, so its target names the version; with `--watch` (local work) the newest
/// modification time of the folder's files does. Polled: a second is soon enough for a
/// ConfigMap (the kubelet itself syncs every minute or so), and nothing else is needed.
struct CodeWatcher {
    let directory: String
    let watchFiles: Bool

    /// The current version of the code; nil when it cannot be told (no `..data`, no --watch).
    func version() -> String? {
        var parts: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("\(directory)/..data", &buffer, buffer.count - 1)
        if length > 0 {
            parts.append(String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        if watchFiles, let newest = newestModification() {
            parts.append(String(newest))
        }
        return parts.isEmpty ? nil : parts.joined(separator: "|")
    }

    private func newestModification() -> Int? {
        guard let folder = opendir(directory) else { return nil }
        defer { closedir(folder) }
        var newest = 0
        while let entry = readdir(folder) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name.hasPrefix(".") || name == "__pycache__" { continue }
            var info = stat()
            guard stat("\(directory)/\(name)", &info) == 0 else { continue }
            let nanoseconds = Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
            newest = max(newest, nanoseconds)
        }
        return newest
    }
}
