internal import CRubyEmbed
import FuncdCore
import FuncdSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Runs a Ruby handler in a Ruby VM embedded in this process (libruby, through `CRubyEmbed`).
///
/// Threads, and why:
/// - the *Ruby main thread* (16 MiB of stack) initialises the VM, loads the handler and then
///   only waits: Ruby's API may be used on Ruby's own threads alone, and the thread that called
///   `ruby_init` must never return;
/// - `FUNC_CONCURRENCY` *Ruby call Threads* take calls from a C queue, waiting without the GVL,
///   so handlers blocked in I/O or `sleep` overlap; each copies its answer out as plain bytes;
/// - an *interrupter* Ruby Thread delivers timeouts with Thread#raise (it needs the GVL, so it
///   cannot be the Invoker's watchdog).
///
/// `@unchecked Sendable`: `calls` and `outbox` are guarded by `lock`; the rest is set before
/// `start` returns.
public final class RubyHost: FunctionHost, @unchecked Sendable {
    public let versionDescription: String
    let configuration: Configuration
    let logger: Logger
    let lock = ConditionLock()
    var calls: [UInt64: Invocation] = [:]
    var outbox: [Invocation] = []
    var nextID: UInt64 = 1
    var invoker: Invoker?

    /// Answers parked before a hand-back; more than this and the replying thread hands back.
    static let outboxBatchLimit = 64

