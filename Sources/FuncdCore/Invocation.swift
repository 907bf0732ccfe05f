import Logging
import Synchronization

/// One call of the handler: the request as the transport received it, where its answer goes,
/// and the state that decides who answers it (the handler or the deadline).
///
/// The state is an atomic so that the host finishing a call and the watchdog timing it out can
/// race safely: exactly one of them wins and answers; the loser's result is dropped.
///
/// `@unchecked Sendable`: the request fields are immutable; `result` is written once by the
/// party that wins the state transition and read only after the hand-back through the sink
/// (which is a lock or an event-loop queue, so the write happens before the read); `startedAt`,
/// `finishedAt` and `hostResult` each have one writer and are read as their comments say; the
/// stream is an atomic of its own; the list links and host fields are touched only under the
/// Invoker's or the host's lock.
public final class Invocation: @unchecked Sendable {
    /// Where an invocation is in its life.
    public enum State: UInt8, Sendable {
        case queued = 0
        case running = 1
        case completed = 2
        case timedOut = 3
        /// The head of a streamed answer has gone out; the deadline still applies to the rest.
        case streaming = 4
        /// Its caller left before it started (``Invoker/abandon(_:)``): the host skips it.
        case abandoned = 5
    }

    /// The request method (`GET`, ...), or a transport's equivalent.
    public let method: String
    /// The request target as sent: path and query.
    public let target: String
    public let headers: [(String, String)]
    public let body: [UInt8]
    /// Where the answer is handed back; see ``InvocationSink``.
    public let sink: any InvocationSink
    /// Transport data the sink needs to answer (a channel context, a Kafka message): opaque here.
    public let reply: AnyObject?
    /// The Kafka message this call is for, for hosts that build its event directly.
    public let kafka: KafkaRecord?
    /// The client's IP address as the connection's socket has it (`10.0.0.7`, `::1`); nil where
    /// there is no client socket (Kafka, `funcd invoke`). Node's glue answers `req.ip` with it.
    public let remoteAddress: String?
    /// The call's place in a distributed trace (W3C Trace Context): continued from the request's
    /// `traceparent`, or started here.
    public let trace: CallTrace
    /// Whether the request is a CloudEvent, and how it carries it; nil when it is not one (or
    /// `FUNC_CLOUDEVENTS=off`). See ``CloudEvents``.
    public let cloudEvent: CloudEventInput?

    /// Monotonic nanoseconds.
    public let submittedAt: UInt64
    public internal(set) var deadline: UInt64 = 0
    /// When the host started the call. Written only by the host's thread, in ``tryStart()``,
    /// before its releasing exchange of the state to `running`. Read by the host's thread, and by
    /// the watchdog only for a call whose state it exchanged (acquiring) from `running` or
    /// `streaming`: states the host stored with releasing exchanges after this write, so the
    /// write happens before the read. Never read for a call that did not start.
    public private(set) var startedAt: UInt64 = 0
    /// When the call's answer was settled. Written once, by whichever party wins the call's last
    /// state transition (the host's thread in ``Invoker/finished(_:)``, or the watchdog at the
    /// deadline), after winning it, and read only by that party.
    public internal(set) var finishedAt: UInt64 = 0

    /// The answer: the handler's result, or the timeout answer; set by whoever wins the state.
    public internal(set) var result: InvocationResult?
    /// What the host's handler returned; written only by the host (``complete(with:)``), before
    /// it reports the call. Read by the Invoker only in the calls the host makes to report it
    /// (``Invoker/started(_:)``, ``Invoker/finished(_:)``), on the host's thread or after a
    /// hand-off under the host's lock; never by the watchdog, which takes the stream from
    /// ``stream`` instead.
    public internal(set) var hostResult: InvocationResult?
    /// The stream of a streamed answer, set once by ``complete(with:)``. A slot of its own, not
    /// `hostResult.stream`, because the watchdog reads it on its own thread to abort the stream
    /// at the deadline while the host may still be working on the call: `storeIfNil` releases
    /// and `load` acquires, so the watchdog sees the stream whole, whatever the host writes later.
    let streamSlot = AtomicLazyReference<ResponseStream>()
    /// Whether a streamed answer broke off after its head (``endStream(with:error:)``). Written
    /// and read only on the host's thread, when the call is reported.
    public private(set) var streamBrokeOff = false

