internal import CPython
import FuncdCore

/// A strong reference to a Python object, as a raw pointer: every function here is called with
/// the GIL held, and ownership follows CPython's rules (new references are decref'd by the caller).
typealias PyPointer = UnsafeMutablePointer<PyObject>

/// Conversions between Swift values and Python objects. All of them need the GIL.
enum PythonObjects {
    static func string(_ text: String) -> PyPointer {
        var text = text
        return text.withUTF8 { utf8 in
            utf8.withMemoryRebound(to: CChar.self) { chars in
                PyUnicode_FromStringAndSize(chars.baseAddress, chars.count)!
            }
        }
    }

    static func optionalString(_ text: String?) -> PyPointer {
        guard let text else { return newNone() }
        return string(text)
    }

    static func bytes(_ bytes: [UInt8]) -> PyPointer {
        bytes.withUnsafeBytes { raw in
            PyBytes_FromStringAndSize(raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)!
        }
    }

    static func int(_ value: Int) -> PyPointer { PyLong_FromLong(value)! }

    static func newNone() -> PyPointer {
        let none = funcd_py_none()!
        funcd_py_incref(none)
        return none
    }

    /// A tuple of `(name, value)` tuples: headers as the glue's Request expects them.
    /// What the glue's `cloudevent` argument says of a request: None, the binary-mode attributes as
    /// a tuple of pairs, or True (structured mode: the body is the event). A new reference.
    static func cloudEvent(_ input: CloudEventInput?) -> PyPointer {
        switch input {
        case nil: newNone()
        case .binary(let attributes): headerTuple(attributes)
        case .structured: funcd_py_new_true()
        }
    }

    static func headerTuple(_ headers: [(String, String)]) -> PyPointer {
        let tuple = PyTuple_New(headers.count)!
        for (index, (name, value)) in headers.enumerated() {
            let pair = PyTuple_New(2)!
            PyTuple_SetItem(pair, 0, string(name))
            PyTuple_SetItem(pair, 1, string(value))
            PyTuple_SetItem(tuple, index, pair)
        }
        return tuple
    }

    /// The UTF-8 text of a `str`, or nil (and no pending error) when it is not one.
    static func swiftString(_ object: PyPointer) -> String? {
        var size = 0
        guard let utf8 = PyUnicode_AsUTF8AndSize(object, &size) else {
            PyErr_Clear()
            return nil
        }
        return String(decoding: UnsafeRawBufferPointer(start: utf8, count: size), as: UTF8.self)
    }

    /// The contents of a `bytes`, or nil (and no pending error) when it is not one.
    static func swiftBytes(_ object: PyPointer) -> [UInt8]? {
        var buffer: UnsafeMutablePointer<CChar>? = nil
        var size = 0
        guard PyBytes_AsStringAndSize(object, &buffer, &size) == 0 else {
            PyErr_Clear()
            return nil
        }
        return [UInt8](UnsafeRawBufferPointer(start: buffer, count: size))
    }

    /// `str(object)` in Swift, for messages.
    static func describe(_ object: PyPointer) -> String {
        guard let text = PyObject_Str(object) else {
            PyErr_Clear()
            return "<unprintable>"
        }
        defer { funcd_py_decref(text) }
        return swiftString(text) ?? "<unprintable>"
    }

    /// Takes the pending Python exception and returns `Type: message`.
    static func takeError() -> String {
        takingError { type, value, _ in
            let name: String
            if let type, let nameObject = PyObject_GetAttrString(type, "__name__") {
                name = swiftString(nameObject) ?? "Exception"
                funcd_py_decref(nameObject)
            } else {
                PyErr_Clear()
                name = "Exception"
            }
            guard let value else { return name }
            return "\(name): \(describe(value))"
        }
    }

    /// Takes the pending exception and returns only its message (for the glue's LoadError, whose
    /// message is the whole line funcd prints).
    static func takeErrorMessage() -> String {
        takingError { _, value, _ in value.map(describe) ?? "unknown error" }
    }

    /// Fetches and normalises the pending exception, hands its type, value and traceback to
    /// `body`, and releases all three references afterwards.
    static func takingError<T>(_ body: (PyPointer?, PyPointer?, PyPointer?) -> T) -> T {
        var type: PyPointer? = nil
        var value: PyPointer? = nil
        var traceback: PyPointer? = nil
        PyErr_Fetch(&type, &value, &traceback)
        PyErr_NormalizeException(&type, &value, &traceback)
        defer {
            funcd_py_xdecref(type)
            funcd_py_xdecref(value)
            funcd_py_xdecref(traceback)
        }
        return body(type, value, traceback)
    }
}
