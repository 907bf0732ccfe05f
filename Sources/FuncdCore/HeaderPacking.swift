/// How headers cross to a language's C side and back: one buffer of names and values, each
/// followed by a NUL (`name\0value\0...`), so no per-header allocation is needed on either side.
/// Names going to a handler are lower-cased (node's and Rack's conventions start from that).
public enum HeaderPacking {
    public static func pack(_ headers: [(String, String)], into buffer: inout [UInt8]) {
        for (name, value) in headers {
            for byte in name.utf8 {
                buffer.append(byte >= 65 && byte <= 90 ? byte | 0x20 : byte)
            }
            buffer.append(0)
            buffer.append(contentsOf: value.utf8)
            buffer.append(0)
        }
    }

    public static func unpack(_ bytes: UnsafeRawBufferPointer) -> [(String, String)] {
        guard !bytes.isEmpty else { return [] }
        var fields: [String] = []
        var start = 0
        for index in 0..<bytes.count where bytes[index] == 0 {
            fields.append(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
            start = index + 1
        }
        var headers: [(String, String)] = []
        headers.reserveCapacity(fields.count / 2)
        var index = 0
        while index + 1 < fields.count {
            headers.append((fields[index], fields[index + 1]))
            index += 2
        }
        return headers
    }
}
