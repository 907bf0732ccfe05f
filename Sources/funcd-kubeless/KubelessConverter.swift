import Foundation
import FuncdCLI
import FuncdKubeless

/// `funcd kubeless convert`: reads the files, prints the manifests on stdout and each warning
/// and error on stderr; 1 when anything was not converted.
enum KubelessConverter {
    static func run(_ command: KubelessConvert) -> Int32 {
        var resources = KubelessResources()
        var unreadable = false
        for file in command.files {
            let text: String? = file == "-" ? standardInput() : try? String(contentsOfFile: file, encoding: .utf8)
            guard let text else {
                say("error", "\(file): cannot be read")
                unreadable = true
                continue
            }
            resources.read(text, source: file)
        }
        var options = Conversion.Options()
        options.kafkaBrokers = command.kafkaBrokers
        options.imagePrefix = command.imagePrefix
        options.imageTag = command.imageTag
        let conversion = Conversion(resources, options: options)
        for warning in conversion.warnings { say("warning", warning) }
        for error in conversion.errors { say("error", error) }
        if !conversion.documents.isEmpty {
            do {
                FileHandle.standardOutput.write(Data(try conversion.yaml().utf8))
            } catch {
                say("error", "the manifests could not be written as YAML: \(error)")
                return 1
            }
        }
        return unreadable || !conversion.errors.isEmpty ? 1 : 0
    }

    static func say(_ level: String, _ line: String) {
        FileHandle.standardError.write(Data("funcd: \(level): \(line)\n".utf8))
    }

    static func standardInput() -> String? {
        String(data: FileHandle.standardInput.readDataToEndOfFile(), encoding: .utf8)
    }
}
