import FuncdCore
import NIOHTTP1

/// One pass over a request's header fields that keeps those a handler may see (not funcd's own
/// `funcd-*`) and notes the few that funcd reads itself: the trace context and what says the
/// request may be a CloudEvent. Every request pays for this pass, so it only compares lengths and
/// bytes; the reading itself (``CallTrace``, ``CloudEvents``) happens when a field is there.
struct RequestHeaderScan {
    var headers: [(String, String)] = []
    var traceparent: String?
    var traceparentCount = 0
    var tracestate: String?
    var contentType: String?
    var hasSpecVersion = false

    init(_ fields: HTTPHeaders) {
        headers.reserveCapacity(fields.count)
        for (name, value) in fields {
            switch name.utf8.count {
            case 10 where name.equalsIgnoringASCIICase("tracestate"):
                // Repeated fields make one list (RFC 9110 §5.3).
                tracestate = tracestate.map { $0 + "," + value } ?? value
            case 11 where name.equalsIgnoringASCIICase("traceparent"):
                traceparent = value
                traceparentCount += 1
            case 12 where name.equalsIgnoringASCIICase("content-type"):
                contentType = value
            case 14 where name.equalsIgnoringASCIICase("ce-specversion"):
                hasSpecVersion = true
            default:
                if FunctionHTTPHandler.isReservedField(name) { continue }
            }
            headers.append((name, value))
        }
    }

    /// The call's trace: the request's, continued, when it sent exactly one `traceparent`.
    var trace: CallTrace {
        CallTrace(traceparent: traceparentCount == 1 ? traceparent : nil, tracestate: tracestate)
    }

    /// What the request is as a CloudEvent, read when funcd reads CloudEvents.
    enum EventForm {
        case none
        case event(CloudEventInput)
        case batch
    }

    func cloudEvent(enabled: Bool) -> EventForm {
        guard enabled else { return .none }
        switch CloudEvents.mode(contentType: contentType) {
        case .batch: return .batch
        case .structured: return .event(.structured)
        case .binary:
            guard hasSpecVersion, let attributes = CloudEvents.binaryAttributes(headers, prefix: "ce-") else {
                return .none
            }
            return .event(.binary(attributes))
        }
    }
}
