internal import CPython
import FuncdCore

/// The glue's objects the host calls on every request, fetched once, and the conversion of a
/// request to arguments and of the glue's `(status, headers, body, error)` back to Swift.
///
/// `@unchecked Sendable`: the pointers are only dereferenced with the GIL held.
final class PythonCall: @unchecked Sendable {
    let function: PyPointer
    let call: PyPointer
    let start: PyPointer
    let cancel: PyPointer
    let isCoroutine: Bool
    /// The glue's shared header lists, recognised by identity so that the common results skip
    /// converting their headers.
    private let knownHeaders: [(object: PyPointer, swift: [(String, String)])]
    private var methodObjects: [String: PyPointer] = [:]
    /// The clients' addresses as Python strings: most calls come from a few (an ingress, a
    /// load balancer), so each is made once. Emptied when it reaches `peerCacheLimit`.
    private var peerObjects: [String: PyPointer] = [:]
    private static let peerCacheLimit = 256

    init(function: PyPointer, glue: PyPointer) throws {
        func attribute(_ owner: PyPointer, _ name: String) throws -> PyPointer {
            guard let value = PyObject_GetAttrString(owner, name) else {
                throw FuncdError(.interpreter, "the funcd Python glue has no \(name): \(PythonObjects.takeError())")
            }
            return value
        }
        self.function = function
        self.call = try attribute(function, "call")
        self.start = try attribute(function, "start")
        self.cancel = try attribute(function, "cancel")
        let coroutine = try attribute(function, "is_coroutine")
        self.isCoroutine = funcd_py_is_true(coroutine) != 0
        funcd_py_decref(coroutine)
        var known: [(PyPointer, [(String, String)])] = []
        for name in ["_HTML", "_JSON", "_TEXT"] {
            let list = try attribute(glue, name)
            known.append((list, Self.headers(list) ?? []))
        }
        self.knownHeaders = known
        for method in FunctionMetrics.knownMethods {
            methodObjects[method] = PythonObjects.string(method)
        }
    }

    /// Calls a plain handler. GIL held.
    func run(_ invocation: Invocation) -> InvocationResult {
        withArguments(invocation, prefix: []) { arguments in
            guard let result = PyObject_Vectorcall(call, arguments.baseAddress, arguments.count, nil) else {
                return InvocationResult(
                    status: 500, body: Array("Internal Server Error\n".utf8), error: PythonObjects.takeError())
            }
            defer { funcd_py_decref(result) }
            return convert(result)
        }
    }

    /// Starts an `async def` handler; nil when it started (the glue calls back later), else the
    /// result of a call that failed before it started. GIL held.
    func startAsync(_ invocation: Invocation, token: Int, complete: PyPointer) -> InvocationResult? {
        let tokenObject = PythonObjects.int(token)
        funcd_py_incref(complete)
        return withArguments(invocation, prefix: [tokenObject, complete]) { arguments in
            guard let result = PyObject_Vectorcall(start, arguments.baseAddress, arguments.count, nil) else {
                return InvocationResult(
                    status: 500, body: Array("Internal Server Error\n".utf8), error: PythonObjects.takeError())
            }
            defer { funcd_py_decref(result) }
            return funcd_py_is_none(result) != 0 ? nil : convert(result)
        }
    }

    /// Asks the asyncio loop to cancel the async call `token`. GIL held.
    func cancelAsync(token: Int) {
        let tokenObject = PythonObjects.int(token)
        var arguments: [PyPointer?] = [tokenObject]
        if let result = PyObject_Vectorcall(cancel, &arguments, 1, nil) {
            funcd_py_decref(result)
        } else {
            PyErr_Clear()
        }
        funcd_py_decref(tokenObject)
    }

    /// Builds the call's arguments (the `prefix` objects are owned and released here too).
    private func withArguments<T>(
        _ invocation: Invocation, prefix: [PyPointer], _ body: (UnsafeMutableBufferPointer<PyPointer?>) -> T
    ) -> T {
        let fields = EventHeaders(invocation.headers)
        let method: PyPointer
        if let cached = methodObjects[invocation.method] {
            funcd_py_incref(cached)
            method = cached
        } else {
            method = PythonObjects.string(invocation.method)
        }
        var arguments: [PyPointer?] = prefix
        arguments.reserveCapacity(prefix.count + 13)
        arguments.append(method)
        arguments.append(PythonObjects.string(invocation.target))
        arguments.append(PythonObjects.headerTuple(invocation.headers))
        arguments.append(PythonObjects.bytes(invocation.body))
        arguments.append(PythonObjects.optionalString(fields.contentType))
        arguments.append(PythonObjects.optionalString(fields.eventID))
        arguments.append(PythonObjects.optionalString(fields.eventType))
        arguments.append(PythonObjects.optionalString(fields.eventTime))
        arguments.append(PythonObjects.optionalString(fields.eventNamespace))
        arguments.append(peerObject(invocation.remoteAddress))
        arguments.append(PythonObjects.string(invocation.trace.traceparent))
        arguments.append(PythonObjects.optionalString(invocation.trace.tracestate))
        arguments.append(PythonObjects.cloudEvent(invocation.cloudEvent))
        defer { for argument in arguments { funcd_py_decref(argument!) } }
        return arguments.withUnsafeMutableBufferPointer { body($0) }
    }

