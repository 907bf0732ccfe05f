import Foundation

/// Typed, forgiving access to a JSON object decoded by `JSONSerialization`.
///
/// The handler fixtures answer with JSON descriptions of what they saw. `JSONSerialization`
/// hands back `Any` whose concrete number and boolean types differ between Foundation
/// implementations (`NSNumber` or Swift numbers), so each accessor accepts either, and a wrong
/// type reads as nil, which then fails the test's expectation with the whole body in the message.
struct JSONObject: CustomStringConvertible {
    let raw: [String: Any]

    init(_ raw: [String: Any]) {
        self.raw = raw
    }

    /// The response body as a JSON object, or nil when it is not one.
    init?(_ response: HTTPResponse) {
        guard let raw = response.jsonObject else { return nil }
        self.raw = raw
    }

    /// `text` as a JSON object, or nil when it is not one.
    init?(text: String) {
        guard let data = text.data(using: .utf8),
            let raw = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { return nil }
        self.raw = raw
    }

    subscript(key: String) -> Any? { raw[key] }

    func string(_ key: String) -> String? { raw[key] as? String }

    func number(_ key: String) -> Double? { Self.number(raw[key]) }

    func int(_ key: String) -> Int? { number(key).flatMap { $0 == $0.rounded() ? Int($0) : nil } }

    func bool(_ key: String) -> Bool? {
        if let value = raw[key] as? Bool { return value }
        return (raw[key] as? NSNumber)?.boolValue
    }

    func object(_ key: String) -> JSONObject? { (raw[key] as? [String: Any]).map { JSONObject($0) } }

    func strings(_ key: String) -> [String]? { raw[key] as? [String] }

    /// Whether `key` is present with the value `null` (a Python `None`).
    func isNull(_ key: String) -> Bool { raw.keys.contains(key) && raw[key] is NSNull }

    /// The value at `key` re-encoded with sorted keys, for comparing structures.
    func canonical(_ key: String) -> String? { Self.canonicalText(of: raw[key]) }

    var description: String { Self.canonicalText(of: raw) ?? "\(raw)" }

    /// A JSON number as a Double, whichever type Foundation chose for it.
    static func number(_ value: Any?) -> Double? {
        if let double = value as? Double { return double }
        if let int = value as? Int { return Double(int) }
        if let number = value as? NSNumber { return number.doubleValue }
        return nil
    }

    /// `value` encoded as JSON with sorted keys (nil if it is not JSON-encodable).
    static func canonicalText(of value: Any?) -> String? {
        guard let value else { return nil }
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// JSON `text` re-encoded with sorted keys, to compare with the canonical form of a decoded value.
    static func canonicalText(json text: String) -> String? {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        else { return nil }
        return canonicalText(of: value)
    }
}
