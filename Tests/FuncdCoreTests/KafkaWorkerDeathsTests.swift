import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import FuncdCore

@Suite("Kafka messages that kill workers: the shared in-flight table and the supervisor's books")
struct KafkaWorkerDeathsTests {
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

    @Test("a death beside others makes suspects without counting; a death alone counts")
    func suspectsAndDeaths() {
        let books = KafkaWorkerDeaths()
        #expect(books.isEmpty)
        #expect(books.deaths(first) == nil)
        #expect(books.record(first, alone: false) == 0)
        #expect(books.record(second, alone: false) == 0)
        #expect(!books.isEmpty)
        #expect(books.deaths(first) == 0)
        #expect(books.record(first, alone: true) == 1)
        #expect(books.record(first, alone: true) == 2)
        #expect(books.deaths(second) == 0)
    }

    @Test("the books travel as text (environment and link lines) and come back equal; bad entries are refused")
    func encoding() {
        let books = KafkaWorkerDeaths()
        _ = books.record(first, alone: true)
        _ = books.record(second, alone: false)
        let copy = KafkaWorkerDeaths.inherited(["FUNCD_KAFKA_DEATHS": books.encoded()])
        #expect(copy.deaths(first) == 1 && copy.deaths(second) == 0)
        #expect(!copy.learn("x 1 2 topic"))
        #expect(!copy.learn("1 2 topic"))
        #expect(copy.learn(Substring(KafkaWorkerDeaths.encode(first, 3))))
        #expect(copy.deaths(first) == 3)
    }

    @Test("bounded: past the limit the oldest entries go")
    func bounded() {
        let books = KafkaWorkerDeaths()
        for offset in 0..<Int64(KafkaWorkerDeaths.limit + 10) {
            _ = books.record(KafkaPlace(topic: "t", partition: 0, offset: offset), alone: true)
        }
        #expect(books.deaths(KafkaPlace(topic: "t", partition: 0, offset: 0)) == nil)
        #expect(books.deaths(KafkaPlace(topic: "t", partition: 0, offset: 9)) == nil)
        #expect(books.deaths(KafkaPlace(topic: "t", partition: 0, offset: 10)) == 1)
        #expect(books.encoded().split(separator: ",").count == KafkaWorkerDeaths.limit)
    }
}
