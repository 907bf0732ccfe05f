import Foundation
import Testing

/// The Python and Ruby hosts run calls on one thread, and a monitor gives queued calls another
/// thread when that one blocks, and hands back the answers a thread parked before a long call:
/// no answer waits for a long call.
@Suite
struct StallMonitorTests {
    @Test("Python: a quick call's answer does not wait for a long call its thread takes next")
    func pythonAnswerBeforeLongCall() throws {
        try Funcd.withServer(env: ["FUNC_TIMEOUT": "30"]) { server in
            try Self.expectAnswerNotHeld(server, quick: ("/fast", "fast"), long: ("/slow", "slow done"))
        }
    }

    @Test("Ruby: a quick call's answer does not wait for a long call its thread takes next")
    func rubyAnswerBeforeLongCall() throws {
        try Funcd.withFixtureFolderServer("ruby", runtime: "ruby3.1", handler: "route", env: ["FUNC_TIMEOUT": "30"]) {
            server in
            try Self.expectAnswerNotHeld(server, quick: ("/hello", "hello world"), long: ("/nap", "rested"))
        }
    }

    /// Sent together, the two calls usually reach the host in one batch, the quick one first, and
    /// the thread that answers it takes the one-second `long` next. Its answer must go out at
    /// once: funcd-ruby's went back only when that thread went idle, a second later (in one to
    /// three rounds of four).
    static func expectAnswerNotHeld(
        _ server: FuncdProcess, quick: (path: String, text: String), long: (path: String, text: String)
    ) throws {
        let port = try server.port()
        for round in 1...4 {
            let quickClient = try HTTPClient(port: port)
            let longClient = try HTTPClient(port: port)
            defer {
                quickClient.close()
                longClient.close()
            }
            let started = Deadline.now
            try quickClient.send(HTTPClient.encodeRequest(method: "GET", path: quick.path, port: port))
            try longClient.send(HTTPClient.encodeRequest(method: "GET", path: long.path, port: port))
            let answer = try quickClient.readResponse()
            let waited = Deadline.now - started
            #expect(answer.status == 200 && answer.text == quick.text, "round \(round): \(answer)")
            #expect(
                waited < 0.5,
                "round \(round): the answer to \(quick.path) took \(waited) s, behind \(long.path)\n\(server.diagnostics)")
            let longAnswer = try longClient.readResponse()
            #expect(longAnswer.status == 200 && longAnswer.text == long.text, "round \(round): \(longAnswer)")
        }
    }
}
