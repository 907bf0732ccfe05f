import Foundation
import Testing

/// Where the handler's code comes from: a plain folder, a Kubernetes ConfigMap volume (how
/// kubeless mounts `/kubeless`), and the `MOD_ROOT_PATH` alias. In each case a module beside the
/// handler (`helper.py`) must be importable.
@Suite(.sharesMachine)
struct CodeLayoutTests {
    static let fixtures = ["uses_helper.py", "helper.py"]
    static let expected = "hello configmap from helper"

    @Test("a plain code folder: the handler imports its helper module")
    func plainFolder() throws {
        try Funcd.withServer(fixtures: Self.fixtures, module: "uses_helper") { server in
            let response = try server.get("/")
            #expect(response.status == 200 && response.text == Self.expected, "GET / → \(response)\n\(server.diagnostics)")
        }
    }

    @Test("a ConfigMap volume (..data symlinks): the handler loads and imports its helper module")
    func configMapVolume() throws {
        // The fixture builder itself: the layout must really be the kubelet's.
        let volume = try ConfigMapVolume(fixtures: Self.fixtures)
        defer { volume.remove() }
        let fileManager = FileManager.default
        let dataLink = try? fileManager.destinationOfSymbolicLink(atPath: volume.file("..data"))
        let fileLink = try? fileManager.destinationOfSymbolicLink(atPath: volume.file("uses_helper.py"))
        #expect(dataLink == ConfigMapVolume.dataFolderName, "..data -> \(dataLink ?? "not a symlink")")
        #expect(fileLink == "..data/uses_helper.py", "uses_helper.py -> \(fileLink ?? "not a symlink")")
        #expect(fileManager.fileExists(atPath: volume.file("\(ConfigMapVolume.dataFolderName)/helper.py")))

        try Funcd.withServer(fixtures: Self.fixtures, module: "uses_helper", layout: .configMap) { server in
            let response = try server.get("/")
            #expect(response.status == 200 && response.text == Self.expected, "GET / → \(response)\n\(server.diagnostics)")
        }
    }

    @Test("MOD_ROOT_PATH is an alias of KUBELESS_INSTALL_VOLUME")
    func modRootPathAlias() throws {
        try Funcd.withServer(
            fixtures: Self.fixtures, module: "uses_helper", layout: .configMap, codeVariable: "MOD_ROOT_PATH"
        ) { server in
            let response = try server.get("/")
            #expect(response.status == 200 && response.text == Self.expected, "GET / → \(response)\n\(server.diagnostics)")
        }
    }
}
