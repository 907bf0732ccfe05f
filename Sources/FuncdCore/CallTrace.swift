import Logging
import W3CTraceContext

/// A call's place in a distributed trace (W3C Trace Context): the caller's trace continued with a
/// span of funcd's own for the call, or a new trace when the caller sent none (or an invalid one).
///
/// The handler gets ``traceparent`` and ``tracestate`` to put on the requests it makes, so they
/// become children of the call's span; Kafka replies and dead letters carry them, and funcd's log
/// lines about the call name ``traceIDText`` and ``spanIDText``.
public struct CallTrace: Sendable {
    /// The call's span: the trace id, funcd's new span id, the flags and the vendors' state.
    public let context: TraceContext
    /// The caller's span, when the request carried a valid `traceparent`.
    public let parentSpanID: SpanID?

    /// At most this many bytes of `tracestate` are read and passed on, cut at whole members (the
    /// specification asks that at least 512 be propagated, and allows cutting whole members).
    public static let stateByteLimit = 512
    /// At most this many `tracestate` members (the specification's limit).
    public static let stateMemberLimit = 32

    /// Flags of a trace funcd starts: sampled (so that a handler's tracer, which follows its
    /// parent's decision by default, records as it would at a root), and random (the trace id is
    /// random, trace context level 2).
    static let newTraceFlags = TraceFlags(rawValue: 0x03)

    /// The trace of a call that received `traceparent` and `tracestate` (each nil when absent;
    /// repeated `tracestate` fields joined with commas first). An invalid `traceparent` starts a
    /// new trace and drops `tracestate`, as the specification asks; an invalid `tracestate` alone
    /// is dropped.
    public init(traceparent: String?, tracestate: String?) {
        var random = SharedRandomGenerator()
        if let traceparent, let parent = Self.parse(traceparent, state: tracestate) {
            context = TraceContext(
                traceID: parent.traceID, spanID: SpanID.random(using: &random),
                flags: TraceFlags(rawValue: parent.flags.rawValue & 0x03), state: parent.state)
            parentSpanID = parent.spanID
        } else {
            // Both ids from one draw of the shared generator (one lock, not three).
            var drawn = RandomBits.shared.next192()
            let traceID = withUnsafeBytes(of: &drawn) { TraceID(bytes: $0.loadUnaligned(as: TraceID.Bytes.self)) }
            let spanID = withUnsafeBytes(of: &drawn.2) { SpanID(bytes: $0.loadUnaligned(as: SpanID.Bytes.self)) }
            context = TraceContext(traceID: traceID, spanID: spanID, flags: Self.newTraceFlags, state: TraceState())
            parentSpanID = nil
        }
    }

    /// A new trace.
    public static func start() -> CallTrace { CallTrace(traceparent: nil, tracestate: nil) }

    /// `traceparent` to send onward: this call's span as the parent. The same text as the
    /// library's `traceParentHeaderValue` (a unit test holds them equal), written straight into
    /// one 55-byte string: every call makes one, and the library's interpolation of three
    /// descriptions cost a tenth of a hello call's glue.
    public var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { text in
            let digits: StaticString = "0123456789abcdef"
            var at = 0
            func put(_ byte: UInt8) {
                text[at] = digits.utf8Start[Int(byte >> 4)]
                text[at + 1] = digits.utf8Start[Int(byte & 0x0F)]
                at += 2
            }
            func dash() {
                text[at] = UInt8(ascii: "-")
                at += 1
            }
            put(0)
            dash()
            withUnsafeBytes(of: context.traceID.bytes) { for byte in $0 { put(byte) } }
            dash()
            withUnsafeBytes(of: context.spanID.bytes) { for byte in $0 { put(byte) } }
            dash()
            put(context.flags.rawValue)
            return at
        }
    }
    /// `tracestate` to send onward, nil when empty.
    public var tracestate: String? { context.traceStateHeaderValue }
    /// The trace id, 32 lowercase hex digits.
    public var traceIDText: String { context.traceID.description }
    /// The call's span id, 16 lowercase hex digits.
    public var spanIDText: String { context.spanID.description }

    /// The trace and span, under the names funcd's log lines give them (`trace_id`, `span_id`).
    public var logMetadata: Logger.Metadata {
        [LogKeys.traceID: "\(traceIDText)", LogKeys.spanID: "\(spanIDText)"]
    }

    /// The received context, or nil when `traceparent` is not one this version can read.
    static func parse(_ traceparent: String, state: String?) -> TraceContext? {
        var parent = traceparent
        let bytes = traceparent.utf8
        guard bytes.count >= 55 else { return nil }
        if !bytes.starts(with: "00".utf8) {
            // A later version: read as version 00 from its first four fields, if what follows
            // them is a new field (specification §3.2.4). Version ff is invalid.
            let version = bytes.prefix(2)
            guard version.allSatisfy({ $0.isLowercaseHexDigit }), !version.elementsEqual("ff".utf8),
                bytes.count == 55 || bytes[bytes.index(bytes.startIndex, offsetBy: 55)] == UInt8(ascii: "-")
            else { return nil }
            parent = "00" + String(decoding: bytes.dropFirst(2).prefix(53), as: UTF8.self)
        }
        let stateText = state.flatMap(Self.boundedState)
        if let stateText, let context = try? TraceContext(
            traceParentHeaderValue: parent, traceStateHeaderValue: stateText)
        {
            return context
        }
        return try? TraceContext(traceParentHeaderValue: parent)
    }

    /// `tracestate` cut to ``stateByteLimit`` bytes and ``stateMemberLimit`` members at whole
    /// members (empty members, which the specification allows, are dropped); nil when nothing is
    /// left. Bounds the parser's work as well as what is passed on.
    static func boundedState(_ text: String) -> String? {
        guard text.utf8.count > stateByteLimit || text.utf8.contains(UInt8(ascii: ",")) else {
            return text.isEmpty ? nil : text
        }
        var kept: [[UInt8]] = []
        var bytes = 0
        for member in text.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
            let trimmed = member.drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed()
                .drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed()
            guard !trimmed.isEmpty else { continue }
            let cost = trimmed.count + (kept.isEmpty ? 0 : 1)
            guard kept.count < stateMemberLimit, bytes + cost <= stateByteLimit else { break }
            kept.append(Array(trimmed))
            bytes += cost
        }
        guard !kept.isEmpty else { return nil }
        return kept.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ",")
    }
}

extension UInt8 {
    var isLowercaseHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
    }
}
