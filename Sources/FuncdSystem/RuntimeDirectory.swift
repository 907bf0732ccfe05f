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

    /// The path of the file mapped at `address`, from /proc/self/maps.
    static func mappedFile(containing address: UInt) -> String? {
        var found: String?
        MappingLine.forEachLine(of: "/proc/self/maps") { text in
            guard let mapping = MappingLine(text), mapping.start <= address && address < mapping.end else { return true }
            found = mapping.path.map(String.init)
            return false
        }
        return found
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
