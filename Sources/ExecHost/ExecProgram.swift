import FuncdCore

#if canImport(Glibc)
import Glibc
#endif

/// The program the exec runtime runs per call, resolved once at start: its path and the argv
/// that runs it. A ConfigMap mounts files 0644, so a script without its executable bit runs
/// through the interpreter its `#!` line names, as the kernel would have run it.
struct ExecProgram: Equatable {
    /// The file the configuration names.
    let path: String
    /// What is spawned: `path` itself, or the `#!` interpreter with its one optional argument
    /// and then `path`.
    let arguments: [String]

    /// The longest `#!` line read (the kernel reads 256 bytes since Linux 5.1).
    static let shebangLimit = 256

    /// Resolves the program at `path`; throws one clear error when it cannot run. A relative
    /// path (`funcd run examples/exec/hello.sh`) is made absolute here, against the directory funcd
    /// started in: each call's program starts in the code folder, where it would not be found.
    init(path relativePath: String) throws(FuncdError) {
        let path = relativePath.hasPrefix("/") ? relativePath : Self.currentDirectory() + "/" + relativePath
        self.path = path
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw FuncdError(.functionLoad, "\(path): no such program (\(String(cString: strerror(errno))))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw FuncdError(.functionLoad, "\(path): not a regular file, so not a program")
        }
        if access(path, X_OK) == 0 {
            arguments = [path]
            return
        }
        guard let line = try Self.firstLine(of: path), let shebang = Self.parseShebang(line) else {
            throw FuncdError(
                .functionLoad,
                "\(path): not executable and no #! line names an interpreter (chmod +x it, or start it with e.g. #!/bin/sh)")
        }
        guard access(shebang.interpreter, X_OK) == 0 else {
            throw FuncdError(.functionLoad, "\(path): its #! interpreter \(shebang.interpreter) cannot be run (\(String(cString: strerror(errno))))")
        }
        arguments = [shebang.interpreter] + (shebang.argument.map { [$0] } ?? []) + [path]
    }

    /// The interpreter and its optional single argument from a `#!` line (without the line
    /// end), split as Linux splits it: the first word after `#!`, then the rest as one argument.
    static func parseShebang(_ line: [UInt8]) -> (interpreter: String, argument: String?)? {
        guard line.count > 2, line[0] == UInt8(ascii: "#"), line[1] == UInt8(ascii: "!") else { return nil }
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var rest = line[2...].drop(while: isBlank)
        while let last = rest.last, isBlank(last) || last == UInt8(ascii: "\r") { rest = rest.dropLast() }
        guard !rest.isEmpty else { return nil }
        let interpreter = rest.prefix { !isBlank($0) }
        let argument = rest.dropFirst(interpreter.count).drop(while: isBlank)
        return (
            String(decoding: interpreter, as: UTF8.self),
            argument.isEmpty ? nil : String(decoding: argument, as: UTF8.self)
        )
    }

    /// The process's working directory (`.` if it cannot be read, which leaves the path as given).
    private static func currentDirectory() -> String {
        guard let directory = getcwd(nil, 0) else { return "." }
        defer { free(directory) }
        return String(cString: directory)
    }

    private static func firstLine(of path: String) throws(FuncdError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw FuncdError(.functionLoad, "\(path): cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: shebangLimit)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, shebangLimit) }
        guard count > 0 else { return nil }
        let bytes = buffer[0..<count]
        return Array(bytes.prefix { $0 != UInt8(ascii: "\n") })
    }
}
