internal import CPython
import FuncdCore

/// Calls a plain handler for a Kafka message with the kubeless event built here through the C
/// API: the same dict the glue builds for a request, without the request's Python frames,
/// header tuples and parsing (a trivial handler's call is then mostly the handler).
///
/// `data` is the value parsed by json's C scanner when the trigger found it to be JSON (and the
/// text when the scanner disagrees), else the text; `extensions` is the glue's `KafkaExtensions`.
///
/// `@unchecked Sendable`: the pointers are only dereferenced with the GIL held, which also
/// guards the topic cache.
final class PythonKafkaCall: @unchecked Sendable {
    private let call: PythonCall
    private let handler: PyPointer
    private let callContext: PyPointer
    private let applyCloudEvent: PyPointer
    private let encode: PyPointer
    private let encodeAnswer: PyPointer
    private let failure: PyPointer
    private let extensionsType: PyPointer
    private let kafkaScanner: PyPointer
    private var scan: PyPointer?
    private let keys: Keys
    private let eventType: PyPointer
    private let namespace: PyPointer
    private var topics: [String: PyPointer] = [:]
    private var lastTopic: (name: String, object: PyPointer)?

    /// The event's keys, interned once.
    private struct Keys {
        let data, eventID, eventType, eventTime, eventNamespace, extensions: PyPointer
        let topic, partition, offset, key, timestamp, headers, value: PyPointer

        init() {
            func intern(_ text: String) -> PyPointer { PyUnicode_InternFromString(text)! }
            data = intern("data")
            eventID = intern("event-id")
            eventType = intern("event-type")
            eventTime = intern("event-time")
            eventNamespace = intern("event-namespace")
            extensions = intern("extensions")
            topic = intern("topic")
            partition = intern("partition")
            offset = intern("offset")
            key = intern("key")
            timestamp = intern("timestamp")
            headers = intern("headers")
            value = intern("_value")
        }
    }

    init(function: PyPointer, glue: PyPointer, call: PythonCall) throws {
        func attribute(_ owner: PyPointer, _ name: String) throws -> PyPointer {
            guard let value = PyObject_GetAttrString(owner, name) else {
                throw FuncdError(.interpreter, "the funcd Python glue has no \(name): \(PythonObjects.takeError())")
            }
            return value
        }
        self.call = call
        handler = try attribute(function, "handler")
        callContext = try attribute(function, "call_context")
        applyCloudEvent = try attribute(try attribute(glue, "_cloudevents"), "apply")
        encode = try attribute(glue, "encode")
        encodeAnswer = try attribute(glue, "encode_answer")
        failure = try attribute(glue, "failure")
        extensionsType = try attribute(glue, "KafkaExtensions")
        kafkaScanner = try attribute(glue, "kafka_scanner")
        keys = Keys()
        eventType = PythonObjects.string("application/json")
        namespace = PythonObjects.string(KafkaRecord.namespace)
    }

    /// Calls the handler with the message's event. GIL held.
    func run(_ record: KafkaRecord, _ invocation: Invocation) -> InvocationResult {
        guard let event = event(record), let context = context(invocation.trace) else {
            return InvocationResult(
                status: 500, body: Array("Internal Server Error\n".utf8),
                error: "cannot build the event of a Kafka message: \(PythonObjects.takeError())")
        }
        defer { funcd_py_decref(context) }
        if let cloudEvent = invocation.cloudEvent, let failed = apply(cloudEvent, record, to: event) {
            funcd_py_decref(event)
            return failed
        }
        var arguments: [PyPointer?] = [event, context]
        let result = PyObject_Vectorcall(handler, &arguments, 2, nil)
        funcd_py_decref(event)
        guard let result else { return raised() }
        defer { funcd_py_decref(result) }
        // The common answers of a trigger's handler, without the glue: a reply-to topic gets the
        // body, nothing else reads it.
        if funcd_py_is_none(result) != 0 { return InvocationResult(status: 200, body: []) }
        if case .structured = invocation.cloudEvent {
            // A returned event answers a structured event as one (the glue's encode_answer).
            var arguments: [PyPointer?] = [result, funcd_py_new_true()]
            defer { funcd_py_decref(arguments[1]!) }
            guard let tuple = PyObject_Vectorcall(encodeAnswer, &arguments, 2, nil) else { return raised() }
            defer { funcd_py_decref(tuple) }
            return call.convert(tuple)
        }
        return converted(calling: encode, with: result)
    }

    /// The context for one call: the function's, with the call's trace (`Function.call_context`).
    private func context(_ trace: CallTrace) -> PyPointer? {
        var arguments: [PyPointer?] = [
            PythonObjects.string(trace.traceparent), PythonObjects.optionalString(trace.tracestate),
        ]
        defer { for argument in arguments { funcd_py_decref(argument!) } }
        return PyObject_Vectorcall(callContext, &arguments, 2, nil)
    }

    /// Fills `event` from the message's CloudEvent (the glue's `_cloudevents.apply`); the 400 of
    /// a structured event whose data cannot be read, or nil.
    private func apply(_ cloudEvent: CloudEventInput, _ record: KafkaRecord, to event: PyPointer) -> InvocationResult? {
        var arguments: [PyPointer?] = [event, PythonObjects.cloudEvent(cloudEvent), PythonObjects.bytes(record.value)]
        defer { for argument in arguments.dropFirst() { funcd_py_decref(argument!) } }
        guard let done = PyObject_Vectorcall(applyCloudEvent, &arguments, 3, nil) else {
            let problem = PythonObjects.takeErrorMessage()
            return InvocationResult(
                status: 400, body: Array("Invalid CloudEvent: \(problem)\n".utf8), error: "invalid CloudEvent: \(problem)")
        }
        funcd_py_decref(done)
        return nil
    }

