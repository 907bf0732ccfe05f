import FuncdCore
import FuncdSystem
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// One access-log line per request on stdout (Apache combined, as the kubeless runtimes wrote,
/// or JSON), buffered per event loop and written once per tick so that logging costs one
/// `write` per batch of requests rather than one per request.
///
/// `@unchecked Sendable`: one instance per event loop, used only on it.
final class AccessLog: @unchecked Sendable {
    let format: Configuration.AccessLogFormat
    private let eventLoop: any EventLoop
    private var buffer: [UInt8] = []
    private var flushScheduled = false
    private var cachedSecond = -1
    private var cachedTime = ""

    init(format: Configuration.AccessLogFormat, eventLoop: any EventLoop) {
        self.format = format
        self.eventLoop = eventLoop
        buffer.reserveCapacity(4096)
    }

    func record(
        remote: String, head: HTTPRequestHead, status: Int, bytes: Int, nanoseconds: UInt64, trace: CallTrace? = nil
    ) {
        guard format != .off else { return }
        Self.appendLine(
            format, time: timestamp(), remote: remote, head: head, status: status, bytes: bytes,
            nanoseconds: nanoseconds, trace: trace, to: &buffer)
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.execute { [self] in flush() }
    }

    /// One line of `format` (not `.off`) for a request answered at `time`.
    static func appendLine(
        _ format: Configuration.AccessLogFormat, time: String, remote: String, head: HTTPRequestHead, status: Int,
        bytes: Int, nanoseconds: UInt64, trace: CallTrace?, to buffer: inout [UInt8]
    ) {
        switch format {
        case .off:
            return
        case .combined:
            // Quoted fields are escaped as nginx escapes them: a client cannot end a field early
            // or start a line of its own.
            // Piece by piece: an interpolated line would be a String on the heap per request.
            buffer.append(contentsOf: remote.utf8)
            buffer.append(contentsOf: " - - [".utf8)
            buffer.append(contentsOf: time.utf8)
            buffer.append(contentsOf: "] \"".utf8)
            appendEscaped(head.method.rawValue, to: &buffer)
            buffer.append(UInt8(ascii: " "))
            appendEscaped(head.uri, to: &buffer)
            buffer.append(contentsOf: " HTTP/".utf8)
            forEachDecimalDigit(of: Int(head.version.major)) { buffer.append($0) }
            buffer.append(UInt8(ascii: "."))
            forEachDecimalDigit(of: Int(head.version.minor)) { buffer.append($0) }
            buffer.append(contentsOf: "\" ".utf8)
            forEachDecimalDigit(of: status) { buffer.append($0) }
            buffer.append(UInt8(ascii: " "))
            forEachDecimalDigit(of: bytes) { buffer.append($0) }
            buffer.append(contentsOf: " \"".utf8)
            appendEscaped(head.headers.first(name: "referer") ?? "-", to: &buffer)
            buffer.append(contentsOf: "\" \"".utf8)
            appendEscaped(head.headers.first(name: "user-agent") ?? "-", to: &buffer)
            buffer.append(contentsOf: "\"\n".utf8)
        case .json:
            var line = "{\"time\":\"\(time)\",\"remote\":"
            appendJSONString(remote, to: &line)
            line += ",\"method\":"
            appendJSONString(head.method.rawValue, to: &line)
            line += ",\"path\":"
            appendJSONString(head.uri, to: &line)
            line += ",\"status\":\(status),\"bytes\":\(bytes),\"duration_ms\":\(Double(nanoseconds / 1000) / 1000)"
            line += ",\"user_agent\":"
            appendJSONString(head.headers.first(name: "user-agent") ?? "", to: &line)
            if let trace {
                // Hex digits only: nothing to escape.
                line += ",\"trace_id\":\"\(trace.traceIDText)\",\"span_id\":\"\(trace.spanIDText)\""
            }
            line += "}\n"
            buffer.append(contentsOf: line.utf8)
        }
    }

    private func flush() {
        flushScheduled = false
        DescriptorOutput.writeAll(1, buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// `21/Nov/2026:10:00:00 +0000`, formatted once per second.
    private func timestamp() -> String {
        var now = time(nil)
        guard now != cachedSecond else { return cachedTime }
        cachedSecond = now
        var parts = tm()
        gmtime_r(&now, &parts)
        var text = [CChar](repeating: 0, count: 64)
        let length = strftime(&text, text.count, "%d/%b/%Y:%H:%M:%S +0000", &parts)
        cachedTime = String(decoding: text[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cachedTime
    }

    /// Appends `text` for a quoted field of the combined format: `"`, `\\`, control bytes and
    /// bytes beyond ASCII become `\\xHH`, as nginx writes them.
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    static func appendEscaped(_ text: String, to line: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            // Runs of plain bytes (nearly every field) are appended whole, not byte by byte.
            var plainFrom = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte < 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                    continue
                }
                line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom..<index]))
                line.append(UInt8(ascii: "\\"))
                line.append(UInt8(ascii: "x"))
                line.append(hexDigits[Int(byte >> 4)])
                line.append(hexDigits[Int(byte & 15)])
                plainFrom = index + 1
            }
            line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[plainFrom...]))
        }
    }
}
