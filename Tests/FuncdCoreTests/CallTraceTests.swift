import Testing

@testable import FuncdCore

@Suite("Call trace: W3C traceparent and tracestate continued, or a trace started")
struct CallTraceTests {
    static let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    /// `00-<32 hex>-<16 hex>-<2 hex>`, lowercase.
    static func isWellFormed(_ header: String) -> Bool {
        let parts = header.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "00" && parts[1].count == 32 && parts[2].count == 16 && parts[3].count == 2
            && parts.dropFirst().allSatisfy { $0.utf8.allSatisfy(\.isLowercaseHexDigit) }
    }

    @Test("a valid traceparent is continued: same trace and flags, a new span whose parent is the caller's")
    func continued() {
        let trace = CallTrace(traceparent: Self.parent, tracestate: "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
        #expect(trace.traceIDText == "0af7651916cd43dd8448eb211c80319c")
        #expect(trace.parentSpanID?.description == "b7ad6b7169203331")
        #expect(trace.spanIDText != "b7ad6b7169203331")
        #expect(trace.traceparent == "00-0af7651916cd43dd8448eb211c80319c-\(trace.spanIDText)-01")
        #expect(trace.tracestate == "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
    }

    @Test("the fast traceparent is the library's, for started and continued traces")
    func formatting() {
        for _ in 0..<1000 {
            let started = CallTrace.start()
            #expect(started.traceparent == started.context.traceParentHeaderValue)
            let continued = CallTrace(traceparent: started.traceparent, tracestate: nil)
            #expect(continued.traceparent == continued.context.traceParentHeaderValue)
        }
    }

    @Test("each call gets its own span")
    func spansDiffer() {
        let spans = Set((0..<100).map { _ in CallTrace(traceparent: Self.parent, tracestate: nil).spanIDText })
        #expect(spans.count == 100)
    }

    @Test("no traceparent: a new trace, sampled and marked random")
    func started() {
        let first = CallTrace.start()
        let second = CallTrace.start()
        #expect(Self.isWellFormed(first.traceparent), "\(first.traceparent)")
        #expect(first.traceparent.hasSuffix("-03"))
        #expect(first.traceIDText != second.traceIDText)
        #expect(first.parentSpanID == nil)
        #expect(first.tracestate == nil)
    }

    @Test(
        "an invalid traceparent starts a new trace and drops tracestate",
        arguments: [
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",  // upper case
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",  // zero trace id
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  // zero span id
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // version ff
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",  // version 00 with more
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",  // short trace id
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",  // delimiters
            "0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // version not hex
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",  // later version, no dash after
            "", "garbage",
        ])
    func invalid(_ header: String) {
        let trace = CallTrace(traceparent: header, tracestate: "rojo=00f067aa0ba902b7")
        #expect(trace.parentSpanID == nil)
        #expect(trace.traceIDText != "0af7651916cd43dd8448eb211c80319c")
        #expect(trace.tracestate == nil)
        #expect(Self.isWellFormed(trace.traceparent))
    }

    @Test("a later version is read from its first four fields and passed on as version 00")
    func laterVersion() {
        for header in [
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds",
        ] {
            let trace = CallTrace(traceparent: header, tracestate: nil)
            #expect(trace.traceIDText == "0af7651916cd43dd8448eb211c80319c", "\(header)")
            #expect(trace.traceparent.hasPrefix("00-0af7651916cd43dd8448eb211c80319c-"))
        }
    }

    @Test("flags beyond sampled and random are not passed on")
    func flags() {
        let trace = CallTrace(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff", tracestate: nil)
        #expect(trace.traceparent.hasSuffix("-03"))
        let unsampled = CallTrace(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", tracestate: nil)
        #expect(unsampled.traceparent.hasSuffix("-00"))
    }

    @Test("an invalid tracestate alone is dropped; the trace goes on")
    func invalidState() {
        let trace = CallTrace(traceparent: Self.parent, tracestate: "UPPER=case")
        #expect(trace.traceIDText == "0af7651916cd43dd8448eb211c80319c")
        #expect(trace.tracestate == nil)
    }

    @Test("tracestate is cut to 512 bytes and 32 members at whole members; empty members go")
    func boundedState() {
        let many = (0..<40).map { "k\($0)=v" }.joined(separator: ",")
        let kept = CallTrace.boundedState(many)!
        #expect(kept.split(separator: ",").count == CallTrace.stateMemberLimit)
        let long = (0..<40).map { "key\($0)=\(String(repeating: "v", count: 30))" }.joined(separator: " , ")
        let cut = CallTrace.boundedState(long)!
        #expect(cut.utf8.count <= CallTrace.stateByteLimit)
        #expect(cut.split(separator: ",").allSatisfy { $0.hasSuffix(String(repeating: "v", count: 30)) })
        #expect(CallTrace.boundedState("a=1,,  ,b=2") == "a=1,b=2")
        #expect(CallTrace.boundedState(" , ") == nil)
        // A single member larger than the bound is not passed on at all.
        #expect(CallTrace.boundedState("k=" + String(repeating: "v", count: 600)) == nil)
    }

    @Test("a hostile tracestate costs linear time: 64 KiB without a comma or an equals sign")
    func hostileState() {
        let trace = CallTrace(traceparent: Self.parent, tracestate: String(repeating: "a", count: 65536))
        #expect(trace.tracestate == nil)
        #expect(trace.traceIDText == "0af7651916cd43dd8448eb211c80319c")
    }
}
