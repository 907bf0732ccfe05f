internal import CNodeEmbed
import FuncdCore

// Everything here runs on the JavaScript thread, called from the event loop through the
// callbacks given to funcd_node_start.
extension NodeHost {
    /// `wake`: runs the calls queued since the last wake-up, then the cancels and resumptions.
    func takeWork() {
        guard let node else { return }
        let (batch, cancelled, resumed) = lock.withLock {
            wakePending = false
            defer {
                inbox.removeAll(keepingCapacity: true)
                cancels.removeAll(keepingCapacity: true)
                drains.removeAll(keepingCapacity: true)
            }
            return (inbox, cancels, drains)
        }
        runningCalls.store(true, ordering: .releasing)
        for invocation in batch {
            // False when its deadline passed while it waited: the caller has had its 408.
            guard invocation.tryStart() else { continue }
            call(invocation, node: node)
        }
        runningCalls.store(false, ordering: .releasing)
        for invocation in cancelled {
            let id = UInt64(invocation.hostSlot)
            guard calls.removeValue(forKey: id) != nil else { continue }
            funcd_node_cancel(node, id)
            release(invocation, InvocationResult(status: 408, error: "timeout"))
        }
        for id in resumed where calls[id] != nil {
            funcd_node_drain(node, id)
        }
    }

    private func call(_ invocation: Invocation, node: OpaquePointer) {
        let id = nextID
        nextID += 1
        invocation.hostSlot = Int(id)
        calls[id] = invocation
        // The peer goes as its own argument (`req.ip`).
        let factsStart = HeaderPacking.packCall(invocation, into: &headerScratch, peerField: false)
        let status = CallBuffers.lend(invocation, fields: headerScratch) { call in
            funcd_node_call(
                node, id, call.method.baseAddress, call.method.count, call.target.baseAddress, call.target.count,
                call.fields.baseAddress, factsStart, call.body.baseAddress, call.body.count, invocation.remoteAddress,
                call.fields.baseAddress! + factsStart, call.fields.count - factsStart, Self.eventForm(invocation.cloudEvent))
        }
        switch Int(status) {
        case Int(FUNCD_NODE_TERMINATED.rawValue):
            // Its deadline passed while it held the loop; the caller has had its 408.
            guard calls.removeValue(forKey: id) != nil else { return }
            funcd_node_cancel(node, id)
            release(invocation, InvocationResult(status: 408, error: "terminated after its timeout"))
        case Int(FUNCD_NODE_EXITED.rawValue):
            let code = funcd_node_exit_code(node)
            guard calls.removeValue(forKey: id) != nil else { return }
            funcd_node_cancel(node, id)
            let message = "the handler called process.exit(\(code)); funcd answered 500 and goes on serving"
            release(
                invocation,
                InvocationResult(
                    status: 500, headers: [("Content-Type", "text/plain; charset=utf-8")],
                    body: Array("Internal Server Error\n".utf8), error: message))
        default:
            break
        }
    }

    /// How the glue is to read a CloudEvent in the call, if there is one.
    private static func eventForm(_ input: CloudEventInput?) -> funcd_node_cloudevent {
        switch input {
        case nil: FUNCD_NODE_NO_EVENT
        case .binary: FUNCD_NODE_BINARY_EVENT
        case .structured: FUNCD_NODE_STRUCTURED_EVENT
        }
    }

    /// The glue answered (through `native.reply`). Returns 0 to pause a streamed answer.
    func receive(_ reply: funcd_node_reply) -> Int32 {
        guard let invocation = calls[reply.id] else { return 1 }
        let body = reply.body_length > 0 ? Array(UnsafeBufferPointer(start: reply.body, count: reply.body_length)) : []
        let error =
            reply.error_length > 0
            ? String(decoding: UnsafeRawBufferPointer(start: reply.error, count: reply.error_length), as: UTF8.self)
            : nil
        switch Int(reply.kind) {
        case Int(FUNCD_NODE_HEAD.rawValue):
            let id = reply.id
            let stream = ResponseStream { [weak self] in self?.resumeStream(id: id) }
            invocation.complete(
                with: InvocationResult(
                    status: Int(reply.status), headers: unpackHeaders(reply), body: body, stream: stream))
            invoker?.started([invocation])
            return 1
        case Int(FUNCD_NODE_CHUNK.rawValue):
            return invocation.stream?.write(body) ?? true ? 1 : 0
        case Int(FUNCD_NODE_END.rawValue):
            calls[reply.id] = nil
            invocation.endStream(with: body, error: error)
            outbox.append(invocation)
            return 1
        default:
            calls[reply.id] = nil
            invocation.conclude(
                with: InvocationResult(status: Int(reply.status), headers: unpackHeaders(reply), body: body, error: error))
            outbox.append(invocation)
            return 1
        }
    }

    private func unpackHeaders(_ reply: funcd_node_reply) -> [(String, String)] {
        HeaderPacking.unpack(UnsafeRawBufferPointer(start: reply.headers, count: reply.headers_length))
    }

    /// A call the glue will not answer any more: let the Invoker know the loop is free of it.
    private func release(_ invocation: Invocation, _ result: InvocationResult) {
        invocation.conclude(with: result)
        outbox.append(invocation)
    }

    /// `turn`: hands the answers of this loop turn back to the Invoker in one batch.
    func handBack() {
        guard !outbox.isEmpty else { return }
        let batch = outbox
        outbox.removeAll(keepingCapacity: true)
        invoker?.finished(batch)
    }
}