    init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.versionDescription = "ruby \(String(cString: funcd_ruby_version()))"
    }

    /// Starts Ruby on its own thread and loads the handler; returns once it is ready, or throws
    /// the one line that says why it cannot be. `printsToStderr`: what the handler prints goes
    /// to stderr (`funcd invoke` keeps stdout for the answer).
    public static func start(
        configuration: Configuration, logger: Logger, printsToStderr: Bool
    ) throws(FuncdError) -> RubyHost {
        let glue: String
        do {
            glue = try RuntimeDirectory.locate(language: "ruby", configured: configuration.runtimesDirectory)
        } catch let error as FuncdError {
            throw error
        } catch {
            throw FuncdError(.configuration, "\(error)")
        }
        let host = RubyHost(configuration: configuration, logger: logger)
        let config = BootConfiguration.json(configuration, stdoutToStderr: printsToStderr)
        let callThreads = Int32(configuration.concurrency)
        NativeThread.start(stackSize: 16 * 1024 * 1024) {
            var callbacks = funcd_ruby_callbacks()
            callbacks.context = Unmanaged.passUnretained(host).toOpaque()
            callbacks.started = { context, error in
                RubyHost.from(context).startSignal.report(error.map { String(cString: $0) })
            }
            callbacks.starting = { context, id in RubyHost.from(context).starting(id) ? 1 : 0 }
            callbacks.reply = { context, reply in RubyHost.from(context).receive(reply!.pointee) }
            callbacks.idle = { context in RubyHost.from(context).handBack() }
            funcd_ruby_run("\(glue)/funcd/host.rb", config, callThreads, callbacks)
        }
        if let failure = host.startSignal.wait() {
            throw FuncdError(.functionLoad, failure.split(separator: "\n").first.map(String.init) ?? failure)
        }
        return host
    }

    let startSignal = StartSignal()

    static func from(_ context: UnsafeMutableRawPointer?) -> RubyHost {
        Unmanaged<RubyHost>.fromOpaque(context!).takeUnretainedValue()
    }

    // MARK: - FunctionHost

    public func attach(_ invoker: Invoker) {
        self.invoker = invoker
    }

    public func submit(_ batch: [Invocation]) {
        var ids: [UInt64] = []
        ids.reserveCapacity(batch.count)
        lock.withLock {
            for invocation in batch {
                let id = nextID
                nextID += 1
                invocation.hostSlot = Int(id)
                calls[id] = invocation
                ids.append(id)
            }
        }
        var headers: [UInt8] = []
        for (invocation, id) in zip(batch, ids) {
            let factsOffset = HeaderPacking.packCall(invocation, into: &headers, peerField: true)
            let form: funcd_ruby_cloudevent =
                switch invocation.cloudEvent {
                case nil: FUNCD_RUBY_NO_EVENT
                case .binary: FUNCD_RUBY_BINARY_EVENT
                case .structured: FUNCD_RUBY_STRUCTURED_EVENT
                }
            CallBuffers.lend(invocation, fields: headers) { call in
                funcd_ruby_submit(
                    id, call.method.baseAddress, call.method.count, call.target.baseAddress, call.target.count,
                    call.fields.baseAddress, call.fields.count, factsOffset, form, call.body.baseAddress, call.body.count)
            }
        }
        funcd_ruby_wake()
    }

    public func interrupt(_ invocation: Invocation) {
        funcd_ruby_interrupt(UInt64(invocation.hostSlot))
    }

    // MARK: - From Ruby threads (holding the GVL: quick)

    func starting(_ id: UInt64) -> Bool {
        guard let invocation = lock.withLock({ calls[id] }) else { return false }
        if invocation.tryStart() { return true }
        lock.withLock { _ = calls.removeValue(forKey: id) }
        return false
    }

    /// A call's answer, or a part of a streamed one (a Rack body that is not an Array goes out
    /// as it yields). Returns 0 to make the glue's writer wait for ``funcd_ruby_resume``.
    func receive(_ reply: funcd_ruby_reply) -> Int32 {
        let body = reply.body_length > 0 ? Array(UnsafeBufferPointer(start: reply.body, count: reply.body_length)) : []
        let error =
            reply.error_length > 0
            ? String(decoding: UnsafeRawBufferPointer(start: reply.error, count: reply.error_length), as: UTF8.self)
            : nil
        switch Int(reply.kind) {
        case Int(FUNCD_RUBY_HEAD.rawValue):
            guard let invocation = lock.withLock({ calls[reply.id] }) else { return 1 }
            let id = reply.id
            let stream = ResponseStream { funcd_ruby_resume(id) }
            invocation.complete(
                with: InvocationResult(
                    status: Int(reply.status), headers: unpackHeaders(reply), body: body, stream: stream))
            invoker?.started([invocation])
            return 1
        case Int(FUNCD_RUBY_CHUNK.rawValue):
            guard let invocation = lock.withLock({ calls[reply.id] }) else { return 1 }
            return invocation.stream?.write(body) ?? true ? 1 : 0
        case Int(FUNCD_RUBY_END.rawValue):
            let full: Bool = lock.withLock {
                guard let invocation = calls.removeValue(forKey: reply.id) else { return false }
                invocation.endStream(with: body, error: error)
                outbox.append(invocation)
                return outbox.count >= Self.outboxBatchLimit
            }
            if full { handBack() }
            return 1
        default:
            let headers = unpackHeaders(reply)
            let full: Bool = lock.withLock {
                guard let invocation = calls.removeValue(forKey: reply.id) else { return false }
                // After a head (the glue failed while streaming) this breaks the stream off.
                invocation.conclude(
                    with: InvocationResult(status: Int(reply.status), headers: headers, body: body, error: error))
                outbox.append(invocation)
                return outbox.count >= Self.outboxBatchLimit
            }
            if full { handBack() }
            return 1
        }
    }

    private func unpackHeaders(_ reply: funcd_ruby_reply) -> [(String, String)] {
        HeaderPacking.unpack(UnsafeRawBufferPointer(start: reply.headers, count: reply.headers_length))
    }

    /// Hands the parked answers back to the Invoker in one batch.
    func handBack() {
        let batch: [Invocation] = lock.withLock {
            defer { outbox.removeAll(keepingCapacity: true) }
            return outbox
        }
        if !batch.isEmpty { invoker?.finished(batch) }
    }
}
