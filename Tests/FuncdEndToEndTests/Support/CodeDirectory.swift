import Foundation

/// A folder that `funcd` loads handler code from (`KUBELESS_INSTALL_VOLUME`, or `run FILE`'s folder).
protocol CodeLocation: AnyObject {
    /// The absolute path of the folder.
    var path: String { get }
    /// Deletes the folder and everything in it; safe to call more than once.
    func remove()
}

extension CodeLocation {
    /// The absolute path of `name` inside the folder.
    func file(_ name: String) -> String {
        URL(fileURLWithPath: path).appendingPathComponent(name).path
    }
}

/// A plain temporary code folder holding copies of fixture files (or given contents).
///
/// Fixtures are copied rather than served from `Fixtures/` in place so that Python's
/// `__pycache__` and anything a handler writes stay out of the source tree, and so parallel
/// tests never share a folder. Call ``remove()`` from a `defer`; `deinit` is a backstop only,
/// since Swift may release the object right after its last use while the server still needs it.
final class CodeDirectory: CodeLocation {
    let url: URL
    var path: String { url.path }

    /// A folder with the given files (name, UTF-8 contents).
    init(files: [(name: String, contents: String)]) throws {
        url = try TestPaths.makeTemporaryDirectory(prefix: "funcd-e2e-code")
        for file in files {
            try Data(file.contents.utf8).write(to: url.appendingPathComponent(file.name))
        }
    }

    /// A folder with copies of the named files from `Fixtures/`.
    convenience init(fixtures: [String]) throws {
        try self.init(files: fixtures.map { (name: $0, contents: try CodeDirectory.fixtureText($0)) })
    }

    /// A folder with a copy of the whole `Fixtures/<folder>` tree (a Node function with its
    /// `node_modules`, say).
    init(copyingFixtureFolder folder: String) throws {
        url = try TestPaths.makeTemporaryDirectory(prefix: "funcd-e2e-code")
        let source = TestPaths.fixture(folder)
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
            try FileManager.default.copyItem(
                at: source.appendingPathComponent(name), to: url.appendingPathComponent(name))
        }
    }

    deinit {
        remove()
    }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }

    /// The text of a fixture file, with a clear error when it is missing.
    static func fixtureText(_ name: String) throws -> String {
        let url = TestPaths.fixture(name)
        do {
            return try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw MissingFixture(path: url.path, underlying: "\(error)")
        }
    }

    /// Thrown when a fixture file named by a test does not exist.
    struct MissingFixture: Error, CustomStringConvertible {
        let path: String
        let underlying: String
        var description: String { "cannot read fixture \(path): \(underlying)" }
    }
}