    /// The client's address as a new reference (None without one). GIL held.
    private func peerObject(_ address: String?) -> PyPointer {
        guard let address else { return PythonObjects.newNone() }
        if let cached = peerObjects[address] {
            funcd_py_incref(cached)
            return cached
        }
        if peerObjects.count >= Self.peerCacheLimit {
            for object in peerObjects.values { funcd_py_decref(object) }
            peerObjects.removeAll(keepingCapacity: true)
        }
        let object = PythonObjects.string(address)
        funcd_py_incref(object)
        peerObjects[address] = object
        return object
    }

    /// Converts the glue's `(status, headers, body, error)`. GIL held.
    func convert(_ tuple: PyPointer) -> InvocationResult {
        guard PyTuple_Size(tuple) == 4 else {
            PyErr_Clear()
            return InvocationResult(
                status: 500, body: Array("Internal Server Error\n".utf8),
                error: "the funcd glue returned \(PythonObjects.describe(tuple)) instead of a result")
        }
        let status = PyLong_AsLong(PyTuple_GetItem(tuple, 0))
        let headerObject = PyTuple_GetItem(tuple, 1)!
        let headers =
            knownHeaders.first(where: { $0.object == headerObject })?.swift
            ?? Self.headers(headerObject) ?? []
        let body = PythonObjects.swiftBytes(PyTuple_GetItem(tuple, 2)!) ?? []
        let errorObject = PyTuple_GetItem(tuple, 3)!
        let error = funcd_py_is_none(errorObject) != 0 ? nil : PythonObjects.describe(errorObject)
        guard (100...999).contains(status) else {
            PyErr_Clear()
            return InvocationResult(
                status: 500, body: Array("Internal Server Error\n".utf8),
                error: "the function answered with the status \(status), which is not an HTTP status")
        }
        return InvocationResult(status: status, headers: headers, body: body, error: error)
    }

    /// A sequence of `(name, value)` pairs as Swift strings; nil when it is not one.
    static func headers(_ sequence: PyPointer) -> [(String, String)]? {
        let count = PySequence_Size(sequence)
        guard count >= 0 else {
            PyErr_Clear()
            return nil
        }
        var headers: [(String, String)] = []
        headers.reserveCapacity(count)
        for index in 0..<count {
            guard let pair = PySequence_GetItem(sequence, index) else {
                PyErr_Clear()
                return nil
            }
            defer { funcd_py_decref(pair) }
            guard PySequence_Size(pair) == 2,
                let name = PySequence_GetItem(pair, 0),
                let value = PySequence_GetItem(pair, 1)
            else {
                PyErr_Clear()
                return nil
            }
            defer {
                funcd_py_decref(name)
                funcd_py_decref(value)
            }
            guard let nameText = PythonObjects.swiftString(name), let valueText = PythonObjects.swiftString(value)
            else { return nil }
            headers.append((nameText, valueText))
        }
        return headers
    }
}

/// The request headers the kubeless event reads, found in one pass without allocating.
struct EventHeaders {
    var contentType: String?
    var eventID: String?
    var eventType: String?
    var eventTime: String?
    var eventNamespace: String?

    init(_ headers: [(String, String)]) {
        for (name, value) in headers {
            switch name.utf8.count {
            case 8 where name.equalsIgnoringASCIICase("event-id"): eventID = value
            case 10 where name.equalsIgnoringASCIICase("event-type"): eventType = value
            case 10 where name.equalsIgnoringASCIICase("event-time"): eventTime = value
            case 12 where name.equalsIgnoringASCIICase("content-type"): contentType = value
            case 15 where name.equalsIgnoringASCIICase("event-namespace"): eventNamespace = value
            default: continue
            }
        }
    }
}
