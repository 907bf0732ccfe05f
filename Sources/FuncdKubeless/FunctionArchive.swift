import CZlib

/// The files of a Function whose code kubeless stored as an archive (`+zip`, `+compressedtar`):
/// a zip (stored or deflated entries) or a tar (plain or gzip'd). bzip2 and xz tars, which
/// kubeless's prepare step also unpacked, are refused with a line saying so.
///
/// Everything is bounded by `limit` bytes unpacked (a ConfigMap holds 1 MiB in all, so nothing
/// larger could be deployed anyway): a zip bomb stops there. Paths must stay inside the code
/// folder (no `..`, not absolute); folders are kept as the files' relative paths.
enum FunctionArchive {
    /// A ConfigMap's limit.
    static let limit = 1024 * 1024

    static func unpack(_ bytes: [UInt8], zip: Bool, function: String) throws(ConversionError) -> [(name: String, bytes: [UInt8])] {
        let files = zip ? try unzip(bytes, function: function) : try untar(bytes, function: function)
        guard !files.isEmpty else { throw ConversionError("Function \(function): the archive holds no file") }
        return files
    }

    // MARK: - zip

    static func unzip(_ bytes: [UInt8], function: String) throws(ConversionError) -> [(name: String, bytes: [UInt8])] {
        func fail(_ why: String) -> ConversionError { ConversionError("Function \(function): the zip archive \(why)") }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        // The end of central directory record: the last signature within its comment's reach.
        guard bytes.count >= 22 else { throw fail("is too short") }
        var end = -1
        for at in stride(from: bytes.count - 22, through: max(0, bytes.count - 22 - 65535), by: -1)
        where u32(at) == 0x0605_4b50 {
            end = at
            break
        }
        guard end >= 0 else { throw fail("has no end of central directory (not a zip)") }
        let count = u16(end + 10)
        var at = u32(end + 16)
        var files: [(name: String, bytes: [UInt8])] = []
        var total = 0
        for _ in 0..<count {
            guard at + 46 <= bytes.count, u32(at) == 0x0201_4b50 else { throw fail("has a broken central directory") }
            let method = u16(at + 10)
            let compressed = u32(at + 20)
            let size = u32(at + 24)
            let nameLength = u16(at + 28)
            let skip = nameLength + u16(at + 30) + u16(at + 32)
            let local = u32(at + 42)
            guard at + 46 + nameLength <= bytes.count else { throw fail("has a broken central directory") }
            let name = String(decoding: bytes[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            at += 46 + skip
            if name.hasSuffix("/") { continue }
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4b50 else { throw fail("has a broken entry \(name)") }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + compressed <= bytes.count else { throw fail("is cut short in \(name)") }
            total += size
            guard total <= limit else { throw fail("unpacks to more than a ConfigMap's \(limit) bytes") }
            let data = Array(bytes[start..<(start + compressed)])
            let content: [UInt8]
            switch method {
            case 0: content = data
            case 8:
                guard let inflated = inflate(data, windowBits: -15, limit: size), inflated.count == size else {
                    throw fail("has a damaged entry \(name)")
                }
                content = inflated
            default: throw fail("compresses \(name) with method \(method) (only stored and deflated are read)")
            }
            files.append((try safePath(name, function: function), content))
        }
        return files
    }

    // MARK: - tar

    static func untar(_ archive: [UInt8], function: String) throws(ConversionError) -> [(name: String, bytes: [UInt8])] {
        func fail(_ why: String) -> ConversionError { ConversionError("Function \(function): the tar archive \(why)") }
        var bytes = archive
        if bytes.starts(with: [0x1F, 0x8B]) {
            guard let inflated = inflate(bytes, windowBits: 15 + 16, limit: limit + 512 * 1024) else {
                throw fail("is damaged gzip, or unpacks to more than a ConfigMap's \(limit) bytes")
            }
            bytes = inflated
        } else if bytes.starts(with: Array("BZh".utf8)) || bytes.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
            throw fail("is compressed with bzip2 or xz, which funcd does not read: repack it as .tar.gz or .zip")
        }
        var files: [(name: String, bytes: [UInt8])] = []
        var total = 0
        var at = 0
        while at + 512 <= bytes.count {
            let header = bytes[at..<(at + 512)]
            if header.allSatisfy({ $0 == 0 }) { break }
            func field(_ offset: Int, _ length: Int) -> String {
                let slice = bytes[(at + offset)..<(at + offset + length)]
                return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let size = Int(field(124, 12).filter { $0 != " " }, radix: 8) else {
                throw fail("has a broken header")
            }
            let type = bytes[at + 156]
            let prefix = field(345, 155)
            let name = prefix.isEmpty ? field(0, 100) : "\(prefix)/\(field(0, 100))"
            let start = at + 512
            guard start + size <= bytes.count else { throw fail("is cut short in \(name)") }
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                // Some writers mark a folder as an empty file whose name ends in a slash.
                if name.hasSuffix("/") && size == 0 { break }
                total += size
                guard total <= limit else { throw fail("unpacks to more than a ConfigMap's \(limit) bytes") }
                files.append((try safePath(name, function: function), Array(bytes[start..<(start + size)])))
            case UInt8(ascii: "5"), UInt8(ascii: "g"), UInt8(ascii: "x"):
                break  // folders and pax headers
            default:
                throw fail("holds \(name), which is not a regular file (a link, a device or a long name)")
            }
            at = start + (size + 511) / 512 * 512
        }
        return files
    }

    // MARK: - Common

    /// `name` relative to the code folder, without `./`; refused when it would leave it.
    static func safePath(_ name: String, function: String) throws(ConversionError) -> String {
        let parts = name.split(separator: "/").filter { $0 != "." }
        guard !name.hasPrefix("/"), !parts.isEmpty, !parts.contains("..") else {
            throw ConversionError("Function \(function): the archive holds \(name), outside the code folder")
        }
        return parts.joined(separator: "/")
    }

    /// zlib's inflate over all of `input`; nil when it is damaged or passes `limit` bytes.
    static func inflate(_ input: [UInt8], windowBits: Int32, limit: Int) -> [UInt8]? {
        var stream = z_stream()
        guard funcd_inflate_init(&stream, windowBits) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        return input.withUnsafeMutableBufferPointer { source -> [UInt8]? in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = UInt32(buffer.count)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                output.append(contentsOf: chunk[0..<produced])
                if output.count > limit { return nil }
                switch status {
                case Z_STREAM_END: return output
                case Z_OK: if stream.avail_in == 0 && produced == 0 { return nil }
                default: return nil
                }
            }
        }
    }
}
