import Testing

@testable import FuncdCore

@Suite("Kafka messages that kill workers: the supervisor's books")
struct KafkaWorkerDeathsTests {
    let first = KafkaPlace(topic: "orders", partition: 2, offset: 73)
    let second = KafkaPlace(topic: "orders.v2-eu_west", partition: 0, offset: 9_000_000_000)

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
