import Foundation
import Testing

/// HTTP/1.1 connection handling: keep-alive reuse, and malformed requests answered with 400 and a
/// closed connection (without harming the server).
@Suite(.sharesMachine)
struct ProtocolTests {
    @Test("keep-alive: several requests on one connection are all answered")
    func keepAlive() throws {
        try Funcd.withServer { server in
            let connection = try server.connect()
            defer { connection.close() }
            for index in 0..<5 {
                let response = try connection.request(path: "/keep-alive/\(index)")
                #expect(response.status == 200, "request \(index) on the shared connection → \(response)\n\(server.diagnostics)")
                #expect(
                    JSONObject(response)?.string("path") == "/keep-alive/\(index)",
                    "request \(index) got the answer to another request: \(response)")
                #expect(!response.announcesClose, "the server wants to close after request \(index): \(response)")
            }
            let post = try connection.request(
                method: "POST", path: "/keep-alive/post", headers: ["Content-Type": "application/json"], body: #"{"n": 5}"#)
            #expect(post.status == 200, "POST on the shared connection → \(post)\n\(server.diagnostics)")
            #expect(JSONObject(post)?.string("data_type") == "dict", "\(post)")

            let health = try connection.request(path: "/healthz")
            #expect(health.status == 200 && health.text == "OK", "GET /healthz on the shared connection → \(health)")
            #expect(!connection.serverClosed, "the server closed the keep-alive connection")
        }
    }

    @Test("a malformed request line answers 400 and closes the connection")
    func malformedRequestLine() throws {
        try expectBadRequest(Array("GARBAGE\r\n\r\n".utf8), description: "GARBAGE request line")
    }

    @Test("a malformed header line answers 400 and closes the connection")
    func malformedHeaderLine() throws {
        let request = "GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nthis is not a header\r\n\r\n"
        try expectBadRequest(Array(request.utf8), description: "header line without a colon")
    }

    /// Sends `bytes` on a fresh connection and expects 400, the connection closed by the server,
    /// and the server still answering on a new connection.
    private func expectBadRequest(_ bytes: [UInt8], description: String) throws {
        try Funcd.withServer { server in
            let connection = try server.connect(timeout: 15)
            defer { connection.close() }
            try connection.send(bytes)
            let response = try connection.readResponse()
            #expect(response.status == 400, "\(description) → \(response)\n\(server.diagnostics)")
            #expect(
                connection.waitForServerClose(timeout: 10),
                "the server kept the connection open after a malformed request (\(description))\n\(server.diagnostics)")

            let next = try server.get("/healthz")
            #expect(next.status == 200, "GET /healthz after a malformed request → \(next)\n\(server.diagnostics)")
            #expect(server.isRunning, "\(server.diagnostics)")
        }
    }

    @Test("pipelined requests on one connection are answered in order, a slow one first included")
    func pipelinedRequestsAnsweredInOrder() throws {
        try Funcd.withServer { server in
            let client = try HTTPClient(port: try server.port(), timeout: 30)
            // Three requests in one write: the first one sleeps for a second in its handler.
            try client.send(
                "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            let first = try client.readResponse()
            let second = try client.readResponse()
            let third = try client.readResponse()
            #expect(first.status == 200 && first.text == "slow done", "\(first)\n\(server.diagnostics)")
            #expect(second.status == 200 && second.text == "fast", "\(second)")
            #expect(third.status == 200 && third.text == "OK", "\(third)")
        }
    }
}
