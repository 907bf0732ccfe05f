/// The interpreters funcd can embed, and `exec`: any program, run per call over stdin and
/// stdout. Each has its own executable (`funcd-<name>`) so that an image carries one language
/// and one interpreter owns the process's signals.
public enum Language: String, Sendable, CaseIterable {
    case python
    case node
    case ruby
    case exec

    /// The languages whose handler is a function in a module file.
    public static let embedded: [Language] = [.python, .node, .ruby]

    /// The file extension of a module in this language, without the dot (none for `exec`: a
    /// program is named by its whole file name).
    public var fileExtension: String { fileExtensions.first ?? "" }

    /// Every extension a module file of this language may have, the usual one first: Node also
    /// runs `.mjs` (an ES module) and `.cjs` (CommonJS whatever package.json says).
    public var fileExtensions: [String] {
        switch self {
        case .python: ["py"]
        case .node: ["js", "mjs", "cjs"]
        case .ruby: ["rb"]
        case .exec: []
        }
    }

    /// The executable that embeds this language's interpreter.
    public var executableName: String { "funcd-\(rawValue)" }

    /// Reads the language from a kubeless `FUNC_RUNTIME` value such as `python3.11`, `nodejs18`
    /// or `ruby3.1`; nil when the value names none of them.
    public init?(runtime: String) {
        let lowered = runtime.lowercased()
        if lowered.hasPrefix("python") {
            self = .python
        } else if lowered.hasPrefix("node") {
            self = .node
        } else if lowered.hasPrefix("ruby") {
            self = .ruby
        } else if lowered == "exec" {
            self = .exec
        } else {
            return nil
        }
    }

    /// Reads the language from a module file's extension.
    public init?(fileExtension: String) {
        guard let match = Language.embedded.first(where: { $0.fileExtensions.contains(fileExtension) }) else {
            return nil
        }
        self = match
    }
}
