import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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

/// The Kafka messages a supervised worker has with its handler, kept in memory it shares with its
/// supervisor: a memfd the supervisor makes for each worker and passes as
/// `FUNCD_KAFKA_INFLIGHT_FD`. Only the worker writes it, with plain stores as a message starts
/// and finishes (no system call per message). When the worker dies (a segfault, the OOM killer,
/// killed because a handler was stuck), the process is gone but the page is not: the supervisor
/// reads from its own mapping what the worker was running. That is how a message that kills
/// whoever runs it is caught, although the only process that knew of it is dead.
///
/// `@unchecked Sendable`: the worker writes under its consumer's lock; the supervisor reads only
/// after the worker has exited.
public final class KafkaInFlightTable: @unchecked Sendable {
    // Per entry: used (u32), partition (i32), offset (i64), topic length (u32), topic bytes.
    private static let stride = 272
    private static let topicBytes = stride - 20
    public let capacity: Int
    private let base: UnsafeMutableRawPointer
    /// The memfd, until `closeDescriptor` (the supervisor passes it to the worker it spawns).
    public private(set) var descriptor: Int32

    private init(base: UnsafeMutableRawPointer, capacity: Int, descriptor: Int32) {
        self.base = base
        self.capacity = capacity
        self.descriptor = descriptor
    }

    /// A new table for `capacity` messages (the supervisor's side), or nil when the system
    /// cannot make one (the workers then run without it).
    public static func create(capacity: Int) -> KafkaInFlightTable? {
        typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
        // memfd_create is in glibc since 2.27 but not in the Swift overlay: looked up by name.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memfd_create") else { return nil }
        let memfdCreate = unsafeBitCast(symbol, to: MemfdCreate.self)
        let descriptor = memfdCreate("funcd-kafka-in-flight", 1 /* MFD_CLOEXEC */)
        guard descriptor >= 0 else { return nil }
        let size = capacity * stride
        guard ftruncate(descriptor, off_t(size)) == 0,
            let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), base != MAP_FAILED
        else {
            close(descriptor)
            return nil
        }
        return KafkaInFlightTable(base: base, capacity: capacity, descriptor: descriptor)
    }

    /// The table the supervisor made for this worker (`FUNCD_KAFKA_INFLIGHT_FD`), or nil.
    public static func inherited(_ environment: [String: String]) -> KafkaInFlightTable? {
        guard let descriptor = environment["FUNCD_KAFKA_INFLIGHT_FD"].flatMap(Int32.init) else { return nil }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_size >= stride,
            let base = mmap(nil, Int(status.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), base != MAP_FAILED
        else { return nil }
        close(descriptor)
        return KafkaInFlightTable(base: base, capacity: Int(status.st_size) / stride, descriptor: -1)
    }

    public func closeDescriptor() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    /// Entry `index` holds the message at `place` (with the handler from now on).
    public func record(_ index: Int, _ place: KafkaPlace) {
        let entry = base + index * Self.stride
        var topic = place.topic
        let length = topic.withUTF8 { bytes in
            let length = min(bytes.count, Self.topicBytes)
            (entry + 20).copyMemory(from: bytes.baseAddress!, byteCount: length)
            return length
        }
        entry.storeBytes(of: place.partition, toByteOffset: 4, as: Int32.self)
        entry.storeBytes(of: place.offset, toByteOffset: 8, as: Int64.self)
        entry.storeBytes(of: UInt32(length), toByteOffset: 16, as: UInt32.self)
        entry.storeBytes(of: 1, toByteOffset: 0, as: UInt32.self)
    }

    /// Entry `index` is free again (its message went back from the handler).
    public func clear(_ index: Int) {
        (base + index * Self.stride).storeBytes(of: 0, toByteOffset: 0, as: UInt32.self)
    }

    /// The messages recorded and not cleared: what the worker was running when it stopped.
    public func running() -> [KafkaPlace] {
        (0..<capacity).compactMap { index in
            let entry = base + index * Self.stride
            guard entry.load(as: UInt32.self) == 1 else { return nil }
            let length = min(Int(entry.load(fromByteOffset: 16, as: UInt32.self)), Self.topicBytes)
            let topic = String(decoding: UnsafeRawBufferPointer(start: entry + 20, count: length), as: UTF8.self)
            return KafkaPlace(
                topic: topic, partition: entry.load(fromByteOffset: 4, as: Int32.self),
                offset: entry.load(fromByteOffset: 8, as: Int64.self))
        }
    }

    deinit {
        munmap(base, capacity * Self.stride)
        closeDescriptor()
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
        for entry in (environment["FUNCD_KAFKA_DEATHS"] ?? "").split(separator: ",") { deaths.learn(entry) }
        return deaths
    }
}
