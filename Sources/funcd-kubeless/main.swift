import FuncdCLI
import FuncdCore
import FuncdKubeless
import FuncdSystem

#if canImport(Glibc)
import Glibc
#endif

// funcd-kubeless: the kubeless commands, which need a YAML reader (and with it Foundation) that
// the interpreter-less `funcd` and the language executables keep out of the images. `funcd`
// hands these command lines over (see FrontDoor).
let arguments = Array(CommandLine.arguments.dropFirst())
switch try? FuncdCommand.parseAsRoot(arguments) {
case let convert as KubelessConvert:
    exit(KubelessConverter.run(convert))
case let run as Run where isKubelessManifest(run.file):
    let rewritten: [String]
    do {
        rewritten = try LocalRun.arguments(
            arguments, manifest: run.file, readingStandardInput: KubelessConverter.standardInput,
            warn: { KubelessConverter.say("warning", $0) })
    } catch {
        ProcessEnvironment.fail(error.description)
    }
    // Back to funcd, which serves the module file now written.
    let funcd = "\(RuntimeDirectory.executableDirectory())/funcd"
    var argv: [UnsafeMutablePointer<CChar>?] = ([funcd] + rewritten).map { strdup($0) } + [nil]
    execv(funcd, &argv)
    ProcessEnvironment.fail("cannot start \(funcd): \(String(cString: strerror(errno)))")
default:
    ProcessEnvironment.fail("funcd-kubeless runs `funcd kubeless convert …` and `funcd run function.yaml`; run funcd")
}
