import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads `--data-file` (a path, or `-` for standard input).
enum InputFile {
    static func read(_ path: String) throws -> [UInt8] {
        let descriptor = path == "-" ? 0 : open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw FuncdError(.configuration, "\(path): cannot read the data file (\(String(cString: strerror(errno))))")
        }
        defer { if descriptor != 0 { close(descriptor) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw FuncdError(.configuration, "\(path): read failed (\(String(cString: strerror(errno))))")
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }
}
