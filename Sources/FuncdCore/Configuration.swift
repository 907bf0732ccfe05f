#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything funcd is told, parsed in one place from the kubeless environment and overridden by
/// command-line flags (flags win). The README's configuration table repeats this one.
///
/// | variable | flag | meaning | default |
/// |---|---|---|---|
/// | `MOD_NAME` | (file argument) | module file name without extension | required |
/// | `FUNC_HANDLER` | `--handler` | function inside the module | required (exec: optional) |
/// | `FUNC_TIMEOUT` | `--timeout` | seconds per call, fractional allowed | 180 |
/// | `FUNC_TIMEOUT_GRACE` | `--timeout-grace` | seconds an interrupted handler gets to stop; then its worker is replaced (without a supervisor: exit 70) | 2 |
/// | `FUNC_PORT` | `--port` | HTTP port (0 picks a free one) | 8080 |
/// | `FUNC_HOST` | `--host` | address to bind | 0.0.0.0 |
/// | `FUNC_RUNTIME` | `--runtime` | e.g. `python3.11`, or `exec` for a program; passed to the handler, picks the language | from the file |
/// | `FUNC_MEMORY_LIMIT` | `--memory-limit` | passed to the handler | — |
/// | `KUBELESS_INSTALL_VOLUME`, `MOD_ROOT_PATH` | `--code-dir` | directory of the code | /kubeless |
/// | `REQ_MB_LIMIT` (MB), `FUNC_MEMFILE_MAX` (bytes) | `--body-limit` (bytes) | request body limit | 100 MB (Node: 1 MB, as kubeless) |
/// | `SHUTDOWN_TIMEOUT` | `--shutdown-timeout` | seconds to drain on SIGTERM | 10 |
/// | `FUNC_CONCURRENCY` | `--concurrency` | handler calls in flight | 16 |
/// | `FUNC_QUEUE` | `--queue` | calls waiting beyond those in flight before 503 | 4 × concurrency |
/// | `FUNC_WORKERS` | `--workers` | worker processes under the supervisor (0: none, serve in this process) | 1 |
/// | `FUNC_WATCH` | `--watch` (run) | reload when the code's files change (subfolders too), not only the ConfigMap | off |
/// | `FUNC_WATCH_MAX_FILES` | — | entries of the code folder's tree `--watch` looks at | 10000 |
/// | `FUNC_ACCESS_LOG` | `--access-log` | `off`, `combined` or `json` | combined |
/// | `FUNC_CLOUDEVENTS` | `--cloudevents` | `on`: CloudEvents (binary, structured) fill the kubeless event and batches get 415; `off`: they are ordinary requests, as in kubeless | on |
/// | `FUNCD_LANGUAGE` | — | `python`, `node`, `ruby` or `exec`: the language, over `FUNC_RUNTIME` and the files (`funcd run` and `invoke` set it for the file they are given) | from `FUNC_RUNTIME`, else the module file that exists |
/// | `FUNCD_RUNTIMES_DIR` | — | where the language glue (`runtimes/`) is | found beside the binary |
/// | `FUNC_HEADER_TIMEOUT`, `FUNC_BODY_TIMEOUT`, `FUNC_IDLE_TIMEOUT`, `FUNC_LINGER_TIMEOUT`, `FUNC_MAX_CONNECTIONS`, `FUNC_BODY_BUDGET`, `FUNC_MAX_HEADERS`, `FUNC_MAX_HEADER_BYTES`, `FUNC_MAX_PIPELINED`, `FUNC_SEND_BUFFER` | `--header-timeout` … | the HTTP front's bounds: see ``HTTPLimits`` | see there |
/// | `FUNC_EXEC_MODE`, `FUNC_EXEC_CGI`, `FUNC_EXEC_CONTENT_TYPE`, `FUNC_EXEC_OUTPUT_LIMIT` | `--exec-mode` … | the exec runtime: see ``ExecSettings`` | see there |
/// | `KAFKA_BROKERS`, `KAFKA_TOPICS`, `KAFKA_GROUP`, `KAFKA_OFFSET_RESET`, `KAFKA_MAX_RETRIES`, `KAFKA_DLQ_TOPIC`, `KAFKA_SASL_MECHANISM`, `KAFKA_USERNAME`, `KAFKA_PASSWORD`, `KAFKA_TLS`, `KAFKA_CA_FILE`, `KAFKA_CONF_*` | — | the Kafka trigger: see `KafkaConfiguration` | off |
public struct Configuration: Sendable, Equatable {
    /// How each request is written to the access log.
    public enum AccessLogFormat: String, Sendable, CaseIterable {
        case off
        case combined
        case json
    }

