import Synchronization

/// One consumed Kafka message, by where it is.
public struct KafkaPlace: Hashable, Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}

/// The Kafka messages that were with the handler when a worker died: the supervisor's books,
/// which every worker gets a copy of (`FUNCD_KAFKA_DEATHS` when it starts, `kafka-death` lines
/// on its link after), so that whichever worker fetches such a message again knows it.
///
/// A death counts against a message only when it was the only one running; when several were,
/// each becomes a suspect (count 0 if it had none) and runs alone from then on, so the next
/// death is its own. Bounded: the oldest entries go first past `limit`.
public final class KafkaWorkerDeaths: Sendable {
    public static let limit = 1024
    private struct Books {
        var counts: [KafkaPlace: Int] = [:]
        var order: [KafkaPlace] = []
    }
    private let books = Mutex(Books())
    /// Read on every message start: the books are almost always empty, and then cost nothing.
    private let known = Atomic<Int>(0)

    public init() {}

    public var isEmpty: Bool { known.load(ordering: .relaxed) == 0 }

    /// Worker deaths `place` caused (running alone), or nil when it was never running when a
    /// worker died.
    public func deaths(_ place: KafkaPlace) -> Int? {
        books.withLock { $0.counts[place] }
    }

    /// Sets `place`'s count (a worker learning the supervisor's figure).
    public func set(_ place: KafkaPlace, to count: Int) {
        books.withLock { books in
            Self.put(place, count, into: &books)
            known.store(books.counts.count, ordering: .relaxed)
        }
    }

    /// A worker died while `place` ran alone (`alone`: one more death against it) or beside
    /// others (a suspect, its count unchanged); its count.
    public func record(_ place: KafkaPlace, alone: Bool) -> Int {
        books.withLock { books in
            let count = (books.counts[place] ?? 0) + (alone ? 1 : 0)
            Self.put(place, count, into: &books)
            known.store(books.counts.count, ordering: .relaxed)
            return count
        }
    }

    private static func put(_ place: KafkaPlace, _ count: Int, into books: inout Books) {
        if books.counts.updateValue(count, forKey: place) == nil {
            books.order.append(place)
            if books.order.count > limit {
                books.counts[books.order.removeFirst()] = nil
            }
        }
    }

    /// `count partition offset topic` (topic names hold no spaces): a link line's words and an
    /// entry of `FUNCD_KAFKA_DEATHS` (entries separated by `,`).
    public static func encode(_ place: KafkaPlace, _ count: Int) -> String {
        "\(count) \(place.partition) \(place.offset) \(place.topic)"
    }

    /// Takes in one `encode`d entry; false when it is not one.
    @discardableResult
    public func learn(_ text: Substring) -> Bool {
        let words = text.split(separator: " ", maxSplits: 3)
        guard words.count == 4, let count = Int(words[0]), let partition = Int32(words[1]), let offset = Int64(words[2])
        else { return false }
        set(KafkaPlace(topic: String(words[3]), partition: partition, offset: offset), to: count)
        return true
    }

    /// Every entry, for `FUNCD_KAFKA_DEATHS`.
    public func encoded() -> String {
        books.withLock { books in books.order.map { Self.encode($0, books.counts[$0]!) }.joined(separator: ",") }
    }

    /// The books a worker starts with.
    public static func inherited(_ environment: [String: String]) -> KafkaWorkerDeaths {
        let deaths = KafkaWorkerDeaths()
        for entry in (environment[WorkerEnvironment.kafkaDeaths] ?? "").split(separator: ",") { deaths.learn(entry) }
        return deaths
    }
}
