import FuncdCore
import NIOCore
import NIOHTTP1

/// What HTTP allows a request to bring and an answer to carry.
extension FunctionHTTPHandler {
    /// What makes a head too large to take (431), if anything.
    static func headProblem(_ head: HTTPRequestHead, limits: HTTPLimits) -> String? {
        if head.headers.count > limits.maxHeaders {
            return "more than \(limits.maxHeaders) header fields"
        }
        var bytes = head.uri.utf8.count
        for (name, value) in head.headers {
            bytes += name.utf8.count + value.utf8.count + 4
        }
        if bytes > limits.maxHeaderBytes {
            return "request target and header fields over \(limits.maxHeaderBytes) bytes"
        }
        return nil
    }

    /// 1xx, 204 and 304 answers have no body (RFC 9110 §6.4.1); writing one anyway would be read
    /// by the client as the start of the next answer.
    static func forbidsBody(status: Int) -> Bool {
        status < 200 || status == 204 || status == 304
    }

    /// Why a handler's answer cannot go out as it is, if it cannot: a final status outside
    /// 200...599, a header name that is not a token, or a value with a control byte (CR, LF and
    /// NUL would split the head). Node's `http` refuses the same.
    static func answerProblem(status: Int, headers: [(String, String)]) -> String? {
        guard (200...599).contains(status) else { return "status \(status) is not a final HTTP status" }
        for (name, value) in headers {
            if name.isEmpty || !name.utf8.allSatisfy(Self.isTokenByte) {
                return "header name \(String(reflecting: name)) is not an HTTP token"
            }
            if value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
                return "header \(name) has a control character in its value \(String(reflecting: value))"
            }
        }
        return nil
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// `funcd-*` fields are funcd's own, to the glue (`funcd-kafka-*`: a Kafka message's facts;
    /// `funcd-peer`: the client's address); a client cannot send them.
    static func isReservedField(_ name: String) -> Bool {
        name.utf8.count > 6 && (name.utf8.first == UInt8(ascii: "f") || name.utf8.first == UInt8(ascii: "F"))
            && name.utf8.prefix(6).elementsEqual("funcd-".utf8, by: { ($0 | 0x20) == $1 })
    }

    /// Headers that frame the message: the server's to set, dropped from a handler's answer.
    static func isFraming(_ name: String) -> Bool {
        switch name.utf8.count {
        case 10: return name.equalsIgnoringASCIICase("connection")
        case 14: return name.equalsIgnoringASCIICase("content-length")
        case 17: return name.equalsIgnoringASCIICase("transfer-encoding")
        default: return false
        }
    }
}
