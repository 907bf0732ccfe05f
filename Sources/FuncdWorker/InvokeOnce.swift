import FuncdCLI
import FuncdCore
import FuncdSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `funcd invoke`: one call through the same Invoker (deadline included), no server.
public enum InvokeOnce {
    /// Waits for the one answer.
    final class Waiter: InvocationSink, @unchecked Sendable {
        let lock = ConditionLock()
        var done: Invocation?
        /// Set by every delivery, even an empty one (a streamed answer has more to take).
        var woken = false

        func deliver(_ batch: [Invocation]) {
            lock.withLock {
                if let first = batch.first { done = first }
                woken = true
                lock.signal()
            }
        }

        func wait() -> Invocation {
            lock.lock()
            defer { lock.unlock() }
            while done == nil { lock.wait() }
            return done!
        }
    }

    public static func run(
        _ request: InvokeRequest, configuration: Configuration, host: any FunctionHost, metrics: FunctionMetrics,
        logger: Logger
    ) -> Int32 {
        let invoker = Invoker(
            host: host, timeoutSeconds: configuration.timeoutSeconds, graceSeconds: configuration.timeoutGraceSeconds,
            metrics: metrics, logger: logger
        ) { _ in
            ProcessEnvironment.fail("the handler could not be interrupted after its timeout")
        }
        invoker.startWatchdog()
        let waiter = Waiter()
        let call: (method: String, body: [UInt8], contentType: String?)
        do {
            call = try request.load()
        } catch let error as FuncdError {
            ProcessEnvironment.fail(error.message)
        } catch {
            ProcessEnvironment.fail("\(error)")
        }
        var headers: [(String, String)] = [("Host", "localhost")]
        if let type = call.contentType { headers.append(("Content-Type", type)) }
        headers.append(("Content-Length", String(call.body.count)))
        // A trace is continued from the environment, as OpenTelemetry's environment carrier has it.
        let environment = ProcessEnvironment.current()
        let structured = configuration.cloudEvents && CloudEvents.mode(contentType: call.contentType) == .structured
        let invocation = Invocation(
            method: call.method, target: request.path, headers: headers, body: call.body, sink: waiter, reply: nil,
            trace: CallTrace(traceparent: environment["TRACEPARENT"], tracestate: environment["TRACESTATE"]),
            cloudEvent: structured ? .structured : nil)
        invoker.submit([invocation])
        let result = waiter.wait().result ?? InvocationResult(status: 500, error: "no result")
        if let error = result.error {
            ProcessEnvironment.printError(
                error == "timeout" ? "funcd: error: the handler timed out after \(configuration.timeoutSeconds)s" : error)
            return 1
        }
        var output = result.body
        if let stream = result.stream {
            // A streamed answer: print each piece as it comes.
            DescriptorOutput.writeAll(1, output)
            if let broken = drain(stream) {
                ProcessEnvironment.printError(
                    broken == "timeout" ? "funcd: error: the handler timed out after \(configuration.timeoutSeconds)s" : broken)
                return 1
            }
            return 0
        }
        if output.last != UInt8(ascii: "\n") && isatty(1) != 0 { output.append(UInt8(ascii: "\n")) }
        DescriptorOutput.writeAll(1, output)
        return 0
    }

    /// Copies a streamed answer to stdout until it ends; returns why it broke off, if it did.
    static func drain(_ stream: ResponseStream) -> String? {
        let signal = Waiter()
        stream.attach { signal.deliver([]) }
        while true {
            signal.lock.withLock {
                while !signal.woken { signal.lock.wait() }
                signal.woken = false
            }
            for event in stream.take() {
                switch event {
                case .bytes(let bytes):
                    DescriptorOutput.writeAll(1, bytes)
                    stream.sent(bytes.count)
                case .end:
                    return nil
                case .abort(let reason):
                    return reason
                }
            }
        }
    }
}
