import Foundation
import Testing

/// A liveness probe that keeps asking `GET /healthz` on fresh connections while an attack runs.
///
/// Issue 12's promise is that no client can make a pod fail its liveness probe. Each probe is
/// what kubelet does (a new connection, one request, a deadline) with the tests' own deadline of
/// one second, connecting included; probes run one after another on their own thread, so a slow
/// probe shows as one late answer, not as a pile-up. ``stop()`` ends the watch and returns what
/// every probe saw; ``expectAllAnswered(during:_:sourceLocation:)`` asserts on it.
///
/// `@unchecked Sendable`: the probing thread and the test share `stopping`, `finished` and
/// `probes` only under `condition`.
final class HealthWatch: @unchecked Sendable {
    /// What one probe saw.
    struct Probe: Sendable, CustomStringConvertible {
        /// Seconds from starting to connect to having the whole answer (or giving up).
        var elapsed: Double
        /// The status, or nil when no complete answer came.
        var status: Int?
        var body: String
        /// Why there was no answer.
        var failure: String?

        var answered: Bool { status == 200 && body == "OK" && failure == nil }

        var description: String {
            let outcome = failure ?? "\(status.map(String.init) ?? "-") \(body.prefix(40).debugDescription)"
            return String(format: "%.3f s: ", elapsed) + outcome
        }
    }

    /// The seconds a probe gets, connecting included.
    static let deadline = 1.0

    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var probes: [Probe] = []

    /// Starts probing `127.0.0.1:port` at once, then again `interval` seconds after each answer.
    init(port: Int, interval: Double = 0.25) {
        let thread = Thread { [self] in
            while true {
                let probe = Self.probe(port: port)
                condition.lock()
                probes.append(probe)
                let pause = Date(timeIntervalSinceNow: interval)
                while !stopping && condition.wait(until: pause) {}
                let stop = stopping
                if stop {
                    finished = true
                    condition.broadcast()
                }
                condition.unlock()
                if stop { return }
            }
        }
        thread.start()
    }

    /// Stops after the probe in progress and returns every probe's result.
    @discardableResult
    func stop() -> [Probe] {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        condition.broadcast()
        let limit = Date(timeIntervalSinceNow: Self.deadline + 5)
        while !finished && condition.wait(until: limit) {}
        return probes
    }

    /// Stops the watch and records an issue unless at least one probe ran and every probe got
    /// `200 OK` within ``deadline``.
    func expectAllAnswered(during attack: String, _ server: FuncdProcess, sourceLocation: SourceLocation = #_sourceLocation) {
        let probes = stop()
        let late = probes.filter { !$0.answered }
        #expect(
            !probes.isEmpty && late.isEmpty,
            "/healthz on a fresh connection during \(attack): \(late.count) of \(probes.count) probes not answered 200 within \(Self.deadline) s: \(late.prefix(5))\n\(server.diagnostics)",
            sourceLocation: sourceLocation)
    }

    /// One probe: connect, `GET /healthz`, read the answer, all within ``deadline``.
    static func probe(port: Int) -> Probe {
        let started = Deadline.now
        let deadline = Deadline(in: Self.deadline)
        func result(_ status: Int?, _ body: String, _ failure: String?) -> Probe {
            Probe(elapsed: Deadline.now - started, status: status, body: body, failure: failure)
        }
        do {
            let socket = try AttackSocket(port: port, timeout: deadline.remaining)
            defer { socket.close() }
            let sent = socket.send(
                "GET /healthz HTTP/1.1\r\nHost: kubelet\r\nUser-Agent: kube-probe/1.30\r\nConnection: close\r\n\r\n",
                timeout: deadline.remaining)
            guard sent == .sent else { return result(nil, "", "request not sent: \(sent)") }
            let parsed = socket.readResponses(1, timeout: deadline.remaining)
            guard let answer = parsed.finalResponses.first else {
                return result(nil, "", "no answer within \(Self.deadline) s: \(socket.receivedDescription)")
            }
            return result(answer.status, answer.text, nil)
        } catch {
            return result(nil, "", "\(error)")
        }
    }
}

extension HealthWatch {
    /// Runs `attack` while a watch probes `server`, then asserts every probe was answered in time
    /// (see ``expectAllAnswered(during:_:sourceLocation:)``). A throw from `attack` stops the
    /// watch and is rethrown.
    @discardableResult
    static func during<Value>(
        _ description: String, on server: FuncdProcess, sourceLocation: SourceLocation = #_sourceLocation,
        _ attack: () throws -> Value
    ) throws -> Value {
        let watch = HealthWatch(port: try server.port())
        let value: Value
        do {
            value = try attack()
        } catch {
            watch.stop()
            throw error
        }
        watch.expectAllAnswered(during: description, server, sourceLocation: sourceLocation)
        return value
    }
}
