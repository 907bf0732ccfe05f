import Foundation
import FuncdCore

/// What a kubeless Function's spec says about its code, made concrete for funcd: the language and
/// the runtime funcd embeds for it, the module and function, the files of the ConfigMap.
public struct FunctionSource {
    public var language: Language
    /// `FUNC_RUNTIME` as funcd runs it: `python3.11`, `nodejs18`, `ruby3.1`.
    public var runtime: String
    public var module: String
    public var handler: String
    /// Path (relative to the code folder) and bytes, the module's file first (named after the
    /// handler, as kubeless named it), then an archive's other files, then the dependencies file
    /// when there are dependencies.
    public var files: [(name: String, bytes: [UInt8])]
    /// The dependencies file's name (`requirements.txt`, `package.json`, `Gemfile`).
    public var depsFile: String
    public var timeoutSeconds: Int
    /// Said on stderr: a runtime version changed.
    public var warnings: [String]

    /// The runtime each language runs as, with its dependency file.
    static let embedded: [Language: (runtime: String, deps: String, family: String)] = [
        .python: ("python3.11", "requirements.txt", "python"),
        .node: ("nodejs18", "package.json", "nodejs"),
        .ruby: ("ruby3.1", "Gemfile", "ruby"),
    ]

    /// The language of a kubeless runtime name (`python3.7`, `nodejs12`, `nodejs_distroless8`,
    /// `nodejsCE8`, `ruby2.4`); nil for one funcd does not embed (go, java, php, ...).
    static func language(ofRuntime runtime: String) -> Language? {
        let family = runtime.prefix { $0.isLetter || $0 == "_" }.lowercased()
        switch family {
        case "python": return .python
        case "nodejs", "nodejs_distroless", "nodejsce", "node": return .node
        case "ruby": return .ruby
        default: return nil
        }
    }

    public init(_ function: KubelessResources.Function) throws(ConversionError) {
        let name = function.metadata.name
        guard let language = Self.language(ofRuntime: function.runtime), let embedded = Self.embedded[language] else {
            throw ConversionError(
                function.runtime.isEmpty
                    ? "Function \(name): no spec.runtime"
                    : "Function \(name): runtime \(function.runtime) is not one funcd embeds (python, nodejs, ruby); a compiled function can run as a program with FUNC_RUNTIME=exec, but is not converted")
        }
        self.language = language
        self.runtime = embedded.runtime
        self.depsFile = embedded.deps
        warnings = []
        if function.runtime.lowercased() != embedded.runtime {
            warnings.append(
                "Function \(name): runtime \(function.runtime) runs as \(embedded.runtime), the \(embedded.family) funcd embeds; check that the code and its \(embedded.deps) work there")
        }
        let parts = function.handler.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ConversionError("Function \(name): handler \"\(function.handler)\" is not module.function")
        }
        module = String(parts[0])
        handler = String(parts[1])
        if function.timeout.isEmpty {
            timeoutSeconds = 180
        } else if let seconds = Int(function.timeout.trimmingCharacters(in: .whitespaces)), seconds > 0 {
            timeoutSeconds = seconds
        } else {
            throw ConversionError("Function \(name): timeout \"\(function.timeout)\" is not a whole number of seconds")
        }
        let moduleFile = "\(module).\(language.fileExtensions.first ?? "")"
        files = try Self.files(of: function, moduleFile: moduleFile)
        // `+deps`: the dependencies file came in the archive.
        if !function.deps.isEmpty && !files.contains(where: { $0.name == depsFile }) {
            files.append((depsFile, Array(function.deps.utf8)))
        }
    }

    /// The code's files, from `function` as its content type says.
    static func files(
        of function: KubelessResources.Function, moduleFile: String
    ) throws(ConversionError) -> [(name: String, bytes: [UInt8])] {
        let name = function.metadata.name
        let type = function.contentType.isEmpty ? "text" : function.contentType
        let parts = type.split(separator: "+").map { $0.lowercased() }
        let encoding = parts.first ?? "text"
        let modifiers = Set(parts.dropFirst())
        guard modifiers.isSubset(of: ["zip", "compressedtar", "deps"]) else {
            throw ConversionError("Function \(name): function-content-type \(type) is not one kubeless knew")
        }
        let bytes: [UInt8]
        switch encoding {
        case "text":
            bytes = Array(function.function.utf8)
        case "base64":
            guard
                let data = Data(
                    base64Encoded: function.function.filter { !$0.isWhitespace }, options: .ignoreUnknownCharacters)
            else { throw ConversionError("Function \(name): spec.function is not base64") }
            bytes = Array(data)
        case "url":
            throw ConversionError(
                "Function \(name): the code is at \(function.function) (function-content-type \(type)); download it and deploy the file, it is not converted")
        default:
            throw ConversionError("Function \(name): function-content-type \(type) is not one kubeless knew")
        }
        if let algorithm = function.checksum.split(separator: ":", maxSplits: 1).first, function.checksum.contains(":") {
            let expected = function.checksum.split(separator: ":", maxSplits: 1).last.map(String.init) ?? ""
            guard algorithm == "sha256" else {
                throw ConversionError("Function \(name): checksum \(function.checksum) is not sha256:<hex>")
            }
            guard SHA256.hex(bytes) == expected.lowercased() else {
                throw ConversionError("Function \(name): the code's sha256 is not spec.checksum's \(expected)")
            }
        }
        if modifiers.contains("zip") || modifiers.contains("compressedtar") {
            // kubeless unpacked the archive into the code folder: its files are the function's.
            let files = try FunctionArchive.unpack(bytes, zip: modifiers.contains("zip"), function: name)
            guard let module = files.firstIndex(where: { $0.name == moduleFile }) else {
                throw ConversionError(
                    "Function \(name): the archive has no \(moduleFile) for the handler \(function.handler) (it has \(files.map(\.name).joined(separator: ", ")))")
            }
            // The module first, as for plain code.
            return [files[module]] + files.enumerated().filter { $0.offset != module }.map(\.element)
        }
        return [(moduleFile, bytes)]
    }
}

/// One item that could not be converted, said in one line.
public struct ConversionError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
