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

/// Decides the default content type of `funcd invoke` data: JSON when it is a JSON document.
/// A light check (balanced, well-formed start and end) is enough here, since the handler's own
/// JSON parser is the judge and answers 400 otherwise.
enum JSONSniffer {
    static func looksLikeJSON(_ bytes: [UInt8]) -> Bool {
        let trimmed = bytes.drop { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
        guard let first = trimmed.first,
            let last = trimmed.reversed().first(where: { !($0 == 32 || $0 == 9 || $0 == 10 || $0 == 13) })
        else { return false }
        switch (first, last) {
        case (UInt8(ascii: "{"), UInt8(ascii: "}")), (UInt8(ascii: "["), UInt8(ascii: "]")),
            (UInt8(ascii: "\""), UInt8(ascii: "\"")):
            return true
        default:
            let text = String(decoding: trimmed, as: UTF8.self).trimmingSpaces
            return text == "true" || text == "false" || text == "null" || Double(text) != nil
        }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(self.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
