import FuncdCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the `runtimes/` glue of a language: `FUNCD_RUNTIMES_DIR` when set, else beside the
/// executable (`<bin>/runtimes`, `<bin>/../share/funcd/runtimes`), else in a parent folder of it,
/// which is where a `swift build` in a checkout leaves the binary.
public enum RuntimeDirectory {
    public static func locate(language: String, configured: String?) throws -> String {
        if let configured {
            guard isDirectory("\(configured)/\(language)") else {
                throw FuncdError(.configuration, "FUNCD_RUNTIMES_DIR=\(configured) has no \(language)/ folder")
            }
            return "\(configured)/\(language)"
        }
        var candidates: [String] = []
        var directory = executableDirectory()
        candidates.append("\(directory)/runtimes")
        candidates.append("\(directory)/../share/funcd/runtimes")
        while directory != "/" && !directory.isEmpty {
            directory = parent(of: directory)
            candidates.append("\(directory)/runtimes")
        }
        for candidate in candidates where isDirectory("\(candidate)/\(language)") {
            return "\(candidate)/\(language)"
        }
        throw FuncdError(
            .configuration,
            "cannot find funcd's \(language) runtime glue (runtimes/\(language)) beside \(executableDirectory()); set FUNCD_RUNTIMES_DIR"
        )
    }

    /// The folder of the file this code was loaded from: the running executable, or the library
    /// it is part of (funcd-python's worker, which python3 loads), whose mapping in
    /// /proc/self/maps holds `#dsohandle`. Falls back to /proc/self/exe.
    public static func executableDirectory() -> String {
        if let library = mappedFile(containing: UInt(bitPattern: #dsohandle)) { return parent(of: library) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "." }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return parent(of: path)
    }

    /// The path of the file mapped at `address`, from lines of the form
    /// `start-end perms offset device inode path`.
    static func mappedFile(containing address: UInt) -> String? {
        let descriptor = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            text += chunk[0..<count]
        }
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6 else { continue }
            let path = fields[5].drop { $0 == UInt8(ascii: " ") }
            guard path.first == UInt8(ascii: "/") else { continue }
            let range = fields[0].split(separator: UInt8(ascii: "-"))
            guard range.count == 2,
                let start = UInt(String(decoding: range[0], as: UTF8.self), radix: 16),
                let end = UInt(String(decoding: range[1], as: UTF8.self), radix: 16),
                start <= address && address < end
            else { continue }
            return String(decoding: path, as: UTF8.self)
        }
        return nil
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}