    public var moduleName: String
    public var handlerName: String
    public var codeDirectory: String
    public var language: Language
    /// The module file's extension: the one of the file given on the command line, else the
    /// first of the language's extensions whose file exists (`app.js`, then `app.mjs`, ...).
    public var moduleExtension: String
    public var timeoutSeconds: Double
    public var timeoutGraceSeconds: Double
    public var host: String
    public var port: Int
    public var runtime: String?
    public var memoryLimit: String?
    public var bodyLimitBytes: Int
    public var shutdownTimeoutSeconds: Double
    public var concurrency: Int
    public var queueLimit: Int
    public var workers: Int
    public var watch: Bool
    /// How many entries of the code folder's tree `--watch` looks at (`FUNC_WATCH_MAX_FILES`).
    public var watchMaxFiles: Int
    public var accessLog: AccessLogFormat
    /// Whether CloudEvents are read (`FUNC_CLOUDEVENTS`); see ``CloudEvents``.
    public var cloudEvents: Bool
    public var runtimesDirectory: String?
    /// The Kafka trigger, when `KAFKA_BROKERS` is set (see ``KafkaConfiguration``).
    public var kafka: KafkaConfiguration?
    /// The HTTP front's bounds and timeouts (see ``HTTPLimits``).
    public var limits: HTTPLimits
    /// How the exec runtime runs its program (see ``ExecSettings``).
    public var exec: ExecSettings
    /// The exec runtime's program file, found among ``execProgramCandidates`` at start.
    private var execProgram: String?

    public static let defaultTimeoutSeconds = 180.0
    public static let defaultBodyLimitBytes = 100 * 1024 * 1024
    public static let defaultNodeBodyLimitBytes = 1024 * 1024

    /// The path of the module file the host loads.
    /// The kubeless nodejs runtime answered CORS (`Access-Control-Allow-Origin: *`, preflight
    /// echoing the requested method and headers); funcd does the same for Node handlers.
    public var answersCORS: Bool { language == .node }

    public var modulePath: String {
        if language == .exec { return path(execProgram ?? Self.execProgramCandidates(moduleName, handlerName)[0]) }
        return path("\(moduleName).\(moduleExtension)")
    }

    private func path(_ file: String) -> String {
        codeDirectory.hasSuffix("/") ? "\(codeDirectory)\(file)" : "\(codeDirectory)/\(file)"
    }

    /// Where the exec runtime looks for its program, in order: kubeless's `--handler hello.sh`
    /// becomes MOD_NAME `hello` and FUNC_HANDLER `sh`, so `hello.sh` first; then the module name
    /// alone (a binary), then the handler alone.
    public static func execProgramCandidates(_ module: String, _ handler: String) -> [String] {
        handler.isEmpty ? [module] : ["\(module).\(handler)", module, handler]
    }

