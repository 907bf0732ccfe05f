import Foundation
import FuncdCore

/// `funcd run function.yaml`: the Function resource's files written to a folder of their own,
/// and the command line rewritten to serve that module as `funcd run <folder>/<module>.<ext>`.
public enum LocalRun {
    /// The arguments for the language executable: `arguments` with the manifest replaced by the
    /// module file, and the handler, runtime and timeout the Function names (a flag the user gave
    /// comes later and wins).
    public static func arguments(
        _ arguments: [String], manifest: String, readingStandardInput: () -> String?, warn: (String) -> Void
    ) throws(ConversionError) -> [String] {
        var resources = KubelessResources()
        let text: String?
        if manifest == "-" {
            text = readingStandardInput()
        } else {
            text = try? String(contentsOfFile: manifest, encoding: .utf8)
        }
        guard let text else { throw ConversionError("\(manifest): cannot be read") }
        resources.read(text, source: manifest)
        guard let function = resources.functions.first else {
            throw ConversionError(
                "\(manifest): no kubeless Function in it\(resources.problems.isEmpty ? "" : " (\(resources.problems.joined(separator: "; ")))")")
        }
        if resources.functions.count > 1 {
            throw ConversionError(
                "\(manifest): \(resources.functions.count) Functions (\(resources.functions.map(\.metadata.name).joined(separator: ", "))); give a file with one")
        }
        let source = try FunctionSource(function)
        source.warnings.forEach(warn)
        let folder = try write(source, name: function.metadata.name, namespace: function.metadata.namespace)
        var rewritten = arguments
        guard let index = rewritten.firstIndex(of: manifest) else { return rewritten }
        rewritten[index] = "\(folder)/\(source.files[0].name)"
        rewritten.insert(
            contentsOf: [
                "--handler", source.handler, "--runtime", source.runtime, "--timeout", String(source.timeoutSeconds),
            ], at: index + 1)
        return rewritten
    }

    /// Writes the files to `$TMPDIR/funcd-<uid>/<namespace>-<name>`, emptied first.
    static func write(_ source: FunctionSource, name: String, namespace: String?) throws(ConversionError) -> String {
        let base = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/funcd-\(getuid())"
        let folder = "\(base)/\(namespace ?? "default")-\(name)"
        let files = FileManager.default
        do {
            try files.createDirectory(atPath: base, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if files.fileExists(atPath: folder) { try files.removeItem(atPath: folder) }
            try files.createDirectory(atPath: folder, withIntermediateDirectories: false)
            for file in source.files {
                let path = "\(folder)/\(file.name)"
                let parent = String(path[..<path.lastIndex(of: "/")!])
                try files.createDirectory(atPath: parent, withIntermediateDirectories: true)
                guard files.createFile(atPath: path, contents: Data(file.bytes)) else {
                    throw ConversionError("cannot write \(folder)/\(file.name)")
                }
            }
        } catch let error as ConversionError {
            throw error
        } catch {
            throw ConversionError("cannot write the function's files to \(folder): \(error.localizedDescription)")
        }
        return folder
    }
}
