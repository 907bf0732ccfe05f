import Foundation

/// A response together with when its request was sent and when the response was complete.
///
/// The timeout tests measure latency from the client's side: the clock starts after the
/// connection is open, right before the request bytes are written, and stops when the whole
/// response has been read. The server can only start its own clock later, so this measurement
/// is an upper bound of the server's and never makes an early 408 look late.
struct TimedRequest: Sendable {
    var response: HTTPResponse
    /// ``Deadline/now`` right before the request was written.
    var sentAt: Double
    /// ``Deadline/now`` once the response was complete.
    var receivedAt: Double

    /// Seconds from sending the request to having the whole response.
    var elapsed: Double { receivedAt - sentAt }

    /// Sends `GET path` on a fresh connection and times it.
    static func get(port: Int, path: String, timeout: Double = 60) throws -> TimedRequest {
        let client = try HTTPClient(port: port, timeout: timeout)
        defer { client.close() }
        let sentAt = Deadline.now
        let response = try client.request(path: path)
        return TimedRequest(response: response, sentAt: sentAt, receivedAt: Deadline.now)
    }
}
