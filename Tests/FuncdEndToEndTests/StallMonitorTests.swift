import Foundation
import Synchronization
import Testing

/// The Python and Ruby hosts run calls on one thread, and a monitor gives queued calls another
/// thread when that one blocks, and hands back the answers a thread parked before a long call.
/// Under a steady stream of fast calls the monitor looks less often (its tick doubles up to 4 ms
/// while every look finds the calls moving): these tests show that a call which then blocks is
/// still noticed, the stream goes on beside it, and no answer waits for a long call.
///
/// Their bounds (half a second for a quick answer, 0.2 s margins around a one-second sleep) are
/// wide, but a burst of parallel CPython start-ups can take that much: they run alone.
@Suite(.needsQuietMachine)
struct StallMonitorTests {
    @Test("Python: a handler that sleeps amid a stream of fast calls gets help; the stream goes on while it sleeps")
    func python() throws {
        try Funcd.withServer(env: ["FUNC_TIMEOUT": "30"]) { server in
            try Self.expectStreamGoesOn(
                server, fast: ("/fast", "fast"), slow: ("/slow", "slow done"))
        }
    }

    @Test("Ruby: a handler that sleeps amid a stream of fast calls gets help; the stream goes on while it sleeps")
    func ruby() throws {
        try Funcd.withFixtureFolderServer("ruby", runtime: "ruby3.1", handler: "route", env: ["FUNC_TIMEOUT": "30"]) {
            server in
            try Self.expectStreamGoesOn(
                server, fast: ("/hello", "hello world"), slow: ("/nap", "rested"))
        }
    }

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

    /// Two clients send `fast` back to back, each on a fresh connection; half a second in (long
    /// enough for the monitor's tick to have grown), `slow` (a one-second sleep) is sent. Fast
    /// calls sent well after it started must be answered well before it ends: without another
    /// thread they would all wait for the sleep.
    static func expectStreamGoesOn(
        _ server: FuncdProcess, fast: (path: String, text: String), slow: (path: String, text: String)
    ) throws {
        let port = try server.port()
        let stop = Atomic<Bool>(false)
        // Each client stops when told, or after 20 s or 20,000 requests, whichever comes first.
        let clients = (0..<2).map { _ in
            BackgroundCall { () throws -> [TimedRequest] in
                var done: [TimedRequest] = []
                let until = Deadline.now + 20
                while !stop.load(ordering: .relaxed) && Deadline.now < until && done.count < 20_000 {
                    done.append(try TimedRequest.get(port: port, path: fast.path, timeout: 10))
                }
                return done
            }
        }
        Thread.sleep(forTimeInterval: 0.5)
        let slowCall = BackgroundCall { try TimedRequest.get(port: port, path: slow.path, timeout: 30) }
        let slowRequest = try slowCall.wait(timeout: 40)
        Thread.sleep(forTimeInterval: 0.1)
        stop.store(true, ordering: .relaxed)
        let fastRequests = try clients.flatMap { try $0.wait(timeout: 40) }

        #expect(
            slowRequest.response.status == 200 && slowRequest.response.text == slow.text,
            "\(slow.path) → \(slowRequest.response)\n\(server.diagnostics)")
        let failed = fastRequests.filter { $0.response.status != 200 || $0.response.text != fast.text }
        #expect(failed.isEmpty, "\(failed.count) of \(fastRequests.count) fast calls failed, first: \(String(describing: failed.first?.response))")
        // 0.2 s on either side: far more than the monitor needs (a few ms), and far less than the
        // second the sleep lasts.
        let beside = fastRequests.filter {
            $0.sentAt > slowRequest.sentAt + 0.2 && $0.receivedAt < slowRequest.receivedAt - 0.2
        }
        // On failure, the fast calls around the slow one's start, in ms from its sending.
        let around = fastRequests.filter { $0.sentAt > slowRequest.sentAt - 0.001 }.sorted { $0.sentAt < $1.sentAt }
            .prefix(8).map { "\(Int(($0.sentAt - slowRequest.sentAt) * 1000))→\(Int(($0.receivedAt - slowRequest.sentAt) * 1000))" }
        #expect(
            beside.count >= 5,
            "only \(beside.count) fast calls were sent and answered while \(slow.path) slept (of \(fastRequests.count) in all; it took \(Int(slowRequest.elapsed * 1000)) ms; fast calls around its start, sent→answered in ms from it: \(around.joined(separator: " "))): the blocked call got no help\n\(server.diagnostics)"
        )
    }
}
