/// The one boundary between funcd and a language: a host owns an interpreter on threads of its
/// own, runs invocations there, and hands them back to the Invoker in batches.
///
/// A host never blocks the caller of `submit` (an event loop) and never answers the transport
/// itself: it fills `Invocation.result` with ``Invoker/finished(_:)``.
public protocol FunctionHost: AnyObject, Sendable {
    /// A short description for the start-up line, e.g. `python 3.11.2`.
    var versionDescription: String { get }

    /// Called once by the Invoker before any submit.
    func attach(_ invoker: Invoker)

    /// Queues `batch` for the interpreter; returns at once.
    func submit(_ batch: [Invocation])

    /// Whether the host builds the event of a Kafka message from ``Invocation/kafka`` itself;
    /// otherwise the message comes as a request whose headers carry its facts. Read per batch:
    /// a host may decide once its handler is loaded.
    var buildsKafkaEvents: Bool { get }

    /// The deadline of a running invocation passed and its caller has been answered: stop the
    /// handler if the language allows it. Called on the watchdog thread.
    func interrupt(_ invocation: Invocation)

    /// The deadline of an invocation that never started passed and its caller has been answered:
    /// if the interpreter did not take it because something holds the interpreter that is no
    /// call (a timer a finished handler left spinning), stop that. Called on the watchdog thread.
    func expiredWaiting(_ invocation: Invocation)

    /// Whether `interrupt` ends the call for certain within the grace period (a process group
    /// killed with SIGKILL at its end), rather than asking a handler that may ignore it. The
    /// Invoker then waits a second grace period before it declares the host stuck, so that the
    /// kill itself is never mistaken for a stuck handler.
    var killsInterruptedCalls: Bool { get }
}

extension FunctionHost {
    public var buildsKafkaEvents: Bool { false }
    public var killsInterruptedCalls: Bool { false }
    /// Hosts whose calls run on threads of their own: a call that waits is behind other calls,
    /// each with its own deadline.
    public func expiredWaiting(_ invocation: Invocation) {}
}