    let state = Atomic<UInt8>(State.queued.rawValue)
    /// Set by the host when its interpreter no longer runs this call, even after a timeout: the
    /// watchdog uses it to tell a recovered worker from a stuck one.
    let released = Atomic<Bool>(false)

    // Deadline list links, guarded by the Invoker's lock.
    var next: Invocation?
    unowned(unsafe) var previous: Invocation?
    var linked = false

    /// Free for the host's own bookkeeping (a worker number, a token), guarded by the host.
    public var hostSlot: Int = -1

    public init(
        method: String,
        target: String,
        headers: [(String, String)],
        body: [UInt8],
        sink: any InvocationSink,
        reply: AnyObject?,
        kafka: KafkaRecord? = nil,
        remoteAddress: String? = nil,
        trace: CallTrace = .start(),
        cloudEvent: CloudEventInput? = nil
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.sink = sink
        self.reply = reply
        self.kafka = kafka
        self.remoteAddress = remoteAddress
        self.trace = trace
        self.cloudEvent = cloudEvent
        self.submittedAt = MonotonicClock.nanoseconds()
    }

    /// Ends a streamed answer with its last `bytes`: complete, or broken off when `error` is set.
    /// The result went to the transport with the head and is not written again; the break is
    /// kept for the metrics.
    public func endStream(with bytes: [UInt8] = [], error: String?) {
        guard let stream else { return }
        stream.write(bytes)
        if let error {
            stream.abort(error)
            streamBrokeOff = true
        } else {
            stream.finish()
        }
    }

    /// The host's last word on a call: `result`, or, when a streamed answer's head is out
    /// already, a break of that stream (the client can only be shown a broken answer).
    public func conclude(with result: InvocationResult) {
        if stream != nil {
            endStream(error: result.error ?? "ended")
        } else {
            complete(with: result)
        }
    }

    /// What funcd's log lines about this call say of it: the request, the trace and the span,
    /// with `extra`.
    public func logMetadata(_ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = trace.logMetadata.merging(extra) { _, given in given }
        metadata[LogKeys.method] = "\(method)"
        metadata[LogKeys.target] = "\(target)"
        return metadata
    }

    public var currentState: State { State(rawValue: state.load(ordering: .acquiring))! }

    /// The stream of the answer once the host has its head (``complete(with:)`` with a result
    /// that has a stream); nil for an answer that is not streamed. Safe on any thread.
    public var stream: ResponseStream? { streamSlot.load() }

    /// Called by a host before it runs the handler; false when the deadline already passed (the
    /// caller has had its 408), and the host must skip the call.
    public func tryStart() -> Bool {
        // Before the exchange that publishes it (see `startedAt`). When the exchange fails the
        // call never runs, and nobody reads the value.
        startedAt = MonotonicClock.nanoseconds()
        return state.compareExchange(
            expected: State.queued.rawValue, desired: State.running.rawValue, ordering: .acquiringAndReleasing
        ).exchanged
    }

    func transition(from: State, to: State) -> Bool {
        state.compareExchange(expected: from.rawValue, desired: to.rawValue, ordering: .acquiringAndReleasing).exchanged
    }
}

/// Receives finished invocations in batches, on whichever thread finished them, and answers each
/// on the transport's own thread. One `deliver` call per batch lets an HTTP event loop be woken
/// once for many responses.
public protocol InvocationSink: AnyObject, Sendable {
    func deliver(_ batch: [Invocation])
}
