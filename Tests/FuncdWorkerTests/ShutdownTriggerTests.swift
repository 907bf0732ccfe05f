import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import FuncdWorker

@Suite("ShutdownTrigger: a trigger before attach is not lost")
struct ShutdownTriggerTests {
    /// Counts the unhealthy marks.
    final class Marks: Sendable {
        let count = Atomic<Int>(0)
        func mark() { count.add(1, ordering: .relaxed) }
        var value: Int { count.load(ordering: .relaxed) }
    }

    /// A group whose only service is `trigger`: its `run` returns once a graceful shutdown reaches
    /// it, or once `seconds` have passed (then false).
    static func runs(_ group: ServiceGroup, endingWithin seconds: Int) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                try await group.run()
                return true
            }
            tasks.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return false
            }
            let first = try await tasks.next() ?? false
            tasks.cancelAll()
            return first
        }
    }

    static func group(_ trigger: ShutdownTrigger) -> ServiceGroup {
        ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: trigger)], logger: Logger(label: "test")))
    }

    @Test("trigger(unhealthy: true) before attach: marked unhealthy at attach, and the group shuts down")
    func unhealthyBeforeAttach() async throws {
        let trigger = ShutdownTrigger()
        let marks = Marks()
        trigger.trigger(unhealthy: true)
        let group = Self.group(trigger)
        trigger.attach(group) { marks.mark() }
        #expect(marks.value == 1)
        #expect(try await Self.runs(group, endingWithin: 10))
    }

    @Test("trigger(unhealthy: false) before attach: the group shuts down, nothing is marked")
    func healthyBeforeAttach() async throws {
        let trigger = ShutdownTrigger()
        let marks = Marks()
        trigger.trigger(unhealthy: false)
        let group = Self.group(trigger)
        trigger.attach(group) { marks.mark() }
        #expect(try await Self.runs(group, endingWithin: 10))
        #expect(marks.value == 0)
    }

    @Test("a trigger after attach, while the group runs, marks and shuts it down as before")
    func afterAttach() async throws {
        let trigger = ShutdownTrigger()
        let marks = Marks()
        let group = Self.group(trigger)
        trigger.attach(group) { marks.mark() }
        #expect(marks.value == 0)
        async let ended = Self.runs(group, endingWithin: 10)
        try await Task.sleep(for: .milliseconds(50))
        trigger.trigger(unhealthy: true)
        #expect(try await ended)
        #expect(marks.value == 1)
    }
}
