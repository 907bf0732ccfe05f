import ArgumentParser
import FuncdCore

/// What the user asked for, once the command line is parsed.
public enum Mode: Sendable {
    /// Serve HTTP (`serve` and `run`).
    case serve
    /// One call, no server (`invoke`).
    case invoke(InvokeRequest)
}

/// The call `funcd invoke` makes. The data is read only by the process that makes the call:
/// `funcd` parses the same command line before it execs the language's executable, and must not
/// consume standard input on the way.
public struct InvokeRequest: Sendable {
    public var method: String?
    public var path: String
    public var data: String?
    public var dataFile: String?
    public var contentType: String?

    /// The body, the method and the content type the handler sees.
    public func load() throws -> (method: String, body: [UInt8], contentType: String?) {
        var body: [UInt8] = []
        if let data {
            body = Array(data.utf8)
        } else if let dataFile {
            body = try InputFile.read(dataFile)
        }
        let type =
            contentType ?? (body.isEmpty ? nil : (JSONCheck.isJSON(body) ? "application/json" : "text/plain"))
        return (method ?? (body.isEmpty ? "GET" : "POST"), body, type)
    }
}

/// `funcd`: the command users type. Every executable (`funcd`, `funcd-python`, ...) parses the
/// same commands so that `--help` is the same everywhere.
public struct FuncdCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "funcd",
        abstract: "Runs a kubeless function in an embedded interpreter (Python, Node.js or Ruby), or any program per call over stdin and stdout.",
        discussion: """
            In a function pod, `funcd serve` reads the kubeless environment (MOD_NAME, FUNC_HANDLER, \
            FUNC_TIMEOUT, FUNC_PORT, ...). On a laptop, `funcd run hello.py --handler hello` serves one \
            file and `funcd invoke hello.py --handler hello --data '{"a":1}'` calls it once; \
            `funcd run ./hello.sh` serves a program (the request body on its stdin, its stdout the answer). \
            `funcd run function.yaml` serves a kubeless Function resource, and `funcd kubeless convert` \
            turns kubeless resources into manifests for funcd's images.
            """,
        subcommands: [Serve.self, Run.self, Invoke.self, Kubeless.self]
    )

    public init() {}

    /// Parses `arguments` into the configuration and mode, or throws ArgumentParser's error
    /// (help, usage) for `exit(withError:)`.
    public static func resolve(
        arguments: [String], environment: [String: String]
    ) throws -> (Configuration, Mode) {
        if let (inputs, mode) = plainServe(arguments) {
            return (try inputs.configuration(environment: environment), mode)
        }
        return try resolve(parseAsRoot(arguments), environment: environment)
    }

    /// `funcd serve` and nothing else, every pod's command: its inputs (none) without
    /// ArgumentParser, whose reflection over every option is most of a process's start.
    public static func plainServe(_ arguments: [String]) -> (ConfigurationInputs, Mode)? {
        arguments == ["serve"] ? (ConfigurationInputs(overrides: [:]), .serve) : nil
    }

    /// The configuration and mode of a command `parseAsRoot` made (parsing is most of the
    /// front door's start-up, so it is done once).
    public static func resolve(
        _ command: any ParsableCommand, environment: [String: String]
    ) throws -> (Configuration, Mode) {
        let (inputs, mode) = try inputs(of: command)
        return (try inputs.configuration(environment: environment), mode)
    }

    /// What the command `parseAsRoot` made adds to the environment, and its mode.
    public static func inputs(of command: any ParsableCommand) throws -> (ConfigurationInputs, Mode) {
        switch command {
        case let serve as Serve:
            return (serve.inputs, .serve)
        case let run as Run:
            return (try run.inputs(), .serve)
        case let invoke as Invoke:
            return try invoke.resolve()
        default:
            // ArgumentParser's own `help` command (`funcd serve --help`, `funcd help run`): its
            // run() throws the help request for the right subcommand.
            var command = command
            try command.run()
            throw CleanExit.helpRequest(self)
        }
    }
}

