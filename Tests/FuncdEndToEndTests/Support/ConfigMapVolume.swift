import Foundation

/// A temporary folder laid out exactly like a Kubernetes ConfigMap volume, which is how kubeless
/// mounts function code into the pod at `/kubeless`.
///
/// The kubelet writes the files into a hidden timestamped folder, points a `..data` symlink at
/// it, and makes every visible file a symlink through `..data` (so an update is one atomic
/// rename of `..data`):
///
/// ```
/// ..2026_11_21_10_00_00.123456789/handler.py   (the real file)
/// ..data -> ..2026_11_21_10_00_00.123456789
/// handler.py -> ..data/handler.py
/// ```
///
/// A server that resolves paths naively, lists the folder, or refuses symlinks breaks on this
/// layout in production while passing with a plain folder, hence a dedicated fixture. Symlinks
/// are relative, as the kubelet makes them. Call ``remove()`` from a `defer`.
final class ConfigMapVolume: CodeLocation {
    /// The hidden folder with the real files.
    static let dataFolderName = "..2026_11_21_10_00_00.123456789"

    let url: URL
    var path: String { url.path }

    /// A volume with the given files (name, UTF-8 contents).
    init(files: [(name: String, contents: String)]) throws {
        let fileManager = FileManager.default
        url = try TestPaths.makeTemporaryDirectory(prefix: "funcd-e2e-configmap")
        let dataFolder = url.appendingPathComponent(Self.dataFolderName, isDirectory: true)
        try fileManager.createDirectory(at: dataFolder, withIntermediateDirectories: false)
        for file in files {
            try Data(file.contents.utf8).write(to: dataFolder.appendingPathComponent(file.name))
        }
        try fileManager.createSymbolicLink(
            atPath: url.appendingPathComponent("..data").path, withDestinationPath: Self.dataFolderName)
        for file in files {
            try fileManager.createSymbolicLink(
                atPath: url.appendingPathComponent(file.name).path, withDestinationPath: "..data/\(file.name)")
        }
    }

    /// A volume holding a copy of the whole `Fixtures/<folder>` tree (a Node function with its
    /// `node_modules`, say); each top-level entry is linked through `..data`.
    init(copyingFixtureFolder folder: String) throws {
        let fileManager = FileManager.default
        url = try TestPaths.makeTemporaryDirectory(prefix: "funcd-e2e-configmap")
        let dataFolder = url.appendingPathComponent(Self.dataFolderName, isDirectory: true)
        try fileManager.createDirectory(at: dataFolder, withIntermediateDirectories: false)
        let source = TestPaths.fixture(folder)
        let names = try fileManager.contentsOfDirectory(atPath: source.path)
        for name in names {
            try fileManager.copyItem(at: source.appendingPathComponent(name), to: dataFolder.appendingPathComponent(name))
        }
        try fileManager.createSymbolicLink(
            atPath: url.appendingPathComponent("..data").path, withDestinationPath: Self.dataFolderName)
        for name in names {
            try fileManager.createSymbolicLink(
                atPath: url.appendingPathComponent(name).path, withDestinationPath: "..data/\(name)")
        }
    }

    /// A volume with copies of the named files from `Fixtures/`.
    convenience init(fixtures: [String]) throws {
        try self.init(files: fixtures.map { (name: $0, contents: try CodeDirectory.fixtureText($0)) })
    }

    deinit {
        remove()
    }

    /// Publishes new contents the way the kubelet updates a ConfigMap volume: the files go into a
    /// fresh hidden folder, a temporary `..data_tmp` link to it is renamed over `..data` (one
    /// atomic step), visible links are added for new names, and the old folder is deleted.
    func update(files: [(name: String, contents: String)], version: Int) throws {
        let fileManager = FileManager.default
        let folderName = "..2026_11_21_10_0\(version)_00.123456789"
        let folder = url.appendingPathComponent(folderName, isDirectory: true)
        try fileManager.createDirectory(at: folder, withIntermediateDirectories: false)
        for file in files {
            try Data(file.contents.utf8).write(to: folder.appendingPathComponent(file.name))
        }
        let previous = try fileManager.destinationOfSymbolicLink(atPath: url.appendingPathComponent("..data").path)
        let temporary = url.appendingPathComponent("..data_tmp").path
        try fileManager.createSymbolicLink(atPath: temporary, withDestinationPath: folderName)
        guard rename(temporary, url.appendingPathComponent("..data").path) == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
        for file in files where !fileManager.fileExists(atPath: url.appendingPathComponent(file.name).path) {
            try fileManager.createSymbolicLink(
                atPath: url.appendingPathComponent(file.name).path, withDestinationPath: "..data/\(file.name)")
        }
        try? fileManager.removeItem(at: url.appendingPathComponent(previous))
    }

    /// Deletes the volume (the symlinks and the hidden folder); safe to call more than once.
    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}