    /// The handler raised: the glue formats the exception (and its traceback) into the 500.
    private func raised() -> InvocationResult {
        PythonObjects.takingError { _, value, traceback in
            guard let value else {
                return InvocationResult(status: 500, body: Array("Internal Server Error\n".utf8), error: "the handler failed")
            }
            if let traceback { PyException_SetTraceback(value, traceback) }
            return converted(calling: failure, with: value)
        }
    }

    /// `glue.encode(result)` or `glue.failure(error)`, as a result.
    private func converted(calling function: PyPointer, with object: PyPointer) -> InvocationResult {
        var arguments: [PyPointer?] = [object]
        guard let tuple = PyObject_Vectorcall(function, &arguments, 1, nil) else {
            return InvocationResult(status: 500, body: Array("Internal Server Error\n".utf8), error: PythonObjects.takeError())
        }
        defer { funcd_py_decref(tuple) }
        return call.convert(tuple)
    }

    // MARK: - The event

    private func event(_ record: KafkaRecord) -> PyPointer? {
        guard let event = PyDict_New(), let extensions = PyObject_CallNoArgs(extensionsType) else { return nil }
        defer { funcd_py_decref(extensions) }
        let value = PythonObjects.bytes(record.value)
        let data = self.data(record)
        put(event, keys.data, data)
        put(event, keys.eventID, PythonObjects.string(record.eventID))
        put(event, keys.eventType, eventType, owned: false)
        put(event, keys.eventTime, PythonObjects.string(record.eventTime))
        put(event, keys.eventNamespace, namespace, owned: false)
        put(extensions, keys.topic, topic(record.topic), owned: false)
        put(extensions, keys.partition, PyLong_FromLong(Int(record.partition))!)
        put(extensions, keys.offset, PyLong_FromLongLong(record.offset)!)
        put(extensions, keys.key, record.key.map { Self.text($0) } ?? PythonObjects.newNone())
        put(extensions, keys.timestamp, PyLong_FromLongLong(record.timestamp)!)
        let headers = PyDict_New()!
        for (name, text) in record.headers {
            let key = PythonObjects.string(name)
            put(headers, key, PythonObjects.string(text))
            funcd_py_decref(key)
        }
        put(extensions, keys.headers, headers)
        PyObject_SetAttr(extensions, keys.value, value)
        funcd_py_decref(value)
        put(event, keys.extensions, extensions, owned: false)
        return event
    }

    /// `data`: the value parsed when it is one JSON value, else its text. json's C scanner both
    /// decides and parses (NaN and Infinity refused, as JSON has them not): it must take the
    /// value from its first non-space character to its last.
    private func data(_ record: KafkaRecord) -> PyPointer {
        let text = Self.text(record.value)
        let value = record.value
        guard let start = value.firstIndex(where: { !Self.isSpace($0) }) else { return text }
        if scan == nil {
            scan = PyObject_CallNoArgs(kafkaScanner)
            if scan == nil { PyErr_Clear() }
        }
        guard let scan else { return text }
        // Leading and trailing whitespace is ASCII: byte counts are character counts there.
        let trailing = value.reversed().prefix(while: Self.isSpace).count
        var arguments: [PyPointer?] = [text, PyLong_FromLong(start)]
        defer { funcd_py_decref(arguments[1]!) }
        guard let found = PyObject_Vectorcall(scan, &arguments, 2, nil) else {
            // Not JSON (or nested deeper than the stack): the handler gets the text.
            PyErr_Clear()
            return text
        }
        defer { funcd_py_decref(found) }
        let end = PyLong_AsSsize_t(PyTuple_GetItem(found, 1)!)
        guard end + trailing == PyUnicode_GetLength(text) else { return text }
        let parsed = PyTuple_GetItem(found, 0)!
        funcd_py_incref(parsed)
        funcd_py_decref(text)
        return parsed
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 10 || byte == 13 }

    private func topic(_ name: String) -> PyPointer {
        // Messages come in runs of one topic: most lookups are the last one.
        if let lastTopic, lastTopic.name == name { return lastTopic.object }
        if let known = topics[name] {
            lastTopic = (name, known)
            return known
        }
        let object = PythonObjects.string(name)
        topics[name] = object
        lastTopic = (name, object)
        return object
    }

    /// UTF-8 bytes as a str, undecodable bytes replaced (as the glue decodes them).
    private static func text(_ bytes: [UInt8]) -> PyPointer {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.map { base in
                base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    PyUnicode_DecodeUTF8($0, buffer.count, "replace")!
                }
            } ?? PythonObjects.string("")
        }
    }

    /// Sets `dictionary[key] = value`, giving up the reference to `value` unless `owned` is false.
    private func put(_ dictionary: PyPointer, _ key: PyPointer, _ value: PyPointer, owned: Bool = true) {
        PyDict_SetItem(dictionary, key, value)
        if owned { funcd_py_decref(value) }
    }
}
