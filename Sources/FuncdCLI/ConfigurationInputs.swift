import FuncdCore

/// What a command line adds to the environment to make a ``Configuration``: values that override
/// variables (flags, and what `run` reads off the file name) and variables it makes funcd ignore
/// (`run` ignores a `FUNC_RUNTIME` left over from a pod).
///
/// The supervisor hands these to its workers (``variable``), so that a worker builds the same
/// configuration without parsing the command line again: ArgumentParser's reflection over every
/// option was 4-7 ms of CPU, a sixth of a Python worker's start.
public struct ConfigurationInputs: Sendable, Equatable {
    /// The variable that carries the inputs from the supervisor to a worker.
    public static let variable = WorkerEnvironment.configuration

    public var overrides: [String: String]
    public var ignored: [String]

    public init(overrides: [String: String], ignored: [String] = []) {
        self.overrides = overrides
        self.ignored = ignored
    }

    public func configuration(environment: [String: String]) throws -> Configuration {
        var environment = environment
        for name in ignored { environment[name] = nil }
        return try Configuration(environment: environment, overrides: overrides)
    }

    /// One line of text any value survives (an environment variable holds no NUL, but a flag's
    /// value may hold anything else): `=` and each name, `+` and each override, each as its UTF-8
    /// length in decimal, `:`, and its bytes.
    public var encoded: String {
        var text = ""
        for name in ignored.sorted() { text += "=" + Self.field(name) }
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
            text += "+" + Self.field(name) + Self.field(value)
        }
        return text
    }

    /// The inputs `encoded` wrote, or nil for anything else.
    public init?(encoded text: String) {
        var overrides: [String: String] = [:]
        var ignored: [String] = []
        var rest = Substring(text).utf8[...]
        while let kind = rest.first {
            rest = rest.dropFirst()
            guard let name = Self.takeField(&rest) else { return nil }
            switch kind {
            case UInt8(ascii: "="):
                ignored.append(name)
            case UInt8(ascii: "+"):
                guard let value = Self.takeField(&rest) else { return nil }
                overrides[name] = value
            default:
                return nil
            }
        }
        self.init(overrides: overrides, ignored: ignored)
    }

    private static func field(_ text: String) -> String {
        "\(text.utf8.count):\(text)"
    }

    private static func takeField(_ rest: inout Substring.UTF8View.SubSequence) -> String? {
        guard let colon = rest.firstIndex(of: UInt8(ascii: ":")), colon > rest.startIndex,
            rest[..<colon].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let count = Int(String(decoding: rest[..<colon], as: UTF8.self))
        else { return nil }
        let start = rest.index(after: colon)
        guard rest.distance(from: start, to: rest.endIndex) >= count else { return nil }
        let end = rest.index(start, offsetBy: count)
        guard let text = String(rest[start..<end]) else { return nil }
        rest = rest[end...]
        return text
    }
}
