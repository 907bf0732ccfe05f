import FuncdCore
import FuncdSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("The in-flight table a worker shares with its supervisor")
struct KafkaInFlightTableTests {
    let first = KafkaPlace(topic: "orders", partition: 2, offset: 73)
    let second = KafkaPlace(topic: "orders.v2-eu_west", partition: 0, offset: 9_000_000_000)

    @Test("what a worker records is read through another mapping of the same memfd, and cleared entries are gone")
    func sharedTable() throws {
        let supervisorSide = try #require(KafkaInFlightTable.create(capacity: 4))
        // The worker maps the descriptor it inherits; here a duplicate of it, in the same process.
        let worker = try #require(KafkaInFlightTable.inherited(["FUNCD_KAFKA_INFLIGHT_FD": String(dup(supervisorSide.descriptor))]))
        supervisorSide.closeDescriptor()
        #expect(worker.capacity == 4)
        worker.record(0, first)
        worker.record(3, second)
        #expect(Set(supervisorSide.running()) == [first, second])
        worker.clear(0)
        #expect(supervisorSide.running() == [second])
        worker.record(0, KafkaPlace(topic: String(repeating: "t", count: 249), partition: 1, offset: 1))
        #expect(supervisorSide.running().map(\.topic.count).sorted() == [17, 249])
    }

    @Test("no table without the variable, or with a descriptor that is not one")
    func noTable() {
        #expect(KafkaInFlightTable.inherited([:]) == nil)
        #expect(KafkaInFlightTable.inherited(["FUNCD_KAFKA_INFLIGHT_FD": "987"]) == nil)
    }
}