    /// Parses the kubeless environment. `overrides` are flag values keyed by variable name; they
    /// win over the environment, so pods and laptops go through the same checks.
    public init(
        environment: [String: String],
        overrides: [String: String] = [:],
        fileExists: (String) -> Bool = { access($0, F_OK) == 0 }
    ) throws {
        func value(_ name: String) -> String? {
            if let flag = overrides[name] { return flag }
            guard let env = environment[name], !env.isEmpty else { return nil }
            return env
        }

        guard let moduleName = value("MOD_NAME") else {
            throw FuncdError(.configuration, "MOD_NAME is not set: it names the module file without its extension")
        }
        let handlerName = value("FUNC_HANDLER") ?? ""
        self.moduleName = moduleName
        self.handlerName = handlerName
        let codeDirectory = value("KUBELESS_INSTALL_VOLUME") ?? value("MOD_ROOT_PATH") ?? "/kubeless"
        self.codeDirectory = codeDirectory
        self.runtime = value("FUNC_RUNTIME")
        self.memoryLimit = value("FUNC_MEMORY_LIMIT")
        self.runtimesDirectory = value("FUNCD_RUNTIMES_DIR")

        if let explicit = value("FUNCD_LANGUAGE") {
            guard let language = Language(rawValue: explicit) else {
                throw FuncdError(.configuration, "FUNCD_LANGUAGE=\(explicit) is not one of python, node, ruby, exec")
            }
            self.language = language
        } else if let runtime {
            guard let language = Language(runtime: runtime) else {
                throw FuncdError(
                    .configuration,
                    "FUNC_RUNTIME=\(runtime) names no language funcd embeds (python…, nodejs…, ruby…) and is not exec"
                )
            }
            self.language = language
        } else {
            // No runtime named: the module file that exists decides, then a program file (exec),
            // Python when none does (the loader then reports the missing file).
            let directory = codeDirectory
            self.language =
                Language.embedded.first { language in
                    language.fileExtensions.contains { fileExists("\(directory)/\(moduleName).\($0)") }
                } ?? (Self.execProgramCandidates(moduleName, handlerName).contains { fileExists("\(directory)/\($0)") } ? .exec : .python)
        }
        guard !handlerName.isEmpty || language == .exec else {
            throw FuncdError(.configuration, "FUNC_HANDLER is not set: it names the function inside \(moduleName)")
        }
        if language == .exec {
            let directory = codeDirectory
            execProgram = Self.execProgramCandidates(moduleName, handlerName).first { fileExists("\(directory)/\($0)") }
        }
        if let given = value("FUNCD_MODULE_EXTENSION"), language.fileExtensions.contains(given) {
            self.moduleExtension = given
        } else {
            let directory = codeDirectory
            let language = language
            self.moduleExtension =
                language.fileExtensions.first { fileExists("\(directory)/\(moduleName).\($0)") }
                ?? language.fileExtension
        }

        self.timeoutSeconds = try Self.seconds(value("FUNC_TIMEOUT"), name: "FUNC_TIMEOUT") ?? Self.defaultTimeoutSeconds
        self.timeoutGraceSeconds = try Self.seconds(value("FUNC_TIMEOUT_GRACE"), name: "FUNC_TIMEOUT_GRACE") ?? 2
        self.shutdownTimeoutSeconds = try Self.seconds(value("SHUTDOWN_TIMEOUT"), name: "SHUTDOWN_TIMEOUT") ?? 10
        self.host = value("FUNC_HOST") ?? "0.0.0.0"
        self.port = try Self.integer(value("FUNC_PORT"), name: "FUNC_PORT", range: 0...65535) ?? 8080
        self.concurrency = try Self.integer(value("FUNC_CONCURRENCY"), name: "FUNC_CONCURRENCY", range: 1...4096) ?? 16
        self.queueLimit =
            try Self.integer(value("FUNC_QUEUE"), name: "FUNC_QUEUE", range: 0...1_000_000) ?? 4 * concurrency
        self.workers = try Self.integer(value("FUNC_WORKERS"), name: "FUNC_WORKERS", range: 0...64) ?? 1
        let watch = value("FUNC_WATCH") ?? "false"
        guard let watching = Self.boolean(watch) else {
            throw FuncdError(.configuration, "FUNC_WATCH=\(watch) is not true or false")
        }
        self.watch = watching
        self.watchMaxFiles =
            try Self.integer(value("FUNC_WATCH_MAX_FILES"), name: "FUNC_WATCH_MAX_FILES", range: 1...1_000_000) ?? 10_000

        if let bytes = try Self.integer(value("FUNC_MEMFILE_MAX"), name: "FUNC_MEMFILE_MAX", range: 0...Int(Int32.max)) {
            self.bodyLimitBytes = bytes
        } else if let megabytes = try Self.integer(value("REQ_MB_LIMIT"), name: "REQ_MB_LIMIT", range: 0...2047) {
            self.bodyLimitBytes = megabytes * 1024 * 1024
        } else {
            // Each original runtime's own default: express's body parser took 1 MB.
            self.bodyLimitBytes = language == .node ? Self.defaultNodeBodyLimitBytes : Self.defaultBodyLimitBytes
        }

        let format = value("FUNC_ACCESS_LOG") ?? "combined"
        guard let accessLog = AccessLogFormat(rawValue: format.lowercased()) else {
            throw FuncdError(.configuration, "FUNC_ACCESS_LOG=\(format) is not one of off, combined, json")
        }
        self.accessLog = accessLog
        let cloudEvents = value("FUNC_CLOUDEVENTS") ?? "on"
        guard let readsCloudEvents = Self.boolean(cloudEvents) else {
            throw FuncdError(.configuration, "FUNC_CLOUDEVENTS=\(cloudEvents) is not on or off")
        }
        self.cloudEvents = readsCloudEvents
        self.limits = try HTTPLimits(value: value)
        self.exec = try ExecSettings(value: value)
        self.kafka = try KafkaConfiguration(environment: environment.merging(overrides) { _, flag in flag }, functionName: moduleName)
    }

    /// A yes/no variable's value: 1/true/yes/on or 0/false/no/off, any case; nil otherwise.
    static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "1", "true", "yes", "on": true
        case "0", "false", "no", "off": false
        default: nil
        }
    }

    private static func seconds(_ text: String?, name: String) throws -> Double? {
        guard let text else { return nil }
        guard let value = Double(text), value.isFinite, value > 0 else {
            throw FuncdError(.configuration, "\(name)=\(text) is not a positive number of seconds")
        }
        return value
    }

    private static func integer(_ text: String?, name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw FuncdError(.configuration, "\(name)=\(text) is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