/// `funcd serve`: pod mode.
public struct Serve: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Serve the function the kubeless environment describes (pod mode).",
        discussion: """
            Reads MOD_NAME and FUNC_HANDLER, the code from KUBELESS_INSTALL_VOLUME (or MOD_ROOT_PATH, \
            default /kubeless), and the language from FUNC_RUNTIME or the module file that exists \
            (FUNC_RUNTIME=exec runs the program <MOD_NAME>.<FUNC_HANDLER>, <MOD_NAME> or <FUNC_HANDLER>). \
            SIGTERM drains in-flight calls for up to SHUTDOWN_TIMEOUT seconds.
            """
    )

    @Option(help: "Function inside the module. (FUNC_HANDLER)")
    var handler: String?

    @Option(help: "Module file name without extension. (MOD_NAME)")
    var module: String?

    @Option(help: "Directory holding the code. (KUBELESS_INSTALL_VOLUME or MOD_ROOT_PATH, default /kubeless)")
    var codeDir: String?

    @OptionGroup var server: ServerOptions

    public init() {}

    var inputs: ConfigurationInputs {
        var overrides = server.overrides
        overrides["FUNC_HANDLER"] = handler
        overrides["MOD_NAME"] = module
        overrides["KUBELESS_INSTALL_VOLUME"] = codeDir
        return ConfigurationInputs(overrides: overrides)
    }
}

/// `funcd run FILE --handler NAME`: the same server for one file.
public struct Run: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Serve one handler file over HTTP (local work).",
        discussion: """
            The language comes from the file's extension; modules beside the file can be imported. \
            A file with no extension funcd embeds (hello.sh, a binary), or an executable one given no \
            --handler, runs as a program per call (the exec runtime; --runtime exec forces it).
            """
    )

    @Argument(help: "The handler file, e.g. hello.py, a program, e.g. ./hello.sh, or a kubeless Function resource, e.g. function.yaml.")
    public var file: String

    @Option(help: "Function inside the file (not needed for a program or a Function resource).")
    public var handler: String?

    @Flag(help: "Reload (a fresh worker, no failed request) whenever a file in the handler's folder is saved.")
    var watch = false

    @OptionGroup var server: ServerOptions

    public init() {}

    func inputs() throws -> ConfigurationInputs {
        if isKubelessManifest(file) {
            throw FuncdError(
                .configuration,
                "\(file): a kubeless Function resource is served through funcd-kubeless, which funcd runs: funcd run \(file)")
        }
        var overrides = try moduleOverrides(file: file, handler: handler, runtime: server.runtime)
        overrides["FUNC_HANDLER"] = handler
        overrides["FUNC_HOST"] = "127.0.0.1"
        if watch { overrides["FUNC_WATCH"] = "true" }
        overrides.merge(server.overrides) { _, flag in flag }
        return ConfigurationInputs(overrides: overrides, ignored: ["FUNC_RUNTIME"])
    }
}

/// `funcd invoke FILE --handler NAME --data ...`: one call, no server.
public struct Invoke: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Call a handler once and print its result.",
        discussion: """
            The result body goes to stdout and the handler's own output to stderr. Exits 1 with the \
            traceback when the handler raises or times out.
            """
    )

    @Argument(help: "The handler file, e.g. hello.py, or a program, e.g. ./hello.sh.")
    var file: String

    @Option(help: "Function inside the file (not needed for a program).")
    var handler: String?

    @Option(help: "Runtime name, e.g. exec to run a file in a language funcd embeds as a program. (FUNC_RUNTIME)")
    var runtime: String?

    @Option(help: "The event data (the request body).")
    var data: String?

    @Option(help: "Read the event data from this file; - reads standard input.")
    var dataFile: String?

    @Option(
        help: "Content-Type of the data. (default: application/json when the data is JSON, else text/plain)")
    var contentType: String?

    @Option(help: "HTTP method the handler sees. (default: POST with data, GET without)")
    var method: String?

    @Option(help: "Request path the handler sees.")
    var path: String = "/"

    @Option(help: "Seconds the call may take. (FUNC_TIMEOUT, default 180)")
    var timeout: Double?

    public init() {}

    public func validate() throws {
        if data != nil && dataFile != nil {
            throw ValidationError("give --data or --data-file, not both")
        }
    }

    func resolve() throws -> (ConfigurationInputs, Mode) {
        var overrides = try moduleOverrides(file: file, handler: handler, runtime: runtime)
        overrides["FUNC_HANDLER"] = handler
        overrides["FUNC_RUNTIME"] = runtime
        overrides["FUNC_ACCESS_LOG"] = "off"
        overrides["FUNC_TIMEOUT"] = timeout.map { String($0) }
        let request = InvokeRequest(
            method: method, path: path, data: data, dataFile: dataFile, contentType: contentType)
        return (ConfigurationInputs(overrides: overrides, ignored: ["FUNC_RUNTIME"]), .invoke(request))
    }
}
