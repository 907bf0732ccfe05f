import Foundation

/// Where the end-to-end tests find the package, the built executables and the fixtures.
///
/// The test target excludes `Fixtures/` from its sources and declares no resources, so nothing is
/// bundled: every location is derived at run time from this source file's `#filePath`. That keeps
/// the tests runnable from any working directory (`swift test`, an IDE, CI) without copying files.
enum TestPaths {
    /// The directory holding `Package.swift`, found by walking up from this source file.
    static let packageRoot: URL = {
        let fileManager = FileManager.default
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if fileManager.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                return directory
            }
            directory.deleteLastPathComponent()
        }
        // Not reachable in a checkout; fall back to the working directory `swift test` ran in.
        return URL(fileURLWithPath: fileManager.currentDirectoryPath)
    }()

    /// The folder with the built `funcd` and `funcd-python`: `$FUNCD_BIN_DIR` when set (CI may test
    /// a release build or an installed copy), else `<package root>/.build/debug`.
    static let binDirectory: URL = {
        if let override = ProcessInfo.processInfo.environment["FUNCD_BIN_DIR"], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true)
        }
        return packageRoot.appendingPathComponent(".build/debug", isDirectory: true)
    }()

    /// `Tests/FuncdEndToEndTests/Fixtures`, the Python handler files the tests serve.
    static let fixturesDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support/
        .deletingLastPathComponent()  // FuncdEndToEndTests/
        .appendingPathComponent("Fixtures", isDirectory: true)

    /// The full path of one built executable (`funcd` or `funcd-python`).
    static func executable(_ name: String) -> URL {
        binDirectory.appendingPathComponent(name)
    }

    /// The full path of one fixture file.
    static func fixture(_ name: String) -> URL {
        fixturesDirectory.appendingPathComponent(name)
    }

    /// Creates a fresh, empty, uniquely named directory under the system temporary directory.
    static func makeTemporaryDirectory(prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
