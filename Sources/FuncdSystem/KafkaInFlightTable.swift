import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

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
        guard let descriptor = environment[WorkerEnvironment.kafkaInFlightDescriptor].flatMap(Int32.init) else { return nil }
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
