import FuncdCore
import FuncdSystem

#if canImport(Glibc)
import Glibc
#endif

/// The process environment as a dictionary, and the one way funcd reports a fatal error.
public enum ProcessEnvironment {
    public static func current() -> [String: String] {
        var values: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                values[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return values
    }

    /// Prints `funcd: error: <message>` on stderr and exits with `code`.
    public static func fail(_ message: String, code: Int32 = 1) -> Never {
        printError("funcd: error: \(message)")
        exit(code)
    }

    /// One line on stderr, written at once.
    public static func printError(_ line: String) {
        var text = line
        if !text.hasSuffix("\n") { text += "\n" }
        text.withUTF8 { DescriptorOutput.writeAll(2, UnsafeRawBufferPointer($0)) }
    }
}
